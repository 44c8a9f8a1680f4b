"""Grading tests for chapter 01 (the sigmoid neuron), run by `make grade`.

Each test runs in the judge, a process of its own, after all of the student's cells. It
receives `answers`, the notebook's variables by name, carried over as data; a failed `assert`
scores 0 and its message becomes the student's feedback, so it says what is wrong without
giving the answer away. The cross-entropy exercises are graded by property (finite differences,
escaping a saturated start) on data the notebook never showed.
"""

import numpy as np

from utils.checks import ch01
from utils.checks.ch01 import _ce_cost as _cross_entropy
from utils.checks.ch01 import _numeric_gradient as _numeric
from utils.checks.ch01 import _quadratic_cost as _quadratic
from utils.checks.ch01 import _sigmoid
from utils.grading import graded

# Injected into the submission's `parameters` cell. Chapter 01 trains in milliseconds; fewer
# epochs and points only show the mechanism, and a batch of 256 for the layer timed in section 8
# (the loop it is compared with is 10 times slower there, on one core); the chapter's asserts
# hold at this size.
PARAMETERS = {"EPOCHS": 100, "N_SAMPLES": 300, "LAYER_BATCH": 256}
CELL_TIMEOUT = 20  # seconds for one cell of the submission
NOTEBOOK_TIMEOUT = 120  # seconds for all of the submission's cells together
TEST_TIMEOUT = 5  # seconds for one test below


def _pair(result, names):
    assert isinstance(result, tuple | list) and len(result) == 2, (
        f"should return a pair {names}, got {type(result).__name__}")
    return np.asarray(result[0], dtype=float), float(np.ravel(np.asarray(result[1], float))[0])


@graded("01.1", points=3)
def cross_entropy_gradients_match_finite_differences(answers):
    cross_entropy_gradients = answers["cross_entropy_gradients"]
    rng = np.random.default_rng(11)
    X, y = rng.normal(size=(90, 3)), rng.integers(0, 2, 90)
    w, b = rng.normal(size=3), -0.4
    with np.errstate(all="ignore"):
        grad_w, grad_b = _pair(cross_entropy_gradients(w.copy(), b, X.copy(), y.copy()),
                               "(grad_w, grad_b)")
    assert grad_w.shape == (3,), (
        f"grad_w should hold one number per input (3 here), got shape {grad_w.shape}")
    numeric_w, numeric_b = _numeric(_cross_entropy, w, b, X, y)
    quad_w, _ = _numeric(_quadratic, w, b, X, y)
    assert not np.allclose(grad_w, quad_w, rtol=1e-4), (
        "that is the gradient of the quadratic cost, not of the cross-entropy")
    assert not np.allclose(grad_w, -numeric_w, rtol=1e-4), "the sign is reversed (uphill)"
    assert not np.allclose(grad_w, len(y) * numeric_w, rtol=1e-4), (
        "that is the gradient of the sum over the points; the cost is the mean")
    assert np.allclose(grad_w, numeric_w, rtol=1e-4, atol=1e-9), (
        "grad_w differs from a finite difference of the mean cross-entropy on new data "
        "(three inputs, 90 points); does it work for any number of inputs and points?")
    assert np.isclose(grad_b, numeric_b, rtol=1e-4, atol=1e-9), (
        "grad_w is right, grad_b is not: the bias enters every point's score with slope 1")


@graded("01.2", points=2)
def slowdown_is_the_ratio_of_the_two_slopes(answers):
    slowdown = answers["slowdown"]
    z = np.array([-9.0, -4.0, -0.7, 0.0, 1.2, 3.0, 10.0])
    with np.errstate(all="ignore"):
        out = np.asarray(slowdown(z.copy()), dtype=float)
    assert out.shape == z.shape, f"slowdown should return one ratio per score, got {out.shape}"
    h = 1e-6
    quadratic = (0.5 * (_sigmoid(z + h) - 1) ** 2 - 0.5 * (_sigmoid(z - h) - 1) ** 2) / (2 * h)
    cross_entropy = (np.log(_sigmoid(z - h)) - np.log(_sigmoid(z + h))) / (2 * h)
    ratio = quadratic / cross_entropy
    assert not np.allclose(out, 1 / ratio, rtol=1e-3), (
        "the ratio is upside down: the quadratic cost's slope is the smaller one")
    assert not np.allclose(out, np.abs(quadratic), rtol=1e-3), (
        "that is the quadratic cost's slope alone, not its ratio to the cross-entropy's")
    assert np.allclose(out, ratio, rtol=1e-4, atol=1e-12), (
        "slowdown(z) differs from the ratio of the two costs' slopes dC/dz for a point of "
        "class 1, on scores from -9 to 10")


@graded("01.3", points=3)
def cross_entropy_training_escapes_a_saturated_start(answers):
    # New data (its best bias far from 0, like the self-check's), a new start, more epochs;
    # the same verdict as the self-check.
    X, y = ch01.blobs(13, n=240, centres=(0.6, 3.0), scale=1.0)
    ch01.judge_training(answers["train_cross_entropy"], X, y, np.array([-5.0, -5.0]), 0.5, 0.5,
                        80)


@graded("01.4", points=1)
def perceptron_mistakes_counted_until_a_clean_pass(answers):
    # New separable data (another seed), and XOR; the same verdict as the self-check.
    ch01.judge_mistakes(answers["count_mistakes"], 1_041)
