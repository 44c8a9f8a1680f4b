"""Horovod's Keras callbacks (`horovod.tensorflow.keras.callbacks`, 0.28.1), for Keras 3.

    callbacks = [hvd.callbacks.BroadcastGlobalVariablesCallback(0),
                 hvd.callbacks.MetricAverageCallback(),
                 hvd.callbacks.LearningRateWarmupCallback(initial_lr=0.01 * hvd.size())]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import horovod.tensorflow as _hvd
import keras
import tensorflow as tf
from horovod.tensorflow import Average, rank, size

from ._impl.callbacks import MomentumCorrection, current_lr, is_number
from ._impl.collectives import broadcast_variables, check_root_rank, contains

__all__ = ["BestModelCheckpoint", "BroadcastGlobalVariablesCallback",
           "LearningRateScheduleCallback", "LearningRateWarmupCallback", "MetricAverageCallback"]


class BroadcastGlobalVariablesCallback(keras.callbacks.Callback):
    """Start every rank from rank `root_rank`'s model weights and optimizer state.

    Needed because every rank initialises its own random weights (and a restored checkpoint
    may exist on one rank only). `device`: where the broadcast runs; `local_variables`:
    variables that stay as they are on each rank.
    """

    def __init__(self, root_rank: int, device: str = "", local_variables: Any = None):
        super().__init__()
        check_root_rank(root_rank)
        self.root_rank = root_rank
        self.device = device
        self.broadcast_done = False
        self._local_variables: list[Any] = []
        if local_variables is None:
            local_variables = []
        elif isinstance(local_variables, keras.Variable | tf.Variable):
            local_variables = [local_variables]
        if not all(isinstance(v, keras.Variable | tf.Variable) for v in local_variables):
            raise ValueError("All local variables must be Keras or tf.Variable variables.")
        for var in local_variables:
            self.register_local_var(var)

    def register_local_var(self, var: Any) -> None:
        """Leave `var` out of the broadcast: every rank keeps its own value."""
        self._local_variables.append(var)

    def _broadcast(self) -> None:
        if self.broadcast_done:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)  # its slots exist from now on
        variables = [w for w in self.model.weights if not contains(self._local_variables, w)]
        if optimizer is not None:
            variables += list(optimizer.variables)
        with tf.device(self.device):
            broadcast_variables(variables, self.root_rank)
        self.broadcast_done = True

    def on_train_begin(self, logs=None):
        if self.model.built:
            self._broadcast()

    def on_train_batch_end(self, batch, logs=None):
        self._broadcast()  # models built by their first call: after the first batch, as Horovod


class MetricAverageCallback(keras.callbacks.Callback):
    """Replace the epoch's logs (loss, metrics) by their average over the ranks.

    Put it before the callbacks that read the logs (ReduceLROnPlateau, checkpoints, CSV).
    """

    def __init__(self, device: str = ""):
        super().__init__()
        self.device = device

    def on_epoch_end(self, epoch, logs=None):
        if not logs:
            return
        keys = sorted(k for k, v in logs.items() if is_number(v))
        if not keys:
            return
        with tf.device(self.device):
            averaged = _hvd.allreduce(tf.constant([float(logs[k]) for k in keys], tf.float64),
                                      op=Average, name="MetricAverageCallback")
        for key, value in zip(keys, averaged.numpy().tolist(), strict=True):
            logs[key] = value


class LearningRateScheduleCallback(keras.callbacks.Callback):
    """Set the learning rate to `initial_lr * multiplier(epoch)` from `start_epoch` until
    `end_epoch` (exclusive).

    A constant `multiplier` means `multiplier ** (epoch - start_epoch)`. With `staircase` the
    rate changes at the first batch of each epoch (integer epochs); without, at every batch,
    with `epoch + batch / steps_per_epoch` (steps detected from `fit` when not given). With
    `momentum_correction` an optimizer with momentum gets Horovod's correction.
    """

    def __init__(self, initial_lr: float, multiplier: float | Callable[[float], float],
                 start_epoch: int = 0, end_epoch: int | None = None, staircase: bool = True,
                 momentum_correction: bool = True, steps_per_epoch: int | None = None):
        super().__init__()
        if initial_lr is None:
            raise ValueError("Parameter `initial_lr` is required")
        self.initial_lr = initial_lr
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self.staircase = staircase
        self.momentum_correction = momentum_correction
        self.steps_per_epoch = steps_per_epoch
        self.current_epoch: int | None = None
        if callable(multiplier):
            self.multiplier = multiplier
        else:
            self.multiplier = lambda epoch: multiplier ** (epoch - start_epoch)
        self._correction: MomentumCorrection | None = None

    def _autodetect_steps_per_epoch(self) -> int:
        if self.params.get("steps"):
            return self.params["steps"]
        if self.params.get("samples") and self.params.get("batch_size"):
            return self.params["samples"] // self.params["batch_size"]
        raise ValueError("Could not autodetect the number of steps per epoch. Please specify "
                         f"the steps_per_epoch parameter to the {type(self).__name__}().")

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        try:
            optimizer.learning_rate = current_lr(optimizer)
        except TypeError as error:
            raise TypeError(f"{type(self).__name__} sets the learning rate itself: give the "
                            f"optimizer a number, not a LearningRateSchedule ({error})") from None
        if not self.staircase and not self.steps_per_epoch:
            self.steps_per_epoch = self._autodetect_steps_per_epoch()
        self._correction = (MomentumCorrection(self.model) if self.momentum_correction
                            else None)

    def on_epoch_begin(self, epoch, logs=None):
        self.current_epoch = epoch

    def _adjust_learning_rate(self, epoch: float) -> None:
        optimizer = self.model.optimizer
        old_lr = current_lr(optimizer)
        new_lr = self.initial_lr * self.multiplier(epoch)
        optimizer.learning_rate = new_lr
        if self._correction is not None and old_lr != 0:
            self._correction.before_batch(new_lr / old_lr)

    def on_train_batch_begin(self, batch, logs=None):
        if self.current_epoch < self.start_epoch or (
                self.end_epoch is not None and self.current_epoch >= self.end_epoch):
            return  # outside the schedule's epochs
        if self.staircase and batch == 0:
            self._adjust_learning_rate(self.current_epoch)
        elif not self.staircase:
            self._adjust_learning_rate(self.current_epoch + float(batch) / self.steps_per_epoch)

    def on_train_batch_end(self, batch, logs=None):
        if self._correction is not None:
            self._correction.after_batch()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = current_lr(self.model.optimizer)


class LearningRateWarmupCallback(LearningRateScheduleCallback):
    """Gradual warm-up (Goyal et al., 2017): from `initial_lr / size` to `initial_lr`.

    `initial_lr` is the scaled rate (one-rank rate times `hvd.size()`). Batch by batch, over
    `warmup_epochs`: lr = initial_lr / size * (e * (size - 1) / warmup_epochs + 1) with
    e = epoch + (batch + 1) / steps_per_epoch, so that it reaches `initial_lr` exactly at the
    last batch of the warm-up; afterwards the rate stays there.
    """

    def __init__(self, initial_lr: float, warmup_epochs: float = 5,
                 momentum_correction: bool = True, steps_per_epoch: int | None = None,
                 verbose: int = 0):
        if not warmup_epochs > 0:
            raise ValueError(f"warmup_epochs must be positive, got {warmup_epochs!r}")

        def multiplier(epoch):
            epoch += 1.0 / self.steps_per_epoch  # round numbers at the end of each epoch
            return 1.0 / size() * (epoch * (size() - 1) / warmup_epochs + 1)

        super().__init__(initial_lr, multiplier, start_epoch=0, end_epoch=warmup_epochs,
                         staircase=False, momentum_correction=momentum_correction,
                         steps_per_epoch=steps_per_epoch)
        self.verbose = verbose

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if epoch == self.end_epoch - 1 and self.verbose > 0 and rank() == 0:
            print(f"\nEpoch {epoch + 1}: finished gradual learning rate warmup to "
                  f"{current_lr(self.model.optimizer):g}.", flush=True)


class BestModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that keeps the best model only (`save_best_only=True`).

    Horovod's leaves `filepath` to be set later (its Spark estimator does); set the attribute
    or pass `filepath=` (the one argument Horovod's has not). Add it on rank 0 only.
    """

    def __init__(self, monitor: str = "val_loss", verbose: int = 0,
                 save_weights_only: bool = False, mode: str = "auto",
                 save_freq: str | int = "epoch", *, filepath: str | None = None):
        placeholder = "best.weights.h5" if save_weights_only else "best.keras"
        super().__init__(filepath=filepath or placeholder, monitor=monitor, verbose=verbose,
                         save_best_only=True, save_weights_only=save_weights_only, mode=mode,
                         save_freq=save_freq)
        self.filepath = filepath

    def on_train_begin(self, logs=None):
        if not self.filepath:
            raise ValueError("BestModelCheckpoint has no filepath: set `callback.filepath` "
                             "(or pass filepath=...) before training")
        super().on_train_begin(logs)
