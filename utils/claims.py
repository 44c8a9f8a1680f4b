"""Claims: what the prose says a run shows, stated once and checked where the run happens.

A chapter states a claim as a sentence, a condition and the values it measured:

    utils.claim("Momentum ends ten times closer to the minimum than plain descent",
                "momentum < descent / 10", momentum=distance_momentum, descent=distance_plain)

The condition is a small expression over the named values: numbers, `+ - * / **`, comparisons
(chains too), `and`, `or`, `not`, `abs`, `min`, `max` and `close(a, b, rtol=..., atol=...)`.
Values may be NumPy arrays; a comparison then holds when it holds for every element.

In a learner's run (the default) a claim shows one line, and one that does not hold shows a
notice of what the text claims and what this run measured; the notebook goes on. Under
`make run`, `make test` and CI the environment variable DL_COURSE_CLAIMS=strict makes a claim
that does not hold raise `ClaimNotHeld`, naming the claim and its values.

Every claim also leaves its outcome in the cell's output (CLAIM_MIME), with its margin: how far
the values were from the bound, relative to their size (0.05: 5% to spare; negative: failed).
`make claims` reads those back over several seeds.
"""

from __future__ import annotations

import ast
import math
import os
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

CLAIM_MIME = "application/vnd.dl-course.claim+json"
MODE_VARIABLE = "DL_COURSE_CLAIMS"
WHY_RUNS_DIFFER = ("Runs can differ from the text: another seed, another CPU (oneDNN picks "
                   "other kernels, so sums differ in their last digits), other library "
                   "versions, changed parameters or, for timings, a busy machine.")


class Mode(StrEnum):
    """What a claim that does not hold does."""

    NOTICE = "notice"  # a learner's run: show a notice, go on
    STRICT = "strict"  # make run, nbval, CI: raise ClaimNotHeld


class ClaimNotHeld(AssertionError):
    """A claim of the text did not hold in a strict run."""


@dataclass(frozen=True)
class Outcome:
    """One claim as this run found it. `margin` is None for exact (==, !=, boolean) tests."""

    sentence: str
    condition: str
    values: dict[str, Any]
    holds: bool
    margin: float | None

    def values_text(self) -> str:
        return ", ".join(f"{name} = {_format(value)}" for name, value in self.values.items())

    def text(self) -> str:
        if self.holds:
            return f"✓ {self.sentence}  [{self.values_text()}]"
        margin = "" if self.margin is None else f", short by {-self.margin:.1%} of its size"
        return (f"⚠ The text claims: {self.sentence}\n"
                f"  This run measured {self.values_text()}, so `{self.condition}` does not hold"
                f"{margin}.\n  {WHY_RUNS_DIFFER} The notebook goes on.")

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        data["values"] = {name: _jsonable(value) for name, value in self.values.items()}
        return data


def mode() -> Mode:
    """The mode DL_COURSE_CLAIMS asks for: `notice` (the default) or `strict`."""
    value = os.environ.get(MODE_VARIABLE, Mode.NOTICE.value).strip().lower() or Mode.NOTICE
    try:
        return Mode(value)
    except ValueError:
        raise ValueError(f"{MODE_VARIABLE} must be one of {[m.value for m in Mode]}, "
                         f"got {value!r}") from None


def evaluate(sentence: str, condition: str, values: dict[str, Any]) -> Outcome:
    """Evaluate a claim's condition over its values, without showing or raising anything."""
    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError(f"a claim needs a sentence, got {sentence!r}")
    try:
        tree = ast.parse(condition, mode="eval").body
    except SyntaxError as error:
        raise ValueError(f"claim condition {condition!r} is not an expression: {error}") from None
    holds, margin = _Evaluator(values).predicate(tree)
    return Outcome(sentence.strip(), condition, dict(values), holds, margin)


def claim(sentence: str, condition: str, /, **values: Any) -> None:
    """State a claim of the text and check it on this run's values (see the module docstring).

    It shows one line; it returns nothing, so a cell ending with it shows only that line.
    """
    outcome = evaluate(sentence, condition, values)
    if not outcome.holds and mode() is Mode.STRICT:
        raise ClaimNotHeld(f"{outcome.sentence}: `{condition}` does not hold for "
                           f"{outcome.values_text()}")
    _show(outcome)


def _show(outcome: Outcome) -> None:
    try:
        from IPython.display import display
    except ImportError:
        print(outcome.text())
        return
    display({CLAIM_MIME: outcome.record(), "text/plain": outcome.text()}, raw=True)


