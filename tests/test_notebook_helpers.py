"""utils.notebook and utils.checks: set-up, metric recording and the self-check machinery."""

import math

import numpy as np
import pytest

import utils
from utils.checks import Hint


@pytest.mark.parametrize("value", [math.nan, math.inf, "0.9", None, True, [0.9]])
def test_record_rejects_a_value_that_is_not_a_finite_number(value):
    with pytest.raises(ValueError, match="must be a finite number"):
        utils.record("test_accuracy", value)


@pytest.mark.parametrize("name", ["Test Accuracy", "1st", "", None, "acc-1"])
def test_record_rejects_a_name_that_is_not_snake_case(name):
    with pytest.raises(ValueError, match="snake_case"):
        utils.record(name, 0.5)


def test_record_returns_the_value_as_a_float():
    assert utils.record("test_accuracy", np.float32(0.5)) == 0.5


@pytest.mark.parametrize("seed", [-1, 1.5, "42", True])
def test_setup_notebook_rejects_a_bad_seed(seed):
    with pytest.raises(ValueError, match="non-negative int"):
        utils.setup_notebook(seed, keras=False)


def test_setup_notebook_makes_numpy_reproducible(capsys):
    utils.setup_notebook(7, keras=False)
    first = np.random.rand(3)
    utils.setup_notebook(7, keras=False)
    assert np.array_equal(first, np.random.rand(3))
    assert "seed 7" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["1.1", "01-1", 11, "ab.1"])
def test_check_rejects_a_malformed_exercise_id(bad):
    with pytest.raises(ValueError, match="must look like '01.2'"):
        utils.check(bad, None)


def test_check_names_the_known_exercises_for_an_unknown_one():
    with pytest.raises(ValueError, match="unknown exercise '01.99'.*'01.1'"):
        utils.check("01.99", None)


def test_check_prints_a_pass_or_a_hint(capsys):
    def ratio(z):
        return np.exp(-z) / (1 + np.exp(-z)) ** 2

    assert utils.check("01.2", ratio) is None, "no value: no stray `True` shown"
    assert "✅ Exercise 01.2: correct" in capsys.readouterr().out
    assert utils.check("01.2", lambda z: 1 / ratio(z)) is None
    out = capsys.readouterr().out
    assert "❌ Exercise 01.2: not yet. Hint:" in out and "upside down" in out


def test_a_hint_is_an_exception_with_a_message():
    assert str(Hint("look again")) == "look again"
