"""Self-checks for exercises: `check("01.2", answer)` prints a pass or a hint, never the answer."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

Checker = Callable[[Any], str | None]
_REGISTRY: dict[str, Checker] = {}
_ID = re.compile(r"^(\d\d)\.(\d+)$")


class Hint(Exception):
    """Raised by a checker to say what is wrong, without giving the answer away."""


def exercise(exercise_id: str) -> Callable[[Checker], Checker]:
    """Register a checker. It returns None (or a remark) when right, raises Hint when not."""

    def register(function: Checker) -> Checker:
        _REGISTRY[exercise_id] = function
        return function

    return register


def check(exercise_id: str, answer: Any) -> bool:
    """Check an answer to an exercise; print a pass or a hint; return whether it passed."""
    match = _ID.match(exercise_id) if isinstance(exercise_id, str) else None
    if match is None:
        raise ValueError(f"exercise id must look like '01.2', got {exercise_id!r}")
    try:
        importlib.import_module(f"utils.checks.ch{match.group(1)}")
    except ModuleNotFoundError as error:
        raise ValueError(f"no exercises for chapter {match.group(1)} ({error})") from None
    if exercise_id not in _REGISTRY:
        raise ValueError(f"unknown exercise {exercise_id!r}; known: {sorted(_REGISTRY)}")
    try:
        remark = _REGISTRY[exercise_id](answer)
    except Hint as hint:
        print(f"❌ Exercise {exercise_id}: not yet. Hint: {hint}")
        return False
    print(f"✅ Exercise {exercise_id}: correct." + (f" {remark}" if remark else ""))
    return True


def call(function: Any, *args: Any) -> Any:
    """Call a learner's function; a crash becomes a hint that names the error."""
    require(callable(function), f"expected a function, got {type(function).__name__}")
    try:
        return function(*args)
    except Exception as error:
        raise Hint(f"your function raised {type(error).__name__}: {error}") from None


def require(condition: bool, hint: str) -> None:
    """Raise Hint(hint) unless condition holds: the building block of every checker."""
    if not condition:
        raise Hint(hint)
