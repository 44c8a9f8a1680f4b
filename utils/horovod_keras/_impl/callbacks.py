"""The working parts of the learning-rate callbacks: the current rate, momentum correction."""

from __future__ import annotations

from typing import Any

import keras


def is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def current_lr(optimizer: Any) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class MomentumCorrection:
    """Momentum correction (Goyal et al., 2017) for an optimizer whose momentum is compiled in.

    Horovod multiplies the momentum by new_lr / old_lr for one batch. Keras 3 bakes
    `optimizer.momentum` into the compiled step, so the same update is made from the state:
    the momentum buffers are scaled by that ratio before the batch (m <- mu * r * m - lr * g),
    and with Nesterov the weights get the missing mu * (r - 1) * m after it.
    """

    def __init__(self, model: Any):
        optimizer = model.optimizer
        while isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            optimizer = optimizer.inner_optimizer
        self.optimizer = optimizer
        self.model = model
        self.active = bool(getattr(optimizer, "momentum", 0))
        self.nesterov = bool(getattr(optimizer, "nesterov", False))
        self.pending: float | None = None
        supported = keras.optimizers.SGD | keras.optimizers.RMSprop
        if self.active and not isinstance(optimizer, supported):
            raise NotImplementedError(
                f"momentum_correction=True for {type(optimizer).__name__}: the drop-in corrects "
                "the momentum of SGD and RMSprop only. Pass momentum_correction=False.")

    def _buffers(self) -> list[Any]:
        if isinstance(self.optimizer, keras.optimizers.SGD):
            return list(self.optimizer.momentums)
        return list(self.optimizer._momentums)  # RMSprop has no public name for them

    def before_batch(self, ratio: float) -> None:
        if not self.active or ratio == 1.0:
            return
        if self.optimizer.built:  # before the first step the buffers do not exist (all zero)
            for buffer in self._buffers():
                buffer.assign(buffer * ratio)
        self.pending = ratio

    def after_batch(self) -> None:
        if self.pending is None:
            return
        ratio, self.pending = self.pending, None
        if not self.nesterov:
            return
        variables, buffers = self.model.trainable_variables, self._buffers()
        if len(variables) != len(buffers) or any(
                tuple(v.shape) != tuple(b.shape) for v, b in zip(variables, buffers, strict=True)):
            raise RuntimeError("momentum correction with Nesterov: the optimizer's momentum "
                               "buffers do not match model.trainable_variables")
        momentum = float(self.optimizer.momentum)
        for variable, buffer in zip(variables, buffers, strict=True):
            variable.assign_add(buffer * (momentum * (ratio - 1.0)))
