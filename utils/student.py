"""Student copies of the notebooks: solutions replaced by a placeholder that fails clearly.

`make student` writes build/student/NN_name.ipynb for every notebook in notebooks/. In each copy
the lines between `### BEGIN SOLUTION` and `### END SOLUTION` become `# YOUR CODE HERE` and a
`raise NotImplementedError(...)` naming the exercise; the marker lines and everything after them
(the `check(...)` call) stay, outputs are cleared, and every other cell is kept as it is.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

from utils.runner import BUILD, find_notebooks, strip_volatile

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
PLACEHOLDER = "# YOUR CODE HERE"
OUT = BUILD / "student"
_PROMPT_ID = re.compile(r"\bExercise\s+(\d\d\.\d+)\b")
_CHECK_ID = re.compile(r"""\bcheck\(\s*["'](\d\d\.\d+)["']""")


def placeholder(exercise_id: str, indent: str = "") -> list[str]:
    """The two lines that stand in for a solution; running them unchanged fails with a hint."""
    message = (f"Exercise {exercise_id} is not answered yet: replace the line "
               f"'{PLACEHOLDER}' and this raise with your code, then run the cell again.")
    return [f"{indent}{PLACEHOLDER}", f"{indent}raise NotImplementedError({message!r})"]


def _text(source: str | list[str]) -> str:
    return source if isinstance(source, str) else "".join(source)


def _like(original: str | list[str], text: str) -> str | list[str]:
    """`text` stored the way `original` was (nbformat allows a string or a list of lines)."""
    return text if isinstance(original, str) else text.splitlines(keepends=True)


def solution_blocks(source: str) -> list[tuple[int, int]]:
    """(begin, end) line numbers of each marker pair in a cell's source, checked for balance."""
    blocks, begin = [], None
    for number, line in enumerate(source.splitlines()):
        marker = line.strip()
        if marker == BEGIN:
            if begin is not None:
                raise ValueError(f"line {number + 1}: {BEGIN} inside another solution")
            begin = number
        elif marker == END:
            if begin is None:
                raise ValueError(f"line {number + 1}: {END} without {BEGIN} before it")
            blocks.append((begin, number))
            begin = None
    if begin is not None:
        raise ValueError(f"line {begin + 1}: {BEGIN} without {END} after it")
    return blocks


def remove_solutions(source: str, default_id: str | None) -> tuple[str, list[str]]:
    """The source with each solution replaced by a placeholder, and the exercise ids found.

    A block's exercise is the first `check("NN.k", ...)` after it in the cell, else `default_id`
    (the id of the exercise prompt above the cell).
    """
    lines = source.splitlines()
    blocks = solution_blocks(source)
    ids = []
    for begin, end in reversed(blocks):
        later = _CHECK_ID.findall("\n".join(lines[end + 1:]))
        exercise_id = later[0] if later else default_id
        if exercise_id is None:
            raise ValueError(f"line {begin + 1}: a solution with no exercise id: add a "
                             "check(\"NN.k\", ...) call after it or an 'Exercise NN.k' prompt")
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        lines[begin + 1:end] = placeholder(exercise_id, indent)
        ids.append(exercise_id)
    text = "\n".join(lines) + ("\n" if source.endswith("\n") else "")
    return text, ids[::-1]


def student_copy(notebook: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A student copy of an instructor notebook (JSON dict) and the exercise ids it holds."""
    copied = strip_volatile(copy.deepcopy(notebook))
    ids, prompt_id = [], None
    for number, cell in enumerate(copied["cells"], start=1):
        text = _text(cell.get("source", ""))
        if cell.get("cell_type") != "code":
            found = _PROMPT_ID.findall(text)
            prompt_id = found[-1] if found else prompt_id
            continue
        cell["outputs"], cell["execution_count"] = [], None
        try:
            new_text, found_ids = remove_solutions(text, prompt_id)
        except ValueError as error:
            raise ValueError(f"cell {number}: {error}") from None
        if found_ids:
            cell["source"] = _like(cell["source"], new_text)
            ids += found_ids
    return copied, ids


def solution_lines(notebook: dict[str, Any]) -> set[str]:
    """Lines (stripped) found only inside solution blocks: what a student copy must not hold."""
    inside, outside = set(), set()
    for cell in notebook["cells"]:
        if cell.get("cell_type") != "code":
            continue
        lines = _text(cell.get("source", "")).splitlines()
        blocks = solution_blocks("\n".join(lines))
        for number, line in enumerate(lines):
            in_block = any(begin < number < end for begin, end in blocks)
            (inside if in_block else outside).add(line.strip())
    return inside - outside - {""}


def write_student_copies(notebooks: list[Path], out: Path = OUT) -> list[tuple[Path, list[str]]]:
    """Write a student copy of each notebook into `out`; return (path, exercise ids) for each."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in notebooks:
        instructor = json.loads(source.read_text())
        try:
            student, ids = student_copy(instructor)
        except ValueError as error:
            raise ValueError(f"{source.name}, {error}") from None
        left = {line for cell in student["cells"]
                for line in map(str.strip, _text(cell.get("source", "")).splitlines())}
        leaked = left & solution_lines(instructor)
        if leaked:  # cannot happen unless the markers are broken; never hand out a solution
            raise ValueError(f"{source.name}: solution text left in the student copy: {leaked}")
        target = out / source.name
        target.write_text(json.dumps(student, indent=1, ensure_ascii=False) + "\n")
        written.append((target, ids))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write student copies of the notebooks "
                                     "(solutions replaced by placeholders, outputs cleared).")
    parser.add_argument("notebooks", nargs="*", help="names or number prefixes (default: all)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"default: {OUT}")
    args = parser.parse_args(argv)
    try:
        written = write_student_copies(find_notebooks(args.notebooks), args.out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for target, ids in written:
        exercises = f"exercises {', '.join(ids)}" if ids else "no exercises"
        print(f"wrote {target} ({exercises})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
