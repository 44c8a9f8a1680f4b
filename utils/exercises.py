"""Exercise cells, the solutions appendix, and the cell facts the runner, copies and grader share.

A course notebook marks its exercises in cell metadata, written once, as nbgrader's `grade_id`
does:

- the cell a learner answers in carries `{"exercise": "01.2"}`: a placeholder (`# YOUR CODE
  HERE` and `raise NotImplementedError` inside a function, or `...` for a value) and its
  `check("01.2", ...)` call;
- the "Solutions" appendix that closes the notebook starts with a heading cell carrying
  `{"solutions": "appendix"}`, followed by one cell per exercise carrying `{"solution": "01.2"}`
  (the whole answer cell, solved: it replaces the exercise cell in a solved copy).

Notebooks whose metadata was lost on the way (a tool that drops it) still work: the exercise id
is then read from the cell's `check("NN.k", ...)` call, and the appendix from its heading.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

EXERCISE = "exercise"  # metadata key of the cell a learner answers in
SOLUTION = "solution"  # metadata key of that exercise's solution in the appendix
APPENDIX = "solutions"  # metadata key of the appendix heading (value APPENDIX_VALUE)
APPENDIX_VALUE = "appendix"
SOLUTIONS_HEADING = "## Solutions"
PLACEHOLDER = "# YOUR CODE HERE"
INJECTED = "injected-parameters"  # papermill's tag for the cell it inserts
VOLATILE_CELL_METADATA = ("papermill", "execution", "collapsed", "scrolled")
VOLATILE_NOTEBOOK_METADATA = ("papermill", "widgets")

_ID = re.compile(r"(\d\d)\.(\d+)")
_CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d\d\.\d+)["']""")

Cell = dict[str, Any]


def is_exercise_id(value: object) -> bool:
    """Whether `value` is an exercise id such as '01.2' (chapter, dot, number)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def chapter_of_id(exercise_id: str) -> str:
    """'01' for '01.2'."""
    if not is_exercise_id(exercise_id):
        raise ValueError(f"exercise id must look like '01.2', got {exercise_id!r}")
    return exercise_id.split(".")[0]


def source_of(cell: Cell) -> str:
    """A cell's source as one string (nbformat allows a string or a list of lines)."""
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def like(original: str | list[str], text: str) -> str | list[str]:
    """`text` stored the way `original` was: one string, or a list of lines."""
    return text if isinstance(original, str) else text.splitlines(keepends=True)


def _metadata(cell: Cell) -> dict[str, Any]:
    metadata = cell.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def solution_of(cell: Cell) -> str | None:
    """The exercise id of an appendix solution cell, else None."""
    value = _metadata(cell).get(SOLUTION)
    return value if is_exercise_id(value) else None


def is_appendix_heading(cell: Cell) -> bool:
    """Whether the cell opens the solutions appendix (by its metadata, else by its heading)."""
    if _metadata(cell).get(APPENDIX) == APPENDIX_VALUE:
        return True
    return (cell.get("cell_type") == "markdown"
            and source_of(cell).lstrip().startswith(SOLUTIONS_HEADING))


def exercise_of(cell: Cell) -> str | None:
    """The exercise a learner answers in this cell: its metadata id, else its `check` call."""
    if cell.get("cell_type") != "code" or solution_of(cell) is not None:
        return None
    value = _metadata(cell).get(EXERCISE)
    if is_exercise_id(value):
        return value
    found = _CHECK_CALL.search(source_of(cell))
    return found.group(1) if found else None


def is_injected_parameters(cell: Cell) -> bool:
    """Whether papermill inserted this cell (the parameters it was given)."""
    return INJECTED in _metadata(cell).get("tags", [])


def appendix_start(cells: list[Cell]) -> int | None:
    """Index of the first cell of the solutions appendix, or None when there is none.

    The appendix starts at its heading, or (heading lost) at the first solution cell.
    """
    for index, cell in enumerate(cells):
        if is_appendix_heading(cell) or solution_of(cell) is not None:
            return index
    return None


def split_appendix(cells: list[Cell]) -> tuple[list[Cell], list[Cell]]:
    """(the notebook's cells before the appendix, the appendix's cells)."""
    start = appendix_start(cells)
    return (list(cells), []) if start is None else (list(cells[:start]), list(cells[start:]))


def without_appendix(cells: list[Cell]) -> list[Cell]:
    """The cells a learner's work is made of: everything but the solutions appendix.

    Cells a learner added after the appendix are kept, so that only solution cells and the
    appendix's own prose are dropped.
    """
    before, appendix = split_appendix(cells)
    marked = any(solution_of(cell) is not None for cell in appendix)
    if not marked:  # metadata lost: the whole appendix goes
        return before
    return before + [cell for cell in appendix if solution_of(cell) is None
                     and not is_appendix_heading(cell) and cell.get("cell_type") == "code"]


