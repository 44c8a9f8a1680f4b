"""Tests for the self-checks of chapters 04 and 05: right answers pass, wrong ones get a hint."""

from __future__ import annotations

import math

import numpy as np
import pytest

from utils.checks import Hint, ch04, ch05, verdict  # noqa: F401  (importing registers the checkers)


def passes(exercise_id, answer):
    """Whether the check passes `answer`; it prints its verdict as `check` does."""
    result = verdict(exercise_id, answer)
    print(result.text())
    return result.passed


def hint_for(exercise, answer):
    """The hint a wrong answer gets (fails the test if the answer passes)."""
    with pytest.raises(Hint) as raised:
        exercise(answer)
    return str(raised.value)


# ---------------------------------------------------------------- 04.1 largest stable rate
def test_04_1_accepts_the_stability_limit(capsys):
    assert passes("04.1", lambda a: 2.0 / a)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda a: 1.0 / a, "one step"),
    (lambda a: 1.5 / a, "further out"),
    (lambda a: 3.0 / a, "too large"),
    (lambda a: 1.995 / a, "not exact"),
    (lambda a: -2.0 / a, "positive"),
    (lambda a: "2/a", "number"),
    (lambda a: 1 / 0, "ZeroDivisionError"),
])
def test_04_1_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch04.largest_stable_rate, wrong)


