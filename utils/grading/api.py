"""The tests' side: what a chapter's grading-test file uses, and how a test's failure reads.

The tests run in the judge (`judge`), on the submission's answers carried over as data; `Answers`
is the same contract over a namespace at hand (the unit tests' fixtures).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import signal
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from utils import checks, exercises  # a test may decide with an exercise's check function


def graded(exercise_id: str, points: float) -> Callable[[Callable], Callable]:
    """Mark a function of a grading-test file as the test of one exercise, worth `points`."""
    if not exercises.is_exercise_id(exercise_id):
        raise ValueError(f"exercise id must look like '01.2', got {exercise_id!r}")
    if isinstance(points, bool) or not isinstance(points, int | float) or points <= 0:
        raise ValueError(f"points must be a positive number, got {points!r}")

    def mark(function: Callable) -> Callable:
        function.grading = {"exercise": exercise_id, "points": float(points)}
        return function

    return mark


def passes(exercise_id: str, answer: Any) -> None:
    """Fail unless the exercise's self-check accepts `answer`; its hint is the feedback."""
    result = checks.verdict(exercise_id, answer)
    assert result.passed, result.message or "not answered yet"


def trained_alike(results: Mapping, metric: str, epochs: int, how: str) -> None:
    """Fail unless every run of `results` (Keras histories, or their dicts) recorded `epochs`
    values of `metric`: a comparison of settings needs the same training for each."""
    for key, history in results.items():
        recorded = len(getattr(history, "history", history)[metric])
        assert recorded == epochs, (
            f"the run {key} trained for {recorded} epochs, the chapter's runs for EPOCHS: "
            f"{how}, so that every run gets the same training")


class NotDefined(AssertionError):
    """A grading test asked for a name the submission does not define."""


class NotAnswered(AssertionError):
    """A grading test asked for a name that still holds the exercise's placeholder `...`."""


class Answers(Mapping):
    """The submission's variables, by name; a missing one fails the test with a clear message."""

    def __init__(self, namespace: Mapping[str, Any]):
        self._namespace = namespace

    def __getitem__(self, name: str) -> Any:
        if name not in self._namespace:
            raise NotDefined(f"`{name}` is not defined in your notebook: the exercise cell is "
                             "missing, or it stopped with an error before defining it")
        value = self._namespace[name]
        if value is Ellipsis or (isinstance(value, tuple | list)
                                 and any(part is Ellipsis for part in value)):
            raise NotAnswered(f"`{name}` is still `...`: the exercise is not answered yet")
        return value

    def __contains__(self, name: object) -> bool:
        return name in self._namespace

    def get(self, name: str, default: Any = None) -> Any:
        return self._namespace.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._namespace)

    def __len__(self) -> int:
        return len(self._namespace)


class TookTooLong(Exception):
    """Raised inside the kernel when a grading test runs past its time."""


_loaded_tests: dict[str, ModuleType] = {}


def load_module(path: Path | str) -> ModuleType:
    """Import a grading-test file (its name starts with a digit, so not with `import`)."""
    path = Path(path).resolve()
    key = str(path)
    if key not in _loaded_tests:
        name = "course_grading_" + hashlib.sha1(key.encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load grading tests from {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _loaded_tests[key] = module
    return _loaded_tests[key]


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TookTooLong after `seconds` (main thread only; elsewhere no limit)."""

    def expire(signum: int, frame: Any) -> None:
        raise TookTooLong()

    try:
        previous = signal.signal(signal.SIGALRM, expire)
    except (ValueError, AttributeError):  # not the main thread, or no SIGALRM (Windows)
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def describe_failure(error: BaseException, seconds: float) -> str:
    if isinstance(error, TookTooLong | KeyboardInterrupt):
        return f"took longer than {seconds:g} s (an endless loop, or far too much work?)"
    if exercises.is_unanswered(error) or isinstance(error, checks.NotAnswered):
        return "not answered yet (the placeholder `raise NotImplementedError` is still there)"
    text = " ".join(str(error).split())[:500]  # one line, whatever the test wrote
    if isinstance(error, AssertionError):
        return text or "wrong answer"
    return f"raised {type(error).__name__}" + (f": {text}" if text else "")