def exercise_cells(cells: list[Cell]) -> dict[str, int]:
    """Exercise id -> index of the cell a learner answers it in (outside the appendix)."""
    found: dict[str, int] = {}
    before, _ = split_appendix(cells)
    for index, cell in enumerate(before):
        exercise_id = exercise_of(cell)
        if exercise_id is not None:
            found.setdefault(exercise_id, index)
    return found


def solution_cells(cells: list[Cell]) -> dict[str, int]:
    """Exercise id -> index of its solution cell in the appendix."""
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        exercise_id = solution_of(cell)
        if exercise_id is not None:
            found.setdefault(exercise_id, index)
    return found


def exercise_ids(cells: list[Cell]) -> list[str]:
    """The ids of a notebook's exercises, in the order of their cells."""
    return list(exercise_cells(cells))


def first_error(cell: Cell) -> dict[str, Any] | None:
    """The first error output of a cell, else None."""
    for output in cell.get("outputs", []) or []:
        if isinstance(output, dict) and output.get("output_type") == "error":
            return output
    return None


def describe_error(error: dict[str, Any], limit: int = 300) -> str:
    """'ErrorName: first line of its message' (the message cut at `limit` characters)."""
    lines = str(error.get("evalue", "")).strip().splitlines()
    return f"{error.get('ename')}" + (f": {lines[0][:limit]}" if lines else "")


def code_cells(cells: list[Cell]) -> Iterator[tuple[int, Cell]]:
    """(number, cell) for each code cell of the source notebook, counted from 1.

    Papermill's injected cell has no number: it is not part of the learner's notebook.
    """
    number = 0
    for cell in cells:
        if cell.get("cell_type") == "code" and not is_injected_parameters(cell):
            number += 1
            yield number, cell


def strip_volatile(notebook: dict[str, Any]) -> dict[str, Any]:
    """Drop run-specific metadata (timings, papermill bookkeeping, widget state) and papermill's
    injected cell, in place, so committed diffs stay clean; returns the notebook."""
    for key in VOLATILE_NOTEBOOK_METADATA:
        notebook.get("metadata", {}).pop(key, None)
    notebook["cells"] = [c for c in notebook["cells"] if not is_injected_parameters(c)]
    for cell in notebook["cells"]:
        metadata = cell.get("metadata", {})
        for key in VOLATILE_CELL_METADATA:
            metadata.pop(key, None)
        if metadata.get("tags") == []:
            del metadata["tags"]
    return notebook


def clear_outputs(notebook: dict[str, Any]) -> dict[str, Any]:
    """Remove every code cell's outputs and execution count, in place; returns the notebook."""
    for cell in notebook["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return notebook


def handout(notebook: dict[str, Any]) -> dict[str, Any]:
    """The notebook a graded class gets: no appendix, no outputs, no volatile metadata."""
    copied = strip_volatile(copy.deepcopy(notebook))
    copied["cells"] = split_appendix(copied["cells"])[0]
    return clear_outputs(copied)


def solved(notebook: dict[str, Any]) -> dict[str, Any]:
    """The instructor's reference: each solution moved into its exercise cell, no appendix.

    Raises ValueError when an exercise has no solution or a solution no exercise.
    """
    copied = strip_volatile(copy.deepcopy(notebook))
    cells = copied["cells"]
    exercises, solutions = exercise_cells(cells), solution_cells(cells)
    if set(exercises) != set(solutions):
        missing = sorted(set(exercises) - set(solutions))
        orphans = sorted(set(solutions) - set(exercises))
        raise ValueError("exercises and solutions do not pair up: "
                         + "; ".join(part for part in [
                             f"no solution for {', '.join(missing)}" if missing else "",
                             f"no exercise cell for {', '.join(orphans)}" if orphans else ""]
                             if part))
    for exercise_id, index in exercises.items():
        solution = cells[solutions[exercise_id]]
        cells[index]["source"] = like(cells[index]["source"], source_of(solution))
    copied["cells"] = split_appendix(cells)[0]
    return clear_outputs(copied)


def unanswered_message(exercise_id: str) -> str:
    """What a placeholder says when it runs."""
    return f"Exercise {exercise_id} is not answered yet"


UNANSWERED_WORDS = re.compile(r"Exercise \d\d\.\d+ is not answered yet")  # a placeholder's words


def is_unanswered(error: BaseException) -> bool:
    """Whether an error is a placeholder's own `raise NotImplementedError(unanswered_message(...))`.

    Any other error, a NotImplementedError raised by Keras or Horovod included, is a real one:
    the learner has answered, and is told what their code raised."""
    return (isinstance(error, NotImplementedError)
            and UNANSWERED_WORDS.fullmatch(str(error)) is not None)
