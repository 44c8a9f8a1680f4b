"""Elastic Horovod for Keras 3: the state of a job (model, optimizer, counters) and its loop.

Horovod's own (`horovod.tensorflow.elastic.TensorFlowKerasState`) reads the optimizer's
variables with `optimizer.variables()`, a method in Keras 2 and a list in Keras 3; the loop
(`horovod.common.elastic.run_fn`: sync, run, and on a failure restore, re-initialise and go
again) and the notifications of the driver are framework-free and used as they are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import horovod.tensorflow as _hvd
import keras
import numpy as np
import tensorflow as tf
from horovod.common.elastic import ObjectState, run_fn
from horovod.common.exceptions import HorovodInternalError
from horovod.tensorflow.functions import broadcast_object

from .collectives import broadcast_variables

# What the message of a TensorFlow error says when a Horovod collective failed because a rank
# went away (the operation's name, or Horovod's own words).
_HOROVOD_FAILURE_MARKERS = ("HorovodAllreduce", "HorovodAllgather", "HorovodBroadcast",
                            "HorovodReducescatter", "HorovodAlltoall", "HorovodGroupedAllreduce",
                            "Horovod has been shut down", "Gloo", "gloo")


class KerasStateImpl(ObjectState):
    """The state of a Keras 3 model and optimizer, plus counters, kept in host memory.

    `commit()` copies the model's and the optimizer's variables (and the counters) to host
    memory, `restore()` puts the last commit back, `sync()` gives every rank rank 0's state.
    """

    def __init__(self, model: Any, optimizer: Any = None, **kwargs: Any):
        if not getattr(model, "built", True):
            raise ValueError("Model must be built first. Run `model.build(input_shape)`.")
        self.model = model
        self.optimizer = optimizer if optimizer is not None else getattr(model, "optimizer",
                                                                         None)
        if self.optimizer is None:
            raise ValueError("KerasState needs an optimizer: compile the model first or pass "
                             "optimizer=")
        self._saved_model_state: list[tuple[Any, np.ndarray]] = []
        self._save_model()
        super().__init__(bcast_object=broadcast_object, get_rank=_hvd.rank, **kwargs)

    def _synced_variables(self) -> list[Any]:
        """The model's weights and the optimizer's variables (its slots built, as `fit` would
        build them, so that every rank has the same list)."""
        if not self.optimizer.built:
            self.optimizer.build(self.model.trainable_variables)
        return list(self.model.weights) + list(self.optimizer.variables)

    def _saved_variables(self) -> list[Any]:
        """All the model's state (weights, random-seed state, metrics) and the optimizer's."""
        variables, seen = [], set()
        for v in [*self.model.variables, *self._synced_variables()]:
            if id(v) not in seen:
                seen.add(id(v))
                variables.append(v)
        return variables

    def save(self) -> None:
        self._save_model()
        super().save()

    def restore(self) -> None:
        self._load_model()
        super().restore()

    def sync(self) -> None:
        broadcast_variables(self._synced_variables(), root_rank=0)
        self._save_model()
        super().sync()

    def _save_model(self) -> None:
        self._saved_model_state = [(v, np.array(keras.ops.convert_to_numpy(v), copy=True))
                                   for v in self._saved_variables()]

    def _load_model(self) -> None:
        for variable, value in self._saved_model_state:
            variable.assign(value)


def _is_horovod_failure(error: BaseException) -> bool:
    message = getattr(error, "message", None) or str(error)
    return any(marker in message for marker in _HOROVOD_FAILURE_MARKERS)


def _reset() -> None:
    _hvd.shutdown()
    _hvd.init()


def run(func: Callable[..., Any]) -> Callable[..., Any]:
    """Horovod's `hvd.elastic.run` decorator: run `func(state, ...)` and start it again, from
    the last committed state, whenever ranks leave or join the job."""

    @functools.wraps(func)
    def wrapper(state: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(state, *args, **kwargs)
        except tf.errors.OpError as error:
            if _is_horovod_failure(error):
                raise HorovodInternalError(error) from error
            raise

    return run_fn(wrapper, _reset)
