"""Self-checks for chapter 01 (the sigmoid neuron).

The cross-entropy exercises are checked by property (finite differences, escaping a saturated
start), so that nothing here spells out the gradient a learner is asked to derive.
"""

from __future__ import annotations

import numpy as np

from utils.checks import Hint, call, exercise, require
from utils.checks import call_for_array as _call


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _ce_cost(w, b, X, y):
    with np.errstate(all="ignore"):  # a diverging answer gives inf, and then a hint
        f = _sigmoid(X @ w + b)
        return -np.mean(y * np.log(f) + (1 - y) * np.log(1 - f))


def _quadratic_cost(w, b, X, y):
    return 0.5 * np.mean((_sigmoid(X @ w + b) - y) ** 2)


def _numeric_gradient(cost, w, b, X, y, h=1e-6):
    grad_w = np.array([(cost(w + h * e, b, X, y) - cost(w - h * e, b, X, y)) / (2 * h)
                       for e in np.eye(len(w))])
    return grad_w, (cost(w, b + h, X, y) - cost(w, b - h, X, y)) / (2 * h)


def blobs(seed, n=200, centres=(-1.0, 1.0), scale=1.1):
    """Two overlapping clouds, like the chapter's: class 0 around (c0, c0), class 1 around
    (c1, c1), with centres (c0, c1) = (-1, 1) unless given."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(scale=scale, size=(n, 2)) + np.where(y[:, None] == 1, centres[1], centres[0])
    return X, y


def _accuracy(w, b, X, y):
    return float(np.mean((_sigmoid(X @ w + b) >= 0.5) == y))


def _pair(result, names):
    require(isinstance(result, tuple | list) and len(result) == 2,
            f"return a pair {names}; got {type(result).__name__}")
    try:
        return np.asarray(result[0], dtype=float), np.asarray(result[1], dtype=float)
    except (TypeError, ValueError):
        raise Hint(f"the pair {names} should hold numbers") from None


@exercise("01.1")
def cross_entropy_gradient(cross_entropy_gradients):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(60, 2)), rng.integers(0, 2, 60)
    w, b = rng.normal(size=2), 0.3
    grad_w, grad_b = _pair(call(cross_entropy_gradients, w.copy(), b, X.copy(), y.copy()),
                           "(grad_w, grad_b)")
    require(grad_w.shape == w.shape, f"grad_w needs one number per weight: shape {w.shape}, "
            f"got {grad_w.shape}")
    require(grad_b.size == 1, f"grad_b is one number (the bias is a scalar), got {grad_b.shape}")
    grad_b = float(np.ravel(grad_b)[0])
    numeric_w, numeric_b = _numeric_gradient(_ce_cost, w, b, X, y)
    quad_w, quad_b = _numeric_gradient(_quadratic_cost, w, b, X, y)
    require(not (np.allclose(grad_w, quad_w, rtol=1e-4) and np.isclose(grad_b, quad_b, rtol=1e-4)),
            "that is the gradient of the QUADRATIC cost; differentiate the cross-entropy instead")
    require(not (np.allclose(grad_w, -numeric_w, rtol=1e-4)
                 and np.isclose(grad_b, -numeric_b, rtol=1e-4)),
            "the sign is reversed: that points uphill (mind the minus in front of the cost)")
    require(not (np.allclose(grad_w, numeric_w * len(y), rtol=1e-4)),
            "that is the gradient of the SUM over the points; the exercise asks for the MEAN")
    require(np.allclose(grad_w, numeric_w, rtol=1e-4, atol=1e-9),
            "grad_w differs from a finite difference of the mean cross-entropy; write dC/df and "
            "df/dz for one point and multiply them out before coding")
    require(np.isclose(grad_b, numeric_b, rtol=1e-4, atol=1e-9),
            "grad_w is right but grad_b is not: dz/db = 1 for every point")
    X3, y3 = rng.normal(size=(7, 3)), rng.integers(0, 2, 7)
    w3 = rng.normal(size=3)
    grad_w, grad_b = _pair(call(cross_entropy_gradients, w3, -0.2, X3, y3), "(grad_w, grad_b)")
    numeric_w, numeric_b = _numeric_gradient(_ce_cost, w3, -0.2, X3, y3)
    require(grad_w.shape == (3,) and np.allclose(grad_w, numeric_w, rtol=1e-4, atol=1e-9)
            and np.isclose(float(np.ravel(grad_b)[0]), numeric_b, rtol=1e-4, atol=1e-9),
            "right on 2 inputs and 60 points but wrong on 3 inputs and 7 points: avoid "
            "hard-coded sizes")


@exercise("01.2")
def slowdown_ratio(slowdown):
    z = np.array([-8.0, -3.0, -1.0, 0.0, 0.5, 2.0, 6.0])
    out = _call(slowdown, z.copy())
    require(out.shape == z.shape, f"return one ratio per score: shape {z.shape}, got {out.shape}")
    require(np.all(np.isfinite(out)), "your ratios contain inf or nan")
    h = 1e-6

    def slope(cost):  # d cost / dz for one point of class 1, by finite differences
        return (cost(z + h) - cost(z - h)) / (2 * h)

    quadratic = slope(lambda s: 0.5 * (_sigmoid(s) - 1) ** 2)
    cross_entropy = slope(lambda s: -np.log(_sigmoid(s)))
    ratio = quadratic / cross_entropy
    require(not np.allclose(out, 1 / ratio, rtol=1e-3),
            "upside down: 'how many times smaller' is quadratic over cross-entropy, below 1")
    require(not np.allclose(out, np.abs(quadratic), rtol=1e-3),
            "that is the quadratic cost's derivative itself; divide it by the cross-entropy's")
    require(np.all((out > 0) & (out <= 0.25 + 1e-9)),
            "the ratio is positive and never above 0.25 (where is the sigmoid steepest?)")
    require(np.allclose(out, ratio, rtol=1e-4, atol=1e-9),
            "compare dC/dz of the two costs for y = 1: the factor (f - y) is common to both; "
            "what is left over?")


def _descend(X, y, w, b, rate, epochs, cost="cross-entropy", scale=1.0, bias=True):
    """Batch gradient descent on the mean cost over X, y: with the defaults, the path a right
    answer to 01.3 takes; the other arguments give the paths of the usual mistakes."""
    for _ in range(epochs):
        f = _sigmoid(X @ w + b)
        delta = scale * ((f - y) if cost == "cross-entropy" else (f - y) * f * (1 - f)) / len(y)
        w, b = w - rate * X.T @ delta, (b - rate * np.sum(delta)) if bias else b
    return w, b


def judge_training(train_cross_entropy, X, y, w0, b0, rate, epochs):
    """Exercise 01.3's verdict, for the self-check and the grading test alike: a remark when
    `train_cross_entropy` takes, from (w0, b0), the path of batch gradient descent on the mean
    cross-entropy of X, y; else a Hint naming the mistake. X's best bias is far from 0, so a
    bias that never moves cannot pass."""
    def run(epochs_to_run):
        result = call(train_cross_entropy, w0.copy(), b0, X.copy(), y.copy(), rate, epochs_to_run)
        w, b = _pair(result, "(w, b)")
        require(b.size == 1, "b is one number")
        require(w.shape == w0.shape, f"w should keep one weight per input, got shape {w.shape}")
        return w, float(np.ravel(b)[0])

    w, b = run(0)
    require(np.allclose(w, w0) and np.isclose(b, b0),
            "with epochs=0 nothing should change: start from the w and b you are given")
    w, b = run(epochs)
    require(np.all(np.isfinite(w)) and np.isfinite(b), "training produced inf or nan")

    def took(path):
        return np.allclose(w, path[0], rtol=1e-4, atol=1e-6) and np.isclose(b, path[1],
                                                                           rtol=1e-4, atol=1e-6)

    mistakes = [  # the usual ones: the path each takes (arguments of _descend), what to say
        ({"cost": "quadratic"}, "it moves exactly as the quadratic cost does, and stays stuck: "
                                "use your cross-entropy gradient"),
        ({"bias": False}, "b never moves: update the bias too, at every epoch"),
        ({"scale": -1.0}, "the cross-entropy rose during training: step AGAINST the gradient"),
        ({"scale": float(len(y))}, "every step is as long as the number of points times the "
                                   "right one: the cost is the mean over the points, and so is "
                                   "its gradient"),
    ]
    if took(_descend(X, y, w0, b0, rate, epochs)):
        stuck = _descend(X, y, w0, b0, rate, epochs, cost="quadratic")
        return (f"from w = {tuple(float(v) for v in w0)}, {epochs} epochs: training accuracy "
                f"{_accuracy(w, b, X, y):.2f} with the cross-entropy, "
                f"{_accuracy(*stuck, X, y):.2f} with the quadratic cost.")
    for settings, hint in mistakes:
        with np.errstate(all="ignore"):
            require(not took(_descend(X, y, w0, b0, rate, epochs, **settings)), hint)
    raise Hint(f"after {epochs} epochs at rate {rate} your (w, b) is not where batch gradient "
               "descent on the mean cross-entropy arrives. Each epoch is one step, on all the "
               "points at once, of the rate given times the gradient, for both w and b")


@exercise("01.3")
def escapes_a_saturated_start(train_cross_entropy):
    X, y = blobs(5, centres=(1.0, 3.0))
    return judge_training(train_cross_entropy, X, y, np.array([-4.0, -4.0]), 0.0, 0.5, 60)


def perceptron_mistakes(X, y, max_passes, *, bias=True):
    """The perceptron rule from zeros, points in their order, pass after pass: (corrections in
    all, passes) once a pass makes none; None if pass `max_passes` still corrects."""
    w, b, total = np.zeros(X.shape[1]), 0.0, 0
    for passes in range(1, max_passes + 1):
        mistakes = 0
        for x_i, y_i in zip(X, y, strict=True):
            error = y_i - float(x_i @ w + b >= 0)
            if error:
                w, b, mistakes = w + error * x_i, b + error * bias, mistakes + 1
        total += mistakes
        if mistakes == 0:
            return total, passes
    return None


def separable(seed, n, dims, margin=0.2):
    """`n` points in [-2, 2]^dims split by a random plane that misses the origin (so the bias
    must move), none of them closer to it than `margin`."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=dims)
    normal /= np.linalg.norm(normal)
    offset = rng.uniform(0.5, 1.0)
    X = rng.uniform(-2, 2, size=(20 * n, dims))
    side = X @ normal - offset
    X, side = X[np.abs(side) > margin][:n], side[np.abs(side) > margin][:n]
    return X, (side > 0).astype(float)


