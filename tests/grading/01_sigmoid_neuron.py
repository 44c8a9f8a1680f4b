"""Grading tests for chapter 01 (the sigmoid neuron), run by `make grade`.

Each test runs in the submission's own kernel after all of the student's cells. It receives
`answers`, the notebook's variables by name; a failed `assert` scores 0 and its message becomes
the student's feedback, so it says what is wrong without giving the answer away.
"""

import numpy as np

from utils.grading import graded

# Injected into the submission's `parameters` cell. Chapter 01 trains in milliseconds, so the
# defaults stay; fewer epochs only show the mechanism (the chapter's asserts still hold).
PARAMETERS = {"EPOCHS": 150}
CELL_TIMEOUT = 20  # seconds for one cell of the submission
NOTEBOOK_TIMEOUT = 120  # seconds for all of the submission's cells together
TEST_TIMEOUT = 5  # seconds for one test below


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@graded("01.1", points=2)
def sigmoid_prime_is_the_slope_of_the_sigmoid(answers):
    sigmoid_prime = answers["sigmoid_prime"]
    z = np.array([-20.0, -3.0, -0.5, 0.0, 0.25, 1.5, 7.0])
    out = np.asarray(sigmoid_prime(z), dtype=float)
    assert out.shape == z.shape, (
        f"sigmoid_prime should return one value per input: shape {z.shape}, got {out.shape}")
    s = _sigmoid(z)
    assert np.allclose(out, s * (1 - s), rtol=1e-6, atol=1e-12), (
        "sigmoid_prime(z) does not match the slope of the sigmoid on a few test points; "
        "compare it with a finite difference")


@graded("01.2", points=3)
def bias_gradient_matches_a_finite_difference(answers):
    cost_gradient_b = answers["cost_gradient_b"]
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(80, 3)), rng.integers(0, 2, 80)
    w, b, h = rng.normal(size=3), -0.4, 1e-6

    def mean_cost(bias):
        return 0.5 * np.mean((_sigmoid(X @ w + bias) - y) ** 2)

    expected = (mean_cost(b + h) - mean_cost(b - h)) / (2 * h)
    out = np.asarray(cost_gradient_b(w, b, X, y), dtype=float)
    assert out.size == 1, f"cost_gradient_b should return one number, got shape {out.shape}"
    assert np.isclose(float(out), expected, rtol=1e-4, atol=1e-9), (
        "cost_gradient_b differs from a finite difference of the mean cost on new data "
        "(three inputs, 80 points); is it the mean over the points, for any number of inputs?")


@graded("01.3", points=1)
def perceptron_computes_and(answers):
    w_and, b_and = np.asarray(answers["w_and"], dtype=float), float(answers["b_and"])
    assert w_and.shape == (2,), f"w_and should hold two weights, got shape {w_and.shape}"
    inputs = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    outputs = (inputs @ w_and + b_and >= 0).astype(int)
    assert outputs.tolist() == [0, 0, 0, 1], (
        f"the step neuron outputs {outputs.tolist()} for the inputs (0,0), (0,1), (1,0), (1,1); "
        "AND needs [0, 0, 0, 1]")
