"""Self-checks for chapter 02 (softmax and cross-entropy)."""

from __future__ import annotations

import numpy as np

from utils.checks import Hint, call, exercise, require
from utils.checks import call_for_array as _call


def _softmax(Z: np.ndarray) -> np.ndarray:
    shifted = Z - Z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


@exercise("02.1")
def stable_log_softmax(log_softmax):
    rng = np.random.default_rng(2)
    Z = rng.normal(scale=2.0, size=(6, 10))
    out = _call(log_softmax, Z.copy())
    require(out.shape == Z.shape, f"for scores of shape {Z.shape} return one log-probability per "
            f"score, the same shape; got {out.shape}")
    require(np.all(np.isfinite(out)), "for ordinary scores your result contains inf or nan")
    require(np.all(out <= 1e-12), "log-probabilities are never positive (a probability is <= 1)")
    row_sums = np.exp(out).sum(axis=1)
    require(not np.allclose(np.exp(out).sum(axis=0), 1.0) or np.allclose(row_sums, 1.0),
            "each ROW is one example: normalise over axis 1 (the classes), not down the columns")
    require(np.allclose(row_sums, 1.0, atol=1e-9),
            "exp(your result) should be a probability vector summing to 1 in every row; "
            "normalise each row over its classes")
    require(np.allclose(out, np.log(_softmax(Z)), atol=1e-9),
            "the rows are normalised but the values differ from log(softmax(Z)); check the formula")
    extreme = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, 1000.0], [0.0, 1.0, 2.0]])
    out = _call(log_softmax, extreme.copy())
    require(out.shape == extreme.shape and np.all(np.isfinite(out)),
            "scores of +-1000 give inf or nan: shift the scores so the largest is 0, and never "
            "take the log of a probability that may have rounded to 0 (simplify log(exp(...)) by "
            "hand)")
    shifted = extreme - extreme.max(axis=1, keepdims=True)
    expected = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    require(np.allclose(out, expected, atol=1e-9),
            "finite for scores of +-1000, but the values are wrong there: a score 2000 below the "
            "largest has a log-probability of about -2000, not a clipped or rounded value")


def top_probability(z, temperature):
    """The largest probability of softmax(z / temperature), computed stably."""
    shifted = np.asarray(z, dtype=float) / temperature
    return float(_softmax(shifted[None])[0].max())


def judge_temperature(temperature_for, seed):
    """The verdict on `temperature_for` (exercise 02.2) on scores drawn from `seed` (the
    self-check's and the grader's differ): a remark, or Hint."""
    rng = np.random.default_rng(seed)
    cases = [(rng.normal(scale=2.0, size=10), 0.5), (rng.normal(scale=1.0, size=3), 0.95),
             (rng.normal(scale=3.0, size=10), 0.13), (rng.normal(scale=40.0, size=5), 0.4)]
    for z, target in cases:
        got = call(temperature_for, z.copy(), target)
        try:
            temperature = float(got)
        except (TypeError, ValueError):
            raise Hint(f"return the temperature, one number; got {type(got).__name__}") from None
        where = f"for {len(z)} scores and target {target}"
        require(np.isfinite(temperature) and temperature > 0,
                f"{where} you returned T = {temperature!r}: a temperature is a positive number")
        reached = top_probability(z, temperature)
        if abs(reached - target) <= 1e-6:
            continue
        require(abs(top_probability(z, 1 / temperature) - target) > 1e-6,
                f"{where} your T is upside down: the scores are DIVIDED by T, so a larger T "
                "flattens the probabilities")
        raise Hint(f"{where} the largest probability of softmax(z / T) at your T is {reached:.6f}, "
                   "not the target (within 1e-6). It falls steadily as T grows, from 1 towards "
                   "1/K: narrow down T until it hits the target, over several orders of magnitude")
    return "the temperature that gives each target, to 1e-6."


@exercise("02.2")
def temperature(temperature_for):
    return judge_temperature(temperature_for, 3)


VJP_SIZE = 200_000  # classes in the check's largest case: its Jacobian would need 320 GB


