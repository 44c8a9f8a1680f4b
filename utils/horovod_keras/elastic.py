"""Elastic Horovod (`horovod.tensorflow.keras.elastic`, 0.28.1) for Keras 3.

A job started with `horovodrun -np N --min-np M ...` goes on when workers leave (a node fails)
or join: each worker runs its training in a function decorated with `hvd.elastic.run`, and
keeps what must survive in a `KerasState`. When a collective fails because a rank went away,
every survivor restores the last commit, Horovod re-forms the ranks, rank 0's state is sent to
all (new workers included), and the function runs again:

    state = hvd.elastic.KerasState(model, batch=0, epoch=0)   # model compiled with a
                                                               # DistributedOptimizer
    @hvd.elastic.run
    def train(state):
        model.fit(x, y, epochs=10 - state.epoch, callbacks=[  # epochs left
            hvd.elastic.UpdateBatchStateCallback(state),
            hvd.elastic.UpdateEpochStateCallback(state),
            hvd.elastic.CommitStateCallback(state, batches_per_commit=10)])

    train(state)
"""

from __future__ import annotations

from typing import Any

import keras
from horovod._keras import elastic as _horovod_impl

from ._impl.elastic import KerasStateImpl, run

__all__ = ["CommitStateCallback", "KerasState", "UpdateBatchStateCallback",
           "UpdateEpochStateCallback", "run"]


class KerasState(KerasStateImpl):
    """State representation of a Keras model and optimizer.

    Args:
        model: Keras model (built).
        optimizer: Optional optimizer, can be compiled into model instead.
        kwargs: Additional properties to sync, will be exposed as attributes of the object.
    """

    def __init__(self, model: Any, optimizer: Any = None, **kwargs: Any):
        super().__init__(model, optimizer=optimizer, **kwargs)


# Horovod's callbacks are framework-free mixins (horovod/_keras/elastic.py) over a Keras
# Callback; Keras 3 still calls their on_batch_end from on_train_batch_end.
class CommitStateCallback(_horovod_impl.CommitStateCallbackImpl, keras.callbacks.Callback):
    """Commit `state` every `batches_per_commit` batches (at the end of the batch) and at the end
    of each epoch."""

    def __init__(self, state: Any, batches_per_commit: int = 1):
        super().__init__(keras.backend, state, batches_per_commit)


class UpdateBatchStateCallback(_horovod_impl.UpdateBatchStateCallbackImpl,
                               keras.callbacks.Callback):
    """Keep `state.batch` at the number of the last batch done; 0 at the end of each epoch."""

    def __init__(self, state: Any):
        super().__init__(keras.backend, state)


class UpdateEpochStateCallback(_horovod_impl.UpdateEpochStateCallbackImpl,
                               keras.callbacks.Callback):
    """Keep `state.epoch` at the number of epochs done, counted across resets."""

    def __init__(self, state: Any):
        super().__init__(keras.backend, state)
