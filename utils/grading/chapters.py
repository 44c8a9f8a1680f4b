"""The grader's side of a grading-test file: its tests, grading parameters and time limits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils.grading.api import load_module
from utils.paths import GRADING_TESTS

DEFAULT_TESTS = GRADING_TESTS
DEFAULT_CELL_TIMEOUT = 120.0  # seconds; a chapter's test file may set CELL_TIMEOUT
DEFAULT_NOTEBOOK_TIMEOUT = 900.0  # seconds for all cells; NOTEBOOK_TIMEOUT in the test file
DEFAULT_TEST_TIMEOUT = 30.0  # seconds per grading test; TEST_TIMEOUT in the test file

CHAPTER_IN_NAME = re.compile(r"^(\d\d)_")


@dataclass(frozen=True)
class GradingTest:
    """One function of a grading-test file: its name, its exercise and what it is worth."""

    name: str
    exercise: str
    points: float


@dataclass(frozen=True)
class ChapterTests:
    """A chapter's grading-test file: its tests, grading parameters and time limits, and the
    environment variables its kernel gets (ENVIRONMENT: knobs of the course's own checks, as
    PARAMETERS are the notebook's)."""

    chapter: str
    path: Path
    tests: tuple[GradingTest, ...]
    parameters: dict[str, Any]
    cell_timeout: float
    notebook_timeout: float
    test_timeout: float
    environment: dict[str, str] = field(default_factory=dict)  # for the submission's kernel

    @property
    def exercises(self) -> dict[str, float]:
        """Exercise id -> the points it is worth, in the order of the file."""
        return worth_of(self.tests)


def worth_of(tests: Any) -> dict[str, float]:
    """Exercise id -> the points its `tests` (GradingTest objects) are worth, in their order."""
    worth: dict[str, float] = {}
    for test in tests:
        worth[test.exercise] = worth.get(test.exercise, 0.0) + test.points
    return worth


def load_chapter_tests(path: Path) -> ChapterTests:
    """Read a grading-test file named `NN_anything.py` (it is trusted: the instructor wrote it)."""
    match = CHAPTER_IN_NAME.match(path.name)
    if match is None or path.suffix != ".py":
        raise ValueError(f"grading-test files are named like 01_sigmoid_neuron.py, got {path.name}")
    module = load_module(path)
    tests = tuple(GradingTest(name, value.grading["exercise"], value.grading["points"])
                  for name, value in vars(module).items()
                  if callable(value) and isinstance(getattr(value, "grading", None), dict))
    if not tests:
        raise ValueError(f"{path} defines no grading tests (functions decorated with @graded)")
    other = [t.exercise for t in tests if not t.exercise.startswith(match.group(1) + ".")]
    if other:
        raise ValueError(f"{path.name} tests exercises of another chapter: {other}")
    parameters = getattr(module, "PARAMETERS", {})
    if not isinstance(parameters, dict):
        raise ValueError(f"PARAMETERS in {path.name} must be a dict, got {type(parameters)}")
    environment = getattr(module, "ENVIRONMENT", {})
    if not isinstance(environment, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in environment.items()):
        raise ValueError(f"ENVIRONMENT in {path.name} must be a dict of str to str, got "
                         f"{environment!r}")
    return ChapterTests(
        chapter=match.group(1), path=path.resolve(), tests=tests, parameters=dict(parameters),
        cell_timeout=float(getattr(module, "CELL_TIMEOUT", DEFAULT_CELL_TIMEOUT)),
        notebook_timeout=float(getattr(module, "NOTEBOOK_TIMEOUT", DEFAULT_NOTEBOOK_TIMEOUT)),
        test_timeout=float(getattr(module, "TEST_TIMEOUT", DEFAULT_TEST_TIMEOUT)),
        environment=dict(environment),
    )


def find_chapter_tests(folder: Path) -> dict[str, ChapterTests]:
    """Every chapter's grading tests in `folder` (files `NN_*.py`), by chapter number."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no grading-test folder at {folder}; name one with --tests")
    found: dict[str, ChapterTests] = {}
    for path in sorted(folder.glob("[0-9][0-9]_*.py")):
        chapter = load_chapter_tests(path)
        if chapter.chapter in found:
            raise ValueError(f"two grading-test files for chapter {chapter.chapter}: "
                             f"{found[chapter.chapter].path.name} and {path.name}")
        found[chapter.chapter] = chapter
    if not found:
        raise FileNotFoundError(f"no grading-test files (NN_name.py) in {folder}")
    return found
