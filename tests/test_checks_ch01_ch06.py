"""The check mechanism (verdicts, placeholders, no stray value) and the self-checks of chapters
01 and 06, whose 06.3 key is now the right one."""

from __future__ import annotations

import numpy as np
import pytest

from utils import check
from utils.checks import HINT, UNANSWERED, Hint, ch01, ch06, verdict


def hint_for(exercise, answer):
    with pytest.raises(Hint) as raised:
        exercise(answer)
    return str(raised.value)


def placeholder(*args):
    raise NotImplementedError("Exercise 01.1 is not answered yet")


@pytest.mark.parametrize("exercise_id, answer", [
    ("01.1", placeholder), ("01.2", placeholder), ("02.1", placeholder), ("03.1", placeholder),
    ("03.2", placeholder), ("04.1", placeholder), ("05.3", placeholder), ("06.2", placeholder),
    ("01.3", (..., ...)), ("03.3", ...), ("04.3", ...), ("06.1", (..., 0.16)),
    ("06.3", (..., ...)),
])
def test_an_unanswered_exercise_is_reported_as_such_and_stops_nothing(exercise_id, answer,
                                                                      capsys):
    assert verdict(exercise_id, answer).status == UNANSWERED
    assert check(exercise_id, answer) is None, "no value, so no stray `True` under the cell"
    out = capsys.readouterr().out
    assert f"Exercise {exercise_id}: not answered yet" in out and "Hint" not in out


def test_a_check_prints_a_pass_or_a_hint_and_returns_nothing(capsys):
    assert check("01.3", (np.array([1.0, 1.0]), -1.5)) is None
    assert capsys.readouterr().out == "✅ Exercise 01.3: correct.\n"
    assert check("01.3", (np.array([1.0, 1.0]), -0.5)) is None
    assert capsys.readouterr().out.startswith("❌ Exercise 01.3: not yet. Hint: wrong output")


def test_a_function_that_crashes_gets_a_hint_naming_its_error():
    def broken(z):
        return z.undefined

    result = verdict("01.1", broken)
    assert result.status == HINT and "raised AttributeError" in result.message


def test_unknown_or_malformed_exercise_ids_are_errors_of_the_notebook_not_hints():
    with pytest.raises(ValueError, match="look like '01.2'"):
        verdict("1.2", 0)
    with pytest.raises(ValueError, match="unknown exercise '01.9'"):
        verdict("01.9", 0)


def test_01_checks_accept_right_answers_and_name_typical_mistakes():
    assert ch01.sigmoid_derivative(lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2) is None
    assert "positive everywhere" in hint_for(ch01.sigmoid_derivative, lambda z: -np.ones_like(z))
    assert "same shape" in hint_for(ch01.sigmoid_derivative, lambda z: 0.25)

    def mean_gradient(w, b, X, y):
        f = 1 / (1 + np.exp(-(X @ w + b)))
        return np.mean((f - y) * f * (1 - f))

    def sum_gradient(w, b, X, y):
        return mean_gradient(w, b, X, y) * len(y)

    assert ch01.bias_gradient(mean_gradient) is None
    assert "SUM" in hint_for(ch01.bias_gradient, sum_gradient)
    assert "pair" in hint_for(ch01.and_gate, [1.0, 1.0, -1.5])


# ---------------------------------------------------------------- 06.3, its key corrected
RIGHT = ({5, 8, 9, 10}, {8, 9, 10})


def test_06_3_accepts_the_writing_lines_and_the_rank_0_lines(capsys):
    check("06.3", RIGHT)
    assert "✅ Exercise 06.3: correct." in capsys.readouterr().out
    assert verdict("06.3", ([5, 8, 9, 10], (8, 9, 10))).passed, "lists and tuples too"


@pytest.mark.parametrize("answer, words", [
    (({5, 8, 9, 10}, {5, 8, 9, 10}), "collective operations"),
    (({8, 9, 10}, {8, 9, 10}), "including through an argument"),
    (({5, 8, 9, 10, 11}, {8, 9, 10}), "line 11? evaluate(..., verbose=0)"),
    (({5, 6, 8, 9, 10}, {8, 9, 10}), "count it once"),
    (({5, 8, 9, 10}, {8, 9}), "8 copies of the same output"),
    (({5, 8, 9, 10}, {3}), "among the lines that write output"),
    (({5, 8, 9, 10},), "pair of sets"),
    (({5, 8, 9, 10}, {"8"}), "ints from 1 to 11"),
])
def test_06_3_gives_a_hint_for_typical_mistakes(answer, words):
    hint = hint_for(ch06.rank0_only_lines, answer)
    assert words in hint
    assert "{8, 9, 10}" not in hint


def test_06_3_keys_are_stored_as_hashes_only():
    source = open(ch06.__file__).read()
    assert "{8, 9, 10}" not in source and "{5, 8, 9, 10}" not in source
    assert ch06._lines_digest(RIGHT[1]) == ch06.RANK0_LINES_SHA256


def test_06_1_and_06_2_accept_right_answers_and_name_typical_mistakes():
    assert ch06.effective_batch_and_learning_rate((512, 0.16)) is None
    assert "one node only" in hint_for(ch06.effective_batch_and_learning_rate, (128, 0.04))
    assert ch06.ring_allreduce_volume(lambda n, w, b=4: 2 * (w - 1) / w * n * b) is None
    assert "reduce-scatter phase only" in hint_for(ch06.ring_allreduce_volume,
                                                   lambda n, w, b=4: (w - 1) / w * n * b)
    assert "number of bytes" in hint_for(ch06.ring_allreduce_volume, lambda n, w, b=4: "many")
