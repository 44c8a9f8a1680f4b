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


@exercise("02.2")
def sparse_categorical_cross_entropy(sparse_cross_entropy):
    rng = np.random.default_rng(3)
    P = _softmax(rng.normal(scale=1.5, size=(8, 10)))
    labels = rng.integers(0, 10, size=8)
    out = _call(sparse_cross_entropy, P.copy(), labels.copy())
    require(out.size == 1, f"return one number (the mean over the batch), got shape {out.shape}")
    value = float(out)
    true_p = P[np.arange(len(labels)), labels]
    expected = -np.mean(np.log(true_p))
    require(np.isfinite(value), "your loss is inf or nan for ordinary probabilities")
    require(value > 0, "a loss is never negative here: check the sign (log p is negative)")
    require(not np.isclose(value, expected * len(labels)),
            "that is the SUM over the batch; the exercise asks for the MEAN")
    require(not np.isclose(value, -np.mean(np.sum(np.log(P), axis=1))),
            "only the probability of the TRUE class enters the loss, not all ten")
    require(np.isclose(value, expected, rtol=1e-9),
            "pick each example's probability for its own label, one per row, then average "
            "minus their logarithms")
    # the same answer must not depend on the batch: a single example
    try:
        single = float(_call(sparse_cross_entropy, P[:1].copy(), labels[:1].copy()))
    except (Hint, TypeError, ValueError) as error:
        raise Hint(f"correct on a batch of 8 but it fails on a batch of 1 ({error}): avoid "
                   "hard-coded sizes") from None
    require(np.isclose(single, -np.log(true_p[0])),
            "correct on a batch of 8 but not on a batch of 1: avoid hard-coded sizes")


@exercise("02.3")
def softmax_jacobian_check(softmax_jacobian):
    rng = np.random.default_rng(4)
    for size in (10, 3):
        z = rng.normal(scale=2.0, size=size)
        J = _call(softmax_jacobian, z.copy())
        require(J.shape == (size, size),
                f"for a vector of {size} scores return a {size}x{size} matrix, got {J.shape}")
        require(np.all(np.isfinite(J)), "your matrix contains inf or nan")
        h = 1e-6
        numeric = np.empty((size, size))
        for j in range(size):
            step = np.zeros(size)
            step[j] = h
            up, down = _softmax((z + step)[None])[0], _softmax((z - step)[None])[0]
            numeric[:, j] = (up - down) / (2 * h)
        require(np.allclose(J.sum(axis=0), 0.0, atol=1e-9),
                "the probabilities always sum to 1, so nudging one score changes them by amounts "
                "that sum to 0: every column of J must sum to 0")
        require(np.allclose(J, J.T, atol=1e-9), "the softmax Jacobian is symmetric; yours is not")
        require(np.all(np.diag(J) > 0),
                "raising a class's own score raises its probability: the diagonal is positive")
        require(np.allclose(J, numeric, atol=1e-7),
                "compare each column j with a finite difference "
                "(softmax(z + h e_j) - softmax(z - h e_j)) / 2h")
    big = np.array([1000.0, 999.0, -1000.0])
    J = _call(softmax_jacobian, big.copy())
    require(J.shape == (3, 3) and np.all(np.isfinite(J)),
            "for scores near 1000 your matrix contains inf or nan: use the stable softmax")


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
