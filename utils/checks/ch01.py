"""Self-checks for chapter 01 (the sigmoid neuron)."""

from __future__ import annotations

import numpy as np

from utils.checks import call_for_array as _call
from utils.checks import exercise, require


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@exercise("01.1")
def sigmoid_derivative(sigmoid_prime):
    z = np.linspace(-6, 6, 25)
    out = _call(sigmoid_prime, z)
    require(out.shape == z.shape, f"for an array of shape {z.shape} return the same shape, "
            f"got {out.shape}")
    h = 1e-5
    numeric = (_sigmoid(z + h) - _sigmoid(z - h)) / (2 * h)
    require(np.all(out > 0), "the sigmoid only ever rises, so its slope is positive everywhere")
    require(np.allclose(out, out[::-1]), "the slope of the sigmoid is symmetric around z = 0")
    require(np.allclose(out, numeric, atol=1e-6),
            "compare your values with a finite difference (sigmoid(z+h) - sigmoid(z-h)) / 2h")


@exercise("01.2")
def bias_gradient(cost_gradient_b):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(50, 2)), rng.integers(0, 2, 50)
    w, b, h = rng.normal(size=2), 0.2, 1e-6

    def cost(bias):
        return 0.5 * np.mean((_sigmoid(X @ w + bias) - y) ** 2)

    numeric = (cost(b + h) - cost(b - h)) / (2 * h)
    out = _call(cost_gradient_b, w, b, X, y)
    require(out.size == 1, f"return one number (the bias is a scalar), got shape {out.shape}")
    require(not np.isclose(float(out), numeric * len(y), rtol=1e-4),
            "that is the gradient of the SUM over the points; the exercise asks for the MEAN")
    require(np.isclose(float(out), numeric, rtol=1e-4, atol=1e-9),
            "chain rule: error (f - y), times the sigmoid's slope f(1 - f), times dz/db = 1, "
            "averaged over the points")


@exercise("01.3")
def and_gate(answer):
    require(isinstance(answer, tuple | list) and len(answer) == 2,
            "pass a pair (w_and, b_and)")
    w, b = answer
    w = np.asarray(w, dtype=float)
    require(w.shape == (2,), f"w_and needs two weights, one per input; got shape {w.shape}")
    inputs = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    outputs = (inputs @ w + float(b) >= 0).astype(int)
    wrong = [tuple(int(v) for v in x) for x, o, t in zip(inputs, outputs, [0, 0, 0, 1], strict=True)
             if o != t]
    require(not wrong, f"wrong output for input(s) {wrong}: the sum w·x + b must reach 0 only "
            "when both inputs are 1")
