"""The shared training helpers: the data preparation, the matmul yardstick, the epoch timer,
the sources' CNN, and the autodiff helpers (on every Keras backend)."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from utils import paths
from utils.data import to_images, to_vectors
from utils.training import EpochTimer, matmul_rate, seeds_cnn


def test_digits_become_float32_in_the_unit_interval():
    digits = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    assert np.allclose(to_vectors(digits), [[0.0, 1.0, 0.2, 0.4]])
    assert to_vectors(digits).dtype == np.float32
    assert to_images(digits).shape == (1, 2, 2, 1) and to_images(digits).dtype == np.float32


@pytest.mark.parametrize("prepare, bad", [(to_vectors, np.zeros(3)),
                                          (to_images, np.zeros((2, 784)))])
def test_wrong_shapes_say_what_was_expected(prepare, bad):
    with pytest.raises(ValueError, match="expected images of shape"):
        prepare(bad)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_matmul_rate_is_a_positive_flop_rate(dtype):
    assert 1e6 < matmul_rate(n=256, repeats=2, dtype=dtype) < 1e16


def test_epoch_timer_records_one_time_per_epoch():
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    timer = EpochTimer()
    model.fit(np.zeros((8, 2)), np.zeros(8), epochs=3, verbose=0, callbacks=[timer])
    assert len(timer.seconds) == 3 and all(s > 0 for s in timer.seconds)


def test_the_seeds_cnn_outputs_float32_logits_also_under_mixed_precision():
    assert seeds_cnn().count_params() == 62_346
    assert [layer.name for layer in seeds_cnn(dropout=0.5).layers][-2:] == ["dropout", "logits"]
    mixed = seeds_cnn(dtype="mixed_bfloat16")
    assert mixed.layers[0].compute_dtype == "bfloat16"
    assert mixed(np.zeros((1, 28, 28, 1), "float32")).dtype == "float32"
    assert mixed.layers[-1].get_config()["activation"] == "linear"


AUTODIFF_CHECK = """
import keras, numpy as np
from utils.training import compiled_step, jacobian, loss_and_gradients, value_and_derivative
backend = keras.backend.backend()

z = np.linspace(-6, 6, 49, dtype="float32")  # an activation's derivative, entry by entry
value, slope = value_and_derivative(keras.activations.sigmoid, z)
sigmoid = 1 / (1 + np.exp(-z))
assert np.allclose(value, sigmoid, atol=1e-6) and np.allclose(slope, sigmoid * (1 - sigmoid),
                                                               atol=1e-6)
_, linear_slope = value_and_derivative(keras.activations.linear, z)  # returns its input
assert np.allclose(linear_slope, 1)
scores = np.array([2.0, 1.0, -1.0], "float32")  # the softmax's Jacobian: diag(p) - p p^T
p = np.exp(scores) / np.exp(scores).sum()
assert np.allclose(jacobian(keras.activations.softmax, scores), np.diag(p) - np.outer(p, p),
                   atol=1e-6)
print("derivatives match", backend)

rng = np.random.default_rng(0)  # three compiled steps of gradient descent on a least-squares fit
x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
w = keras.Variable(np.zeros((3, 1), "float32"))


@compiled_step([w])
def step():
    loss, (gradient,) = loss_and_gradients(
        lambda: keras.losses.MeanSquaredError()(y, keras.ops.matmul(x, w)), [w])
    w.assign_sub(0.1 * gradient)
    return loss


w_numpy, losses = np.zeros((3, 1)), []
for _ in range(3):
    losses.append(float(step()))
    error = x @ w_numpy - y
    assert np.isclose(losses[-1], np.mean(error ** 2), rtol=1e-5)
    w_numpy = w_numpy - 0.1 * 2 * x.T @ error / len(x)
assert np.allclose(keras.ops.convert_to_numpy(w), w_numpy, rtol=1e-5, atol=1e-6)
print("compiled steps match", backend)
"""


@pytest.fixture(scope="module")
def autodiff_runs():
    """The autodiff check, run at most once per backend, each in a process of its own."""
    runs = {}

    def run(backend):
        if backend not in runs:
            runs[backend] = subprocess.run(
                [sys.executable, "-c", AUTODIFF_CHECK], capture_output=True, text=True,
                timeout=180, env={**os.environ, "KERAS_BACKEND": backend}, cwd=paths.ROOT)
        return runs[backend]

    return run


BACKENDS = ["tensorflow", "jax", "torch"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_derivatives_and_jacobians_are_the_formulas_on_every_backend(autodiff_runs, backend):
    done = autodiff_runs(backend)
    assert f"derivatives match {backend}" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_compiled_step_updates_its_variables_as_gradient_descent_on_every_backend(
        autodiff_runs, backend):
    done = autodiff_runs(backend)
    assert done.returncode == 0 and f"compiled steps match {backend}" in done.stdout, (
        done.stderr[-2000:])