XOR = (np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float), np.array([0, 1, 1, 0.0]))


def judge_mistakes(count_mistakes, seed):
    """The verdict on a `count_mistakes` (exercise 01.4), on data drawn from `seed`; the same
    for the self-check and the grader, which draws its own seed."""
    cases = [separable(seed, 30, 2), separable(seed + 1, 50, 3), separable(seed + 2, 40, 2, 0.05)]
    for X, y in cases:
        want_total, want_passes = perceptron_mistakes(X, y, 1000)
        got = call(count_mistakes, X.copy(), y.copy(), 1000)
        where = f"on {len(y)} separable points in {X.shape[1]} dimensions"
        require(got is not None, f"{where} you returned None, but the rule stops there: a line "
                "separates the classes, so some pass makes no mistake (does your rule correct "
                "the bias too? Without it the line must go through the origin)")
        require(isinstance(got, int | np.integer) and not isinstance(got, bool),
                f"return the number of mistakes, an int; got {type(got).__name__}")
        if got == want_total:
            continue
        require(got != want_passes, f"{where} you returned the number of passes; count the "
                "corrections (the points the rule got wrong), over all passes")
        without_bias = perceptron_mistakes(X, y, 1000, bias=False)
        require(without_bias is None or got != without_bias[0],
                f"{where} your count is the one of a rule that never corrects the bias")
        raise Hint(f"{where} your count differs from the rule's: start from zero weights and "
                   "bias, go through the points in their order, count every correction, and "
                   "stop after the first pass that makes none")
    got = call(count_mistakes, *(part.copy() for part in XOR), 50)
    require(got is None, f"on XOR (no line separates it) with max_passes=50 you returned {got!r}: "
            "the rule never stops there, so return None once pass max_passes still corrects")
    return f"{want_total} mistakes on the last separable set; XOR never stops."


@exercise("01.4")
def counts_the_perceptrons_mistakes(count_mistakes):
    return judge_mistakes(count_mistakes, 7)