def _format(value: Any) -> str:
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    import numpy as np

    array = np.asarray(value)
    if array.ndim == 0:
        return _format(array.item())
    return np.array2string(array, precision=4, threshold=8, separator=", ")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value if not (isinstance(value, float) and not math.isfinite(value)) else str(value)
    import numpy as np

    array = np.asarray(value)
    return _jsonable(array.item()) if array.ndim == 0 else [_jsonable(v) for v in array.tolist()]


_ARITHMETIC = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
               ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b,
               ast.Pow: lambda a, b: a ** b}
_ORDER = {ast.Lt: (lambda a, b: a < b, -1), ast.LtE: (lambda a, b: a <= b, -1),
          ast.Gt: (lambda a, b: a > b, 1), ast.GtE: (lambda a, b: a >= b, 1)}


class _Evaluator:
    """Evaluates the small language of claim conditions; anything else is a ValueError."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def predicate(self, node: ast.AST) -> tuple[bool, float | None]:
        """(holds, margin) of a condition."""
        if isinstance(node, ast.BoolOp):
            parts = [self.predicate(value) for value in node.values]
            combine = all if isinstance(node.op, ast.And) else any
            margins = [m for _, m in parts if m is not None]
            margin = (min if isinstance(node.op, ast.And) else max)(margins) if margins else None
            return combine(h for h, _ in parts), margin
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            holds, margin = self.predicate(node.operand)
            return not holds, None if margin is None else -margin
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "close":
            return self.close(node)
        value = self.number(node)
        import numpy as np

        if np.asarray(value).dtype != bool:
            raise ValueError(f"a claim condition must be a comparison or a true/false value, "
                             f"got `{ast.unparse(node)}`")
        return bool(np.all(value)), None

    def compare(self, node: ast.Compare) -> tuple[bool, float | None]:
        import numpy as np

        left, holds, margins = self.number(node.left), True, []
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.number(right_node)
            if type(op) in _ORDER:
                test, sign = _ORDER[type(op)]
                scale = np.maximum(np.maximum(np.abs(left), np.abs(right)), 1e-12)
                slack = np.asarray(sign * (np.asarray(left) - right) / scale)
                if slack.size:  # an empty array holds vacuously, with no margin
                    margins.append(float(np.min(slack)))
            elif isinstance(op, ast.Eq | ast.NotEq):
                test = (lambda a, b: a == b) if isinstance(op, ast.Eq) else (lambda a, b: a != b)
            else:
                raise ValueError(f"claim conditions compare with < <= > >= == !=, got "
                                 f"`{ast.unparse(node)}`")
            holds = holds and bool(np.all(test(left, right)))
            left = right
        return holds, min(margins) if margins else None

    def close(self, node: ast.Call) -> tuple[bool, float | None]:
        import numpy as np

        if len(node.args) != 2 or {k.arg for k in node.keywords} - {"rtol", "atol"}:
            raise ValueError(f"close takes two values and rtol=, atol=: `{ast.unparse(node)}`")
        a, b = (np.asarray(self.number(arg), dtype=float) for arg in node.args)
        tolerance = {"rtol": 1e-6, "atol": 0.0}
        tolerance.update({k.arg: float(self.number(k.value)) for k in node.keywords})
        allowed = tolerance["atol"] + tolerance["rtol"] * np.abs(b)
        if np.any(allowed <= 0):
            raise ValueError(f"close needs a positive tolerance: `{ast.unparse(node)}`")
        used = float(np.max(np.abs(a - b) / allowed))
        return used <= 1, 1 - used

    def number(self, node: ast.AST) -> Any:
        """The value of an arithmetic expression."""
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | bool):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in self.values:
                raise ValueError(f"the claim's condition uses {node.id!r}, which is not among "
                                 f"its values {sorted(self.values)}")
            return self.values[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            return _ARITHMETIC[type(node.op)](self.number(node.left), self.number(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self.number(node.operand)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in {"abs", "min", "max"}:
            import numpy as np

            arguments = [self.number(arg) for arg in node.args]
            if node.keywords or not arguments:
                raise ValueError(f"`{ast.unparse(node)}`: abs, min and max take values only")
            if node.func.id == "abs":
                return np.abs(arguments[0])
            function = np.min if node.func.id == "min" else np.max
            return function(arguments[0]) if len(arguments) == 1 else function(arguments)
        raise ValueError(f"claim conditions use names, numbers, + - * / **, comparisons, and, or, "
                         f"not, abs, min, max and close(); got `{ast.unparse(node)}`")
