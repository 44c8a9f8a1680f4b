"""Self-checks for chapter 05 (convolutional neural networks)."""

from __future__ import annotations

import math

import numpy as np

from utils.checks import Hint, exercise, require
from utils.checks import call as _call


def _whole(value, what):
    require(isinstance(value, int | np.integer) and not isinstance(value, bool)
            or isinstance(value, float | np.floating) and float(value).is_integer(),
            f"{what} is a whole number, got {value!r}")
    return int(value)


def _output_size(n, k, stride, padding):
    return math.ceil(n / stride) if padding == "same" else (n - k) // stride + 1


@exercise("05.1")
def conv_output_size(function):
    cases = [(28, 5, 1, "valid"), (5, 3, 1, "valid"), (5, 3, 1, "same"), (5, 3, 2, "valid"),
             (5, 3, 2, "same"), (28, 3, 2, "valid"), (28, 3, 2, "same"), (28, 5, 3, "valid"),
             (12, 5, 1, "valid"), (224, 7, 2, "same"), (10, 4, 3, "same"), (7, 7, 1, "valid")]
    for n, k, stride, padding in cases:
        got = _whole(_call(function, n, k, stride, padding),
                     f"conv_output_size({n}, {k}, {stride}, {padding!r})")
        want = _output_size(n, k, stride, padding)
        if got == want:
            continue
        where = f"n={n}, k={k}, stride={stride}, padding={padding!r}"
        if padding == "valid" and got == (n - k) // stride:
            raise Hint(f"one short for {where}: count the first window position too")
        if padding == "valid" and got == n - k + 1:
            raise Hint(f"wrong for {where}: the stride skips positions")
        if padding == "same" and got == n:
            raise Hint(f"wrong for {where}: 'same' keeps the size only with stride 1")
        if padding == "same" and got == n // stride:
            raise Hint(f"one short for {where}: a partial window at the end still produces an "
                       "output (round up, not down)")
        if padding == "same" and got == _output_size(n, k, stride, "valid"):
            raise Hint(f"wrong for {where}: with 'same' Keras pads with zeros first")
        raise Hint(f"wrong for {where}")


@exercise("05.2")
def conv2d_params(function):
    for k, channels, filters in [(5, 1, 32), (5, 32, 64), (3, 3, 16), (1, 64, 8), (7, 2, 5)]:
        got = _whole(_call(function, k, channels, filters),
                     f"conv2d_params({k}, {channels}, {filters})")
        want = filters * (k * k * channels + 1)
        if got == want:
            continue
        where = f"k={k}, in_channels={channels}, filters={filters}"
        require(got != filters * k * k * channels, f"wrong for {where}: every filter also has "
                "a bias")
        require(got != filters * (k * k + 1), f"wrong for {where}: each filter spans all input "
                "channels, not only one")
        require(got != filters * k * k * channels + 1, f"wrong for {where}: one bias per "
                "filter, not one per layer")
        raise Hint(f"wrong for {where}")


def _average_pool(maps, size):
    h, w, c = maps.shape[0] // size, maps.shape[1] // size, maps.shape[2]
    return maps[:h * size, :w * size].reshape(h, size, w, size, c).mean(axis=(1, 3))


@exercise("05.3")
def average_pool(function):
    rng = np.random.default_rng(5)
    for shape, size in [((4, 4, 1), 2), ((24, 24, 3), 2), ((9, 7, 2), 3), ((5, 5, 4), 2)]:
        maps = rng.normal(size=shape).astype(np.float32)
        got = np.asarray(_call(function, maps.copy(), size), dtype=np.float64)
        want = _average_pool(maps.astype(np.float64), size)
        where = f"input of shape {shape} with size {size}"
        require(got.shape == want.shape, f"for an {where} the output should have shape "
                f"{want.shape}, got {got.shape}")
        require(not np.allclose(got, _max_pool(maps, size), atol=1e-5),
                f"for an {where} you return the maximum of each block, not its mean")
        require(np.allclose(got, want, atol=1e-5), f"wrong values for an {where}: each output is "
                "the mean of one size x size block of one channel, blocks do not overlap")


def _max_pool(maps, size):
    h, w, c = maps.shape[0] // size, maps.shape[1] // size, maps.shape[2]
    return maps[:h * size, :w * size].reshape(h, size, w, size, c).max(axis=(1, 3))


@exercise("05.4")
def conv2d_forward_flops(function):
    for n_out, k, channels, filters in [(24, 5, 1, 32), (8, 5, 32, 64), (14, 3, 16, 8),
                                        (1, 1, 1, 1)]:
        got = _whole(_call(function, n_out, k, channels, filters),
                     f"conv2d_forward_flops({n_out}, {k}, {channels}, {filters})")
        macs = n_out * n_out * k * k * channels * filters
        if got == 2 * macs:
            continue
        where = f"n_out={n_out}, k={k}, in_channels={channels}, filters={filters}"
        require(got != macs, f"wrong for {where}: that counts multiply-adds; each is 2 FLOPs")
        require(got != 2 * n_out * n_out * k * k * filters,
                f"wrong for {where}: each window covers every input channel")
        require(got != 6 * macs, f"wrong for {where}: only the forward pass, not training")
        raise Hint(f"wrong for {where}: one multiply-add per filter weight per output value")
    return "the seeds' CNN: conv1 0.92 MFLOP and conv2 6.55 MFLOP per image, forward."
