"""Self-checks for exercises: `check("01.2", answer)` prints a pass or a hint, never the answer."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from utils.exercises import chapter_of_id, is_exercise_id, is_unanswered

Checker = Callable[[Any], str | None]
_REGISTRY: dict[str, Checker] = {}
CORRECT, HINT, UNANSWERED = "correct", "hint", "unanswered"


class Hint(AssertionError):
    """Raised by a checker to say what is wrong, without giving the answer away. A grading
    test that decides with a checker's function fails with it as with any failed assert."""


class NotAnswered(Exception):
    """The answer is still the placeholder (`...`, or a function whose placeholder line
    `raise NotImplementedError("Exercise NN.k is not answered yet")` is still there)."""


@dataclass(frozen=True)
class CheckResult:
    """What a check found: `status` is CORRECT, HINT or UNANSWERED; `message` says more."""

    exercise: str
    status: str
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == CORRECT

    def text(self) -> str:
        if self.status == CORRECT:
            return f"✅ Exercise {self.exercise}: correct." + (
                f" {self.message}" if self.message else "")
        if self.status == UNANSWERED:
            return (f"⏳ Exercise {self.exercise}: not answered yet. Replace the placeholder "
                    "(`...` or the `raise NotImplementedError` line) with your answer, then run "
                    "the cell again.")
        return f"❌ Exercise {self.exercise}: not yet. Hint: {self.message}"


def exercise(exercise_id: str) -> Callable[[Checker], Checker]:
    """Register a checker. It returns None (or a remark) when right, raises Hint when not."""

    def register(function: Checker) -> Checker:
        _REGISTRY[exercise_id] = function
        return function

    return register


def _checker(exercise_id: str) -> Checker:
    if not is_exercise_id(exercise_id):
        raise ValueError(f"exercise id must look like '01.2', got {exercise_id!r}")
    chapter = chapter_of_id(exercise_id)
    try:
        importlib.import_module(f"utils.checks.ch{chapter}")
    except ModuleNotFoundError as error:
        raise ValueError(f"no exercises for chapter {chapter} ({error})") from None
    if exercise_id not in _REGISTRY:
        raise ValueError(f"unknown exercise {exercise_id!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[exercise_id]


def is_placeholder(answer: Any) -> bool:
    """Whether an answer is still `...`, or a tuple or list holding one."""
    if answer is Ellipsis:
        return True
    return isinstance(answer, tuple | list) and any(part is Ellipsis for part in answer)


def verdict(exercise_id: str, answer: Any) -> CheckResult:
    """Check an answer to an exercise without printing anything."""
    checker = _checker(exercise_id)
    if is_placeholder(answer):
        return CheckResult(exercise_id, UNANSWERED)
    try:
        remark = checker(answer)
    except NotAnswered:
        return CheckResult(exercise_id, UNANSWERED)
    except Hint as hint:
        return CheckResult(exercise_id, HINT, str(hint))
    except NotImplementedError as error:
        if is_unanswered(error):
            return CheckResult(exercise_id, UNANSWERED)
        return CheckResult(exercise_id, HINT, f"your code raised NotImplementedError: {error}")
    return CheckResult(exercise_id, CORRECT, remark or "")


def check(exercise_id: str, answer: Any) -> None:
    """Check an answer to an exercise and print a pass, a hint, or that it is not answered yet.

    It returns nothing, so a cell ending with it shows only the verdict; an unanswered
    exercise stops nothing, so "Run All" goes on to the end.
    """
    print(verdict(exercise_id, answer).text())


def call(function: Any, *args: Any) -> Any:
    """Call a learner's function; a crash becomes a hint that names the error, and the
    placeholder's own NotImplementedError means the exercise is not answered yet."""
    import numpy as np

    require(callable(function), f"expected a function, got {type(function).__name__}")
    try:
        with np.errstate(all="ignore"):
            return function(*args)
    except Exception as error:
        if is_unanswered(error):
            raise NotAnswered() from None
        raise Hint(f"your function raised {type(error).__name__}: {error}") from None


def call_for_array(function: Any, *args: Any) -> Any:
    """`call`, its result as a float NumPy array (a result that is not numbers becomes a hint)."""
    import numpy as np

    result = call(function, *args)
    try:
        return np.asarray(result, dtype=float)
    except (TypeError, ValueError):
        raise Hint(f"your function should return numbers, got {type(result).__name__}") from None


GRADER_VARIABLE = "DL_COURSE_GRADER"  # "1" in a grading kernel (utils.grading.sandbox)


def graded_by_the_judge() -> bool:
    """Whether this runs in a grading kernel, whose judge reruns the heavy checks itself (a
    fresh training, a two-rank job): their self-checks then skip that work."""
    return os.environ.get(GRADER_VARIABLE) == "1"


def require(condition: bool, hint: str) -> None:
    """Raise Hint(hint) unless condition holds: the building block of every checker."""
    if not condition:
        raise Hint(hint)
