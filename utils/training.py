"""Training code the chapters share, written once: each piece is taught in one chapter, then
imported by the later ones (the data preparation, `to_vectors` and `to_images`, is in utils.data).

- `matmul_rate` (taught with NumPy in chapter 02): how many FLOP/s one large matrix product
  gets out of this machine, the yardstick every later timing is compared with.
- `EpochTimer`: the wall time of every epoch of `fit` (chapters 03 to 06).
- `seeds_cnn` (chapter 06): the two-stage CNN of the course's sources.
- `steps_per_call`: how many training steps `fit` runs per call into its compiled step.
- `gradients`: the gradient of a loss with respect to Keras variables, with the backend's own
  autodiff (TensorFlow's GradientTape, jax.grad or torch.autograd; chapter 04 shows the tape).
"""

from __future__ import annotations

import time

import keras
import numpy as np
from keras import layers


def matmul_rate(n: int = 2048, repeats: int = 5, dtype: str = "float32") -> float:
    """FLOP/s of the fastest of `repeats` n×n matrix products (2n³ operations each) with
    `keras.ops` on the default device; a first product, untimed, pays for the set-up."""
    a = keras.ops.cast(keras.random.normal((n, n), seed=0), dtype)
    keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.matmul(a, a)[0, 0], "float32"))
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(  # waits for the product
            keras.ops.cast(keras.ops.matmul(a, a)[0, 0], "float32"))
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


class EpochTimer(keras.callbacks.Callback):
    """Wall time of every epoch of `fit`, in `seconds` (one per epoch): `timer = EpochTimer()`,
    then `model.fit(..., callbacks=[timer])`."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def seeds_cnn(dropout: float = 0.0, dtype=None, name: str = "seeds_cnn"):
    """The sources' CNN: Conv(32, 5×5) → max-pool → Conv(64, 5×5) → max-pool → (dropout) →
    Dense(10) logits, 62,346 parameters. The last layer outputs logits in float32 (also under a
    mixed-precision `dtype` policy): train it with `from_logits=True`."""
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, (5, 5), activation="relu", name="conv1", dtype=dtype),
        layers.MaxPooling2D((2, 2), name="pool1", dtype=dtype),
        layers.Conv2D(64, (5, 5), activation="relu", name="conv2", dtype=dtype),
        layers.MaxPooling2D((2, 2), name="pool2", dtype=dtype),
        layers.Flatten(name="flatten", dtype=dtype),
        *([layers.Dropout(dropout, name="dropout", dtype=dtype)] if dropout else []),
        layers.Dense(10, name="logits", dtype="float32" if dtype else None),
    ], name=name)


def steps_per_call(steps: int) -> int:
    """For `compile(steps_per_execution=...)`: `steps` training steps per call into the compiled
    step, which saves Python's overhead for small models; 1 on PyTorch's backend, which runs
    its steps one at a time and accepts no other value."""
    return 1 if keras.backend.backend() == "torch" else steps


def gradients(loss_fn, variables):
    """The gradients of `loss_fn()` (a scalar, computed from Keras layers) with respect to
    `variables` (built Keras variables, such as `layer.kernel`), one per variable, by the
    autodiff of Keras' backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn()
        return tape.gradient(loss, [variable.value for variable in variables])
    if backend == "jax":
        import jax

        def loss_of(values):  # JAX differentiates functions of arrays: the variables' values
            with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
                return loss_fn()

        return jax.grad(loss_of)([variable.value for variable in variables])
    if backend == "torch":
        import torch

        return list(torch.autograd.grad(loss_fn(), [variable.value for variable in variables]))
    raise RuntimeError(f"no autodiff for Keras backend {backend!r}")