def judge_vjp(softmax_vjp, seed):
    """The verdict on `softmax_vjp` (exercise 02.3) on vectors drawn from `seed`: a remark, or
    Hint. The last case has VJP_SIZE scores, where the Jacobian itself cannot be built."""
    rng = np.random.default_rng(seed)
    scores = [rng.normal(size=4), rng.normal(scale=2.0, size=10),
              np.array([800.0, 799.0, -800.0]), rng.normal(scale=2.0, size=VJP_SIZE)]
    for z in scores:
        size, v = len(z), rng.normal(size=len(z))
        p = _softmax(z[None])[0]
        want = p * v - p * (p @ v)  # J is symmetric: J^T v = J v = p * v - p (p . v)
        try:
            got = _call(softmax_vjp, z.copy(), v.copy())
        except Hint as hint:
            if size == VJP_SIZE and "MemoryError" in str(hint):
                raise Hint(f"for {size:,} scores your function ran out of memory: the Jacobian "
                           "would hold size^2 numbers. Work out J^T v on paper first, from "
                           "section 3's formula, and compute it from vectors alone") from None
            raise
        where = f"for {size:,} scores"
        require(got.shape == z.shape, f"{where} return one number per score, shape {z.shape}; "
                f"got {got.shape}")
        require(np.all(np.isfinite(got)), f"{where} (up to {z.max():g}) your result holds inf "
                "or nan: use the stable softmax")
        if np.allclose(got, want, rtol=1e-6, atol=1e-12):
            continue
        require(not np.allclose(got, p * v, rtol=1e-6, atol=1e-12),
                f"{where} you kept the diagonal of J only: nudging one score changes every "
                "probability, since they sum to 1")
        require(not np.allclose(got, p * v + p * (p @ v), rtol=1e-6, atol=1e-12),
                f"{where} the second term has the wrong sign")
        raise Hint(f"{where} your result differs from J^T v (compare it with the product of "
                   "section 3's matrix and v on a few scores)")
    return f"J^T v for {VJP_SIZE:,} scores without the {VJP_SIZE:,}x{VJP_SIZE:,} matrix."


@exercise("02.3")
def vector_jacobian_product(softmax_vjp):
    return judge_vjp(softmax_vjp, 4)


def _margin_map(x, W, winner, rival):
    return x * (W[:, winner] - W[:, rival])


def _indices(result, k, size):
    try:
        out = np.asarray(result)
    except (TypeError, ValueError):
        raise Hint("return an array of pixel indices") from None
    require(out.ndim == 1 and out.size == k,
            f"return {k} flat pixel indices in a 1-D array, got shape {out.shape}")
    require(np.issubdtype(out.dtype, np.integer),
            f"return integer indices (0 to {size - 1}), not pixel values; got dtype {out.dtype}")
    require(np.all((out >= 0) & (out < size)), f"indices run from 0 to {size - 1}")
    require(len(set(out.tolist())) == k, "the same pixel appears twice")
    return out


@exercise("02.4")
def decisive_pixels_check(decisive_pixels):
    rng = np.random.default_rng(5)
    x = np.where(rng.random(784) < 0.3, rng.random(784), 0.0).astype(np.float32)
    W = rng.normal(scale=0.1, size=(784, 10)).astype(np.float32)
    winner, rival, k = 5, 3, 12
    out = _indices(call(decisive_pixels, x.copy(), W.copy(), winner, rival, k), k, 784)
    share = _margin_map(x, W, winner, rival)
    best = np.sort(share)[::-1][:k]
    got = share[out]

    def same_set(scores):
        return np.isclose(np.sort(scores)[::-1][:k].sum(), scores[out].sum(), rtol=1e-6)

    require(not np.allclose(got, np.sort(share)[:k]),
            "those pixels count for the RIVAL: you want the largest shares of the margin")
    require(not same_set(x * W[:, winner]) or same_set(share),
            "you read the winner's map alone; what a pixel adds to the MARGIN depends on both "
            "maps")
    require(not same_set(W[:, winner] - W[:, rival]) or same_set(share),
            "some of your pixels carry no ink in x: a pixel contributes its ink times its weight")
    require(not same_set(np.abs(share)) or same_set(share),
            "largest in size is not largest: a pixel with a large negative share counts "
            "against the winner")
    require(np.allclose(np.sort(got)[::-1], best, rtol=1e-6),
            "these are not the k pixels that add the most to z_winner - z_rival")
    require(np.all(np.diff(got) <= 1e-12), "the right pixels, but put them largest first")
    other = _indices(call(decisive_pixels, x.copy(), W.copy(), 2, 7, 3), 3, 784)
    require(np.allclose(share[out], got) and np.allclose(
        np.sort(_margin_map(x, W, 2, 7)[other])[::-1], np.sort(_margin_map(x, W, 2, 7))[::-1][:3]),
        "right for 5 against 3 but not for 2 against 7 with k = 3: use the arguments")
