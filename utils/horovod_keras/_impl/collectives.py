"""Horovod's collectives on Keras 3 values, and broadcasts of Keras variables."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import horovod.tensorflow as _hvd
import keras
import tensorflow as tf


def as_tensor(value: Any) -> tf.Tensor:
    """A TensorFlow tensor holding `value` (a Keras variable is read, never aliased)."""
    if isinstance(value, keras.Variable):
        value = value.value
    return tf.convert_to_tensor(value)


def tf_variable(variable: Any) -> Any:
    """The TensorFlow variable of a Keras 3 variable (a tf.Variable is returned as it is)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def same_variable(a: Any, b: Any) -> bool:
    """True when `a` and `b` are one variable (a Keras variable or the TensorFlow one in it)."""
    return a is b or tf_variable(a) is tf_variable(b)


def contains(variables: Iterable[Any], variable: Any) -> bool:
    return any(same_variable(v, variable) for v in variables)


def check_root_rank(root_rank: Any) -> None:
    if isinstance(root_rank, bool) or not isinstance(root_rank, int) or root_rank < 0:
        raise ValueError(f"root_rank must be a non-negative int, got {root_rank!r}")
    if _hvd.is_initialized() and root_rank >= _hvd.size():
        raise ValueError(f"root_rank {root_rank} does not exist: the job has {_hvd.size()} "
                         "rank(s)")


def broadcast_variables(variables: Sequence[Any], root_rank: int) -> None:
    """Assign rank `root_rank`'s values to `variables` on every rank.

    Horovod assigns TensorFlow variables; a Keras 3 variable keeps one in `.value`.
    """
    check_root_rank(root_rank)
    tf_variables = [tf_variable(v) for v in variables]
    if tf_variables:
        _hvd.broadcast_variables(tf_variables, root_rank=root_rank)


def models_in_this_process() -> list[Any]:
    gc.collect()  # drop models that are already garbage: other ranks may not hold them
    models = []
    for obj in gc.get_objects():
        try:
            if isinstance(obj, keras.Model):
                models.append(obj)
        except Exception:  # noqa: S112 (objects with exotic __class__ are not models)
            continue
    return models


def broadcast_global_variables(root_rank: int) -> None:
    """Broadcast the weights and optimizer state of every Keras model in this process."""
    variables, seen = [], set()
    for model in models_in_this_process():
        optimizer = getattr(model, "optimizer", None)
        owned = list(model.weights)
        if optimizer is not None and optimizer.built:
            owned += list(optimizer.variables)
        for v in owned:
            if id(v) not in seen:
                seen.add(id(v))
                variables.append(v)
    variables.sort(key=lambda v: v.path)
    paths = [v.path for v in variables]
    if len(set(paths)) != len(paths):
        raise RuntimeError("broadcast_global_variables found two variables with the same path; "
                           "broadcast the model explicitly (BroadcastGlobalVariablesCallback)")
    summary = "\n".join(f"{v.path} {tuple(v.shape)} {v.dtype}" for v in variables)
    digests = _hvd.allgather_object(hashlib.sha256(summary.encode()).hexdigest())
    if len(set(digests)) != 1:
        raise RuntimeError("broadcast_global_variables: the ranks hold different Keras models "
                           "or optimizers, so there is nothing consistent to broadcast")
    broadcast_variables(variables, root_rank)
