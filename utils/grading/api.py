"""The tests' side: what a chapter's grading-test file uses, in the submission's kernel too."""

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

GRADE_MIME = "application/vnd.dl-course.grade+json"  # the output that carries a test's verdict


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
def _time_limit(seconds: float) -> Iterator[None]:
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


def _describe_failure(error: BaseException, seconds: float) -> str:
    if isinstance(error, TookTooLong | KeyboardInterrupt):
        return f"took longer than {seconds:g} s (an endless loop, or far too much work?)"
    if exercises.is_unanswered(error) or isinstance(error, checks.NotAnswered):
        return "not answered yet (the placeholder `raise NotImplementedError` is still there)"
    text = " ".join(str(error).split())[:500]  # one line, whatever the test wrote
    if isinstance(error, AssertionError):
        return text or "wrong answer"
    return f"raised {type(error).__name__}" + (f": {text}" if text else "")


def run_test_in_kernel(path: str, name: str, seconds: float) -> None:
    """Run one grading test inside the submission's kernel and display its result for the grader."""
    from IPython import get_ipython
    from IPython.display import display

    try:
        test = getattr(load_module(path), name)
        shell = get_ipython()
        answers = Answers(shell.user_ns if shell is not None else {})
        with _time_limit(seconds):
            test(answers)
        result = {"name": name, "passed": True, "message": ""}
    except BaseException as error:  # noqa: B036 - any failure (even SystemExit) scores zero
        result = {"name": name, "passed": False, "message": _describe_failure(error, seconds)}
    text = f"{name}: " + ("passed" if result["passed"] else f"failed: {result['message']}")
    display({GRADE_MIME: result, "text/plain": text}, raw=True)


def grading_cell_source(path: Path, name: str, seconds: float) -> str:
    """The code of the cell that runs one grading test in the submission's kernel."""
    return (f'__import__("utils.grading.api", fromlist=["_"]).run_test_in_kernel('
            f'{str(path)!r}, {name!r}, {seconds!r})')
