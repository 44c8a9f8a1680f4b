"""Copies of the learner notebooks for a class: handouts without the solutions, and solved copies.

`make student` writes build/student/NN_name.ipynb: the notebook of notebooks/ without its
"Solutions" appendix, outputs cleared; the exercise cells keep their placeholders and checks.
`make solved` writes build/solved/NN_name.ipynb, the instructor's reference: each solution
moved into its exercise cell, no appendix, outputs cleared. Which cell is which is read from
the cell metadata that `utils.exercises` defines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from utils import exercises
from utils.runner import BUILD, find_notebooks

OUT = BUILD / "student"
SOLVED_OUT = BUILD / "solved"


def _lines(cell: dict[str, Any]) -> set[str]:
    return {line.strip() for line in exercises.source_of(cell).splitlines()} - {""}


def leaked_solution_lines(notebook: dict[str, Any]) -> dict[str, set[str]]:
    """Exercise id -> lines of its solution that its exercise cell already holds (beyond the
    lines they share by design: the function's signature, the check call)."""
    cells = notebook["cells"]
    before, _ = exercises.split_appendix(cells)
    leaks = {}
    solutions = exercises.solution_cells(cells)
    for exercise_id, index in exercises.exercise_cells(cells).items():
        if exercise_id not in solutions:
            continue
        solution = _lines(cells[solutions[exercise_id]])
        prompt_and_cell = _lines(before[index])
        shared = {line for line in solution if line.startswith(("def ", "check("))}
        found = (solution - shared) & prompt_and_cell
        if found:
            leaks[exercise_id] = found
    return leaks


def handout_copy(notebook: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The handout of a learner notebook (JSON dict) and the exercise ids it holds."""
    leaks = leaked_solution_lines(notebook)
    if leaks:  # never hand out a solution
        raise ValueError(f"solution text in exercise cells: {leaks}")
    copied = exercises.handout(notebook)
    ids = exercises.exercise_ids(copied["cells"])
    if not ids:
        raise ValueError("no exercise cells (cells with metadata {\"exercise\": \"NN.k\"})")
    return copied, ids


def solved_copy(notebook: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The solved copy of a learner notebook and the exercise ids it holds."""
    copied = exercises.solved(notebook)
    return copied, exercises.exercise_ids(copied["cells"])


def write_copies(notebooks: list[Path], out: Path, solved: bool = False,
                 ) -> list[tuple[Path, list[str]]]:
    """Write a handout (or a solved copy) of each notebook into `out`; return (path, ids)."""
    make = solved_copy if solved else handout_copy
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in notebooks:
        try:
            copy, ids = make(json.loads(source.read_text()))
        except ValueError as error:
            raise ValueError(f"{source.name}: {error}") from None
        target = out / source.name
        if target.resolve() == source.resolve():
            raise ValueError(f"{target} is the notebook itself: choose another --out")
        target.write_text(json.dumps(copy, indent=1, ensure_ascii=False) + "\n")
        written.append((target, ids))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write handouts (no solutions appendix, "
                                     "outputs cleared) or, with --solved, solved copies.")
    parser.add_argument("notebooks", nargs="*", help="names or number prefixes (default: all)")
    parser.add_argument("--solved", action="store_true",
                        help=f"solved copies: each solution in its exercise cell ({SOLVED_OUT})")
    parser.add_argument("--out", type=Path, help=f"default: {OUT}, or {SOLVED_OUT} with --solved")
    args = parser.parse_args(argv)
    out = args.out or (SOLVED_OUT if args.solved else OUT)
    try:
        written = write_copies(find_notebooks(args.notebooks), out, solved=args.solved)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for target, ids in written:
        print(f"wrote {target} (exercises {', '.join(ids)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
