"""Grading tests for chapter 05 (convolutional networks), run by `make grade`.

Each test runs in the submission's kernel after all of its cells and receives `answers`, the
notebook's variables by name. A failed `assert` scores 0 and its message is the feedback: it
names the mistake (the ones learners make) without giving the answer away.
"""

import numpy as np

from utils.grading import graded

# The chapter's two CNNs train on 3,000 images for one epoch and are tested on 2,000 (the
# chapter then asserts only that they learned); the exercises do not train.
PARAMETERS = {"TRAIN_SAMPLES": 3000, "TEST_SAMPLES": 2000, "EPOCHS": 1, "BEST_EPOCHS": 1}
CELL_TIMEOUT = 120  # seconds; generous, so that a loaded machine changes no status
NOTEBOOK_TIMEOUT = 480
TEST_TIMEOUT = 10


def _size(n, k, stride, padding):
    return -(-n // stride) if padding == "same" else (n - k) // stride + 1


@graded("05.1", points=2)
def output_size_follows_keras_for_both_paddings(answers):
    conv_output_size = answers["conv_output_size"]
    cases = [(32, 3, 1, "valid"), (32, 3, 1, "same"), (32, 5, 2, "valid"), (32, 5, 2, "same"),
             (17, 4, 3, "valid"), (17, 4, 3, "same"), (9, 9, 1, "valid"), (100, 11, 4, "valid"),
             (1, 1, 1, "same")]
    for n, k, stride, padding in cases:
        got, want = conv_output_size(n, k, stride, padding), _size(n, k, stride, padding)
        if got == want:
            continue
        where = f"conv_output_size({n}, {k}, {stride}, {padding!r}) = {got}"
        assert not (padding == "valid" and got == (n - k) // stride), (
            f"{where}: one short, the first window position counts too")
        assert not (padding == "same" and got == n), (
            f"{where}: 'same' keeps the size only with stride 1")
        assert not (padding == "same" and got == n // stride), (
            f"{where}: a partial window at the end still gives an output")
        raise AssertionError(f"{where} differs from what Keras computes")


@graded("05.2", points=1)
def parameters_count_every_channel_and_one_bias_per_filter(answers):
    conv2d_params = answers["conv2d_params"]
    for k, channels, filters in [(3, 64, 128), (5, 3, 6), (1, 256, 64), (7, 1, 1)]:
        got, want = conv2d_params(k, channels, filters), filters * (k * k * channels + 1)
        where = f"conv2d_params({k}, {channels}, {filters}) = {got}"
        assert got != filters * k * k * channels, f"{where}: the biases are missing"
        assert got != filters * (k * k + 1) or channels == 1, (
            f"{where}: each filter spans all the input channels")
        assert got == want, f"{where} is not the number of trainable parameters"


@graded("05.3", points=2)
def average_pool_means_non_overlapping_blocks(answers):
    average_pool = answers["average_pool"]
    rng = np.random.default_rng(53)
    for shape, size in [((6, 6, 2), 2), ((11, 8, 3), 3), ((4, 4, 1), 4)]:
        maps = rng.normal(size=shape).astype(np.float32)
        h, w = shape[0] // size, shape[1] // size
        blocks = maps[:h * size, :w * size].reshape(h, size, w, size, shape[2])
        got = np.asarray(average_pool(maps.copy(), size), dtype=np.float64)
        assert got.shape == (h, w, shape[2]), (
            f"for an input of shape {shape} and size {size}, the output has shape {got.shape}")
        assert not np.allclose(got, blocks.max(axis=(1, 3)), atol=1e-5), (
            "that is max-pooling: the exercise asks for the mean of each block")
        assert np.allclose(got, blocks.mean(axis=(1, 3)), atol=1e-5), (
            f"wrong values for an input of shape {shape} and size {size}")


@graded("05.4", points=1)
def forward_flops_count_a_multiply_add_as_two(answers):
    conv2d_forward_flops = answers["conv2d_forward_flops"]
    for n_out, k, channels, filters in [(30, 3, 3, 16), (4, 5, 10, 20), (1, 3, 1, 1)]:
        got = conv2d_forward_flops(n_out, k, channels, filters)
        macs = n_out * n_out * k * k * channels * filters
        where = f"conv2d_forward_flops({n_out}, {k}, {channels}, {filters}) = {got}"
        assert got != macs, f"{where}: that counts multiply-adds, each is 2 FLOPs"
        assert got == 2 * macs, f"{where} is not the FLOPs of the forward pass"
