"""Grading tests for chapter 02 (softmax and cross-entropy), run by `make grade`.

Each test runs in the judge, a process of its own, after all of the submission's cells, and
receives `answers`, the notebook's variables by name, carried over as data
(`utils.grading.judge`). A failed `assert` scores 0 and its message is the feedback: it
names the mistake (the ones learners make) without giving the answer away.
"""

import numpy as np

from utils.checks import ch02
from utils.grading import graded

# One epoch of softmax regression instead of five (about 92% already, which the chapter asserts);
# the loss comparison of section 8 on 6,000 images (the gap it asserts is about 0.5 there, 0.1
# required) and a 512x512 product in section 9 (still faster than the thin epoch).
PARAMETERS = {"EPOCHS": 1, "COMPARISON_SAMPLES": 6000, "SQUARE_SIZE": 512}
CELL_TIMEOUT = 60  # seconds; generous, so that a loaded machine changes no status
NOTEBOOK_TIMEOUT = 240
TEST_TIMEOUT = 5


def _log_softmax(Z):
    shifted = Z - Z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _run(function, *args):
    with np.errstate(all="ignore"):
        return np.asarray(function(*args), dtype=float)


@graded("02.1", points=2)
def log_softmax_is_right_and_finite_for_extreme_scores(answers):
    log_softmax = answers["log_softmax"]
    rng = np.random.default_rng(21)
    Z = rng.normal(scale=3.0, size=(7, 5))
    out = _run(log_softmax, Z.copy())
    assert out.shape == Z.shape, f"for scores of shape {Z.shape} the result has shape {out.shape}"
    column_wise = Z - Z.max(axis=0) - np.log(np.exp(Z - Z.max(axis=0)).sum(axis=0))
    assert not np.allclose(out, column_wise), (
        "each row is one example: normalise over the classes (axis 1), not down the columns")
    assert np.allclose(out, _log_softmax(Z), atol=1e-9), (
        "log_softmax differs from the logarithm of the softmax probabilities on ordinary scores")
    extreme = np.array([[800.0, -800.0, 0.0, 1.0], [-3000.0, -3001.0, -2999.0, -5000.0]])
    out = _run(log_softmax, extreme.copy())
    assert np.all(np.isfinite(out)), (
        "scores in the thousands give inf or nan: the logarithm of a probability that rounded "
        "to 0, or an exponential that overflowed")
    assert np.allclose(out, _log_softmax(extreme), atol=1e-9), (
        "finite for scores in the thousands, but wrong there (clipped or rounded values?)")


@graded("02.2", points=2)
def temperature_gives_each_target_probability(answers):
    ch02.judge_temperature(answers["temperature_for"], 22)  # the self-check's verdict, new scores


@graded("02.3", points=3)
def softmax_vjp_without_the_jacobian(answers):
    ch02.judge_vjp(answers["softmax_vjp"], 23)  # the self-check's verdict, new vectors


@graded("02.4", points=2)
def decisive_pixels_are_the_largest_shares_of_the_margin(answers):
    decisive_pixels = answers["decisive_pixels"]
    rng = np.random.default_rng(24)
    x = np.where(rng.random(784) < 0.25, rng.random(784), 0.0)
    W = rng.normal(scale=0.2, size=(784, 10))
    for winner, rival, k in [(7, 1, 15), (0, 6, 4)]:
        out = np.asarray(decisive_pixels(x.copy(), W.copy(), winner, rival, k))
        assert out.shape == (k,) and np.issubdtype(out.dtype, np.integer), (
            f"decisive_pixels should return {k} integer pixel indices, got shape {out.shape}, "
            f"dtype {out.dtype}")
        share = x * (W[:, winner] - W[:, rival])
        best = np.sort(share)[::-1][:k]

        def picks_top_of(scores, out=out, k=k):
            return set(np.argsort(scores)[::-1][:k].tolist()) == set(out.tolist())

        assert not picks_top_of(-share), (
            "those pixels favour the rival: the exercise asks for those that add most to the "
            "winner's margin")
        assert not picks_top_of(x * W[:, winner]) or picks_top_of(share), (
            "those are the pixels with the most evidence for the winner alone; the margin "
            "subtracts the rival's evidence too")
        assert not picks_top_of(W[:, winner] - W[:, rival]) or picks_top_of(share), (
            "those pixels are chosen by weight alone; a pixel without ink adds nothing")
        assert not picks_top_of(np.abs(share)) or picks_top_of(share), (
            "those are the largest contributions in absolute value; some count against the "
            "winner")
        assert np.allclose(np.sort(share[out])[::-1], best), (
            f"for winner {winner}, rival {rival}, k = {k} on a new image and new weights, these "
            "are not the pixels that add the most to the margin")
        assert np.all(np.diff(share[out]) <= 1e-12), "the right pixels, but not largest first"