# ---------------------------------------------------------------- 04.2 updates per epoch
def test_04_2_accepts_rounding_up():
    assert passes("04.2", lambda n, b: math.ceil(n / b))
    assert passes("04.2", lambda n, b: -(-n // b))


@pytest.mark.parametrize("wrong, words", [
    (lambda n, b: n // b, "last, smaller batch"),
    (lambda n, b: n, "per batch, not per sample"),
    (lambda n, b: n / b, "whole number"),
    (lambda n, b: round(n / b), "still counts"),
])
def test_04_2_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch04.updates_per_epoch, wrong)


# ---------------------------------------------------------------- 04.3 step schedule
def staircase(start, every, factor):
    def schedule(step):
        return start * factor ** (step // every)
    return schedule


def test_04_3_accepts_a_staircase_and_a_piecewise_constant_schedule():
    assert passes("04.3", staircase(0.05, 1000, 0.1))
    keras = pytest.importorskip("keras")
    assert passes("04.3", keras.optimizers.schedules.PiecewiseConstantDecay(
        [1000, 2000, 3000], [0.05, 0.005, 0.0005, 0.00005]))


@pytest.mark.parametrize("wrong, words", [
    (lambda step: 0.05 * 0.1 ** (step / 1000), "smoothly"),
    (staircase(0.05, 1000, 0.5), "halved"),
    (staircase(0.1, 1000, 0.1), "step 0"),
    (staircase(0.05, 500, 0.1), "constant until step 1,000"),
    (lambda step: 0.05 if step < 1000 else 0.005, "repeats"),
    (0.05, "schedule object"),
])
def test_04_3_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch04.step_schedule, wrong)


# ---------------------------------------------------------------- 04.4 quadrant network
class FakeDense:
    def __init__(self, units):
        self.units = units


class FakeModel:
    """Quacks like a Keras model: `.layers` with `.units`, called on the points."""

    def __init__(self, hidden, rule):
        self.layers = [FakeDense(units) for units in hidden] + [FakeDense(1)]
        self.rule = rule

    def __call__(self, X):
        return self.rule(np.asarray(X))


def xor_rule(X):
    return (X[:, 0] * X[:, 1] > 0).astype(float)


def test_04_4_accepts_a_small_network_that_solves_the_quadrants():
    assert passes("04.4", FakeModel([5], xor_rule))


@pytest.mark.parametrize("wrong, words", [
    (FakeModel([16], xor_rule), "limit is 12"),
    (FakeModel([8, 8], xor_rule), "limit is 12"),
    (FakeModel([], xor_rule), "hidden layer"),
    (FakeModel([4], lambda X: (X[:, 0] > 0).astype(float)), "below 0.95"),
    (FakeModel([4], lambda X: np.ones(3)), "could not classify"),
    (xor_rule, "trained Keras model"),
])
def test_04_4_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch04.quadrant_network, wrong)


# ---------------------------------------------------------------- 05.1 output size
def test_05_1_accepts_the_formula():
    def right(n, k, stride, padding):
        return math.ceil(n / stride) if padding == "same" else (n - k) // stride + 1
    assert passes("05.1", right)


@pytest.mark.parametrize("wrong, words", [
    (lambda n, k, s, p: n if p == "same" else (n - k) // s, "first window position"),
    (lambda n, k, s, p: n if p == "same" else n - k + 1, "stride skips"),
    (lambda n, k, s, p: n if p == "same" else (n - k) // s + 1, "only with stride 1"),
    (lambda n, k, s, p: n // s if p == "same" else (n - k) // s + 1, "round up"),
    (lambda n, k, s, p: (n - k) // s + 1, "pads with zeros"),
])
def test_05_1_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch05.conv_output_size, wrong)


# ---------------------------------------------------------------- 05.2 parameters
def test_05_2_accepts_the_parameter_count():
    assert passes("05.2", lambda k, c, f: f * (k * k * c + 1))


@pytest.mark.parametrize("wrong, words", [
    (lambda k, c, f: f * k * k * c, "bias"),
    (lambda k, c, f: f * (k * k + 1), "all input channels"),
    (lambda k, c, f: f * k * k * c + 1, "one bias per filter"),
    (lambda k, c, f: (f + 1) * k * k * c, "wrong for"),
])
def test_05_2_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch05.conv2d_params, wrong)


# ---------------------------------------------------------------- 05.3 average pooling
def test_05_3_accepts_average_pooling():
    def right(maps, size):
        h, w = maps.shape[0] // size, maps.shape[1] // size
        return maps[:h * size, :w * size].reshape(h, size, w, size, -1).mean(axis=(1, 3))
    assert passes("05.3", right)


def test_05_3_hints_at_max_instead_of_mean():
    def max_pooling(maps, size):
        h, w = maps.shape[0] // size, maps.shape[1] // size
        return maps[:h * size, :w * size].reshape(h, size, w, size, -1).max(axis=(1, 3))
    assert "maximum" in hint_for(ch05.average_pool, max_pooling)


def test_05_3_hints_at_the_wrong_output_shape():
    assert "shape" in hint_for(ch05.average_pool, lambda maps, size: maps)


def test_05_3_hints_when_blocks_are_mixed_up():
    def wrong_axes(maps, size):
        h, w = maps.shape[0] // size, maps.shape[1] // size
        return maps[:h * size, :w * size].reshape(size, h, size, w, -1).mean(axis=(0, 2))
    assert "wrong values" in hint_for(ch05.average_pool, wrong_axes)


# ---------------------------------------------------------------- 05.4 FLOPs
def test_05_4_accepts_the_flop_count(capsys):
    assert passes("05.4", lambda n, k, c, f: 2 * n * n * k * k * c * f)
    assert "MFLOP" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda n, k, c, f: n * n * k * k * c * f, "2 FLOPs"),
    (lambda n, k, c, f: 2 * n * n * k * k * f, "every input channel"),
    (lambda n, k, c, f: 6 * n * n * k * k * c * f, "forward pass"),
    (lambda n, k, c, f: 2 * n * k * k * c * f, "one multiply-add"),
])
def test_05_4_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch05.conv2d_forward_flops, wrong)


# ---------------------------------------------------------------- no hint gives the answer away
SOLUTION_TEXT = ["2/a", "2.0 / a", "ceil(", "staircase=True", "0.005", "k * k * c + 1",
                 "ceil(n / stride)", "(n - k) // stride + 1", ".mean(axis", "2 * n_out"]


@pytest.mark.parametrize("exercise, wrong", [
    (ch04.largest_stable_rate, lambda a: 1.0 / a),
    (ch04.largest_stable_rate, lambda a: 1.995 / a),
    (ch04.updates_per_epoch, lambda n, b: n // b),
    (ch04.step_schedule, staircase(0.05, 1000, 0.5)),
    (ch05.conv_output_size, lambda n, k, s, p: (n - k) // s),
    (ch05.conv2d_params, lambda k, c, f: f * k * k * c),
    (ch05.average_pool, lambda maps, size: maps),
    (ch05.conv2d_forward_flops, lambda n, k, c, f: n),
])
def test_no_hint_contains_the_solution(exercise, wrong):
    text = hint_for(exercise, wrong)
    assert not any(piece in text for piece in SOLUTION_TEXT), text
