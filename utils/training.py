"""Training code the chapters share, written once: each piece is taught in one chapter, then
imported by the later ones (the data preparation, `to_vectors` and `to_images`, is in utils.data).

- `matmul_rate` (taught with NumPy in chapter 02): how many FLOP/s one large matrix product
  gets out of this machine, the yardstick every later timing is compared with.
- `EpochTimer`: the wall time of every epoch of `fit` (chapters 03 to 06).
- `seeds_cnn` (chapter 06): the two-stage CNN of the course's sources.
- `steps_per_call`: how many training steps `fit` runs per call into its compiled step.
- `gradients`, `loss_and_gradients`, `value_and_derivative` and `jacobian`: derivatives by the
  backend's own autodiff (TensorFlow's GradientTape, jax.grad or torch.autograd; chapter 04
  shows how each one spells it).
- `compiled_step` (chapter 04): a hand-written training step compiled into one graph, as `fit`
  compiles its own (on TensorFlow and JAX; PyTorch runs it as written).
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


def compiled_step(variables):
    """A decorator: the training step it decorates (a function of no arguments that updates
    `variables`, Keras variables, and returns a value) compiled into one graph, as `fit`
    compiles its own: `tf.function` on TensorFlow; `jax.jit` on JAX, of the step made stateless
    (the variables' values go in, their new values come out and are assigned); on PyTorch the
    step itself, run operation by operation, as PyTorch's `fit` runs it."""
    variables = list(variables)
    backend = keras.backend.backend()

    def compile_(step):
        if backend == "tensorflow":
            import tensorflow as tf

            return tf.function(step)
        if backend != "jax":
            return step
        import jax

        @jax.jit
        def stateless(values):
            mapping = list(zip(variables, values, strict=True))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                result = step()
            return result, [scope.get_current_value(variable) for variable in variables]

        def run():
            result, new_values = stateless([variable.value for variable in variables])
            for variable, value in zip(variables, new_values, strict=True):
                variable.assign(value)
            return result

        return run

    return compile_


def loss_and_gradients(loss_fn, variables):
    """`loss_fn()` (computed from Keras variables and layers) and its gradients with respect to
    `variables` (built Keras variables, such as `layer.kernel`), one per variable, by the
    autodiff of Keras' backend. A loss with several values (one per point, say) is
    differentiated as their sum, as TensorFlow's tape does: where each value depends on its own
    entry of a variable only, that entry's gradient is that value's slope."""
    backend = keras.backend.backend()
    values = [variable.value for variable in variables]
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = keras.ops.convert_to_tensor(loss_fn())
        return loss, tape.gradient(loss, values)
    if backend == "jax":
        import jax

        def summed(values):  # JAX differentiates functions of arrays: the variables' values
            with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
                loss = keras.ops.convert_to_tensor(loss_fn())
            return keras.ops.sum(loss), loss

        (_, loss), grads = jax.value_and_grad(summed, has_aux=True)(values)
        return loss, grads
    if backend == "torch":
        import torch

        loss = keras.ops.convert_to_tensor(loss_fn())
        return loss.detach(), list(torch.autograd.grad(loss.sum(), values))
    raise RuntimeError(f"no autodiff for Keras backend {backend!r}")


def gradients(loss_fn, variables):
    """The gradients of `loss_fn()` (a loss computed from Keras layers) with respect to
    `variables` (built Keras variables, such as `layer.kernel`), one per variable: the second
    half of `loss_and_gradients`."""
    return loss_and_gradients(loss_fn, variables)[1]


def value_and_derivative(function, x):
    """`function(x)` and its derivative with respect to the array `x`, as NumPy arrays, by
    `loss_and_gradients`: the gradient of the sum of the function's values, which for a
    function applied entry by entry (an activation, the loss of each point) is every entry's
    own slope."""
    variable = keras.Variable(x)
    value, (derivative,) = loss_and_gradients(lambda: function(variable), [variable])
    return keras.ops.convert_to_numpy(value), keras.ops.convert_to_numpy(derivative)


def jacobian(function, x):
    """The matrix of derivatives of the vector `function(x)` with respect to the vector `x`, as
    a NumPy array: row i is the gradient of value i (by `gradients`), column j is entry j."""
    variable = keras.Variable(x)

    def row(i):
        return gradients(lambda: function(variable)[i], [variable])[0]

    count = keras.ops.shape(function(variable))[0]
    return np.stack([keras.ops.convert_to_numpy(row(i)) for i in range(count)])
