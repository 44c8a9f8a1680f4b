"""Horovod's `horovod.tensorflow.keras` (0.28.1) for Keras 3: `import utils.horovod_keras as hvd`.

Horovod's own Keras layer was written for Keras 2: on Keras 3 (TensorFlow >= 2.16) its
DistributedOptimizer hooks methods Keras 3 never calls and its callbacks use backend functions
Keras 3 removed (Horovod issue #4290; 0.28.1, June 2023, is its last release). This module
offers the same API, names and semantics, built on the parts of `horovod.tensorflow` that do
work with Keras 3: collectives on plain gradient tensors, broadcasts of the TensorFlow
variables under the Keras ones. It is laid out as Horovod's own layer: this facade and its
submodules `callbacks` and `elastic`, over an implementation, `_impl` (Horovod's `_keras`).
An existing Horovod Keras script runs by changing its import:

    import utils.horovod_keras as hvd          # was: import horovod.tensorflow.keras as hvd

    hvd.init()
    opt = hvd.DistributedOptimizer(keras.optimizers.SGD(0.01 * hvd.size(), momentum=0.9))
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    model.fit(x, y, callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0),
                               hvd.callbacks.MetricAverageCallback(),
                               hvd.callbacks.LearningRateWarmupCallback(0.01 * hvd.size())])

What differs from Horovod 0.28.1, and why:
- `DistributedOptimizer` returns an optimizer of the very class it wraps (a `keras.optimizers.SGD`
  is still one), whose `apply` reduces the gradients first. A saved model therefore holds a
  plain Keras optimizer and loads anywhere; `load_model` wraps it again, as Horovod's does.
- `op=Adasum` raises NotImplementedError: Horovod 0.28.1's Keras layer refuses it too, and
  Adasum exists only in Horovod builds with MPI. `gradient_predivide_factor` with `op=Sum`
  raises ValueError (Horovod ignores it there without a word).
- `BroadcastGlobalVariablesCallback` broadcasts before the first step when the model is built
  (Keras 3 can build the optimizer's slots up front; Keras 2 could not, so Horovod waited for
  the end of the first batch, which it still does here for models built by their first call).
  It broadcasts `model.weights`, not the random-seed state in `model.variables`, so dropout
  masks stay different on every rank, as they were under Keras 2.
- Momentum correction: Keras 3 compiles `momentum` into the training step as a constant, so
  setting it for one batch (Horovod's way) would change nothing. The callbacks rescale the
  momentum buffers by `new_lr / old_lr` instead, which is the same update (for SGD with
  Nesterov momentum the weights get the matching correction after the batch).
- `broadcast_global_variables` finds the Keras models of the process (TensorFlow 2 has no
  global variable collection; Horovod's raises RuntimeError in eager mode).
- `hvd.elastic` (KerasState, run, the callbacks) works on Keras 3; the state it commits is
  the model's and the optimizer's variables, copied to host memory.
- The wrapped optimizer also has Horovod's entry points `_compute_gradients`,
  `compute_gradients`, `get_gradients` and `apply_gradients` (with its Keras 2 flags), so code
  written against Horovod's optimizer, Horovod's own tests included, runs unchanged.
- The collectives run outside XLA only: compile with `jit_compile=False` where Keras 3 turns
  XLA on by itself (models on a GPU); the optimizer says so if it finds itself inside XLA.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

try:
    import horovod.tensorflow as _hvd
except ImportError as _error:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"utils.horovod_keras needs Horovod with TensorFlow support ({_error}). In the course "
        "environment `make setup` builds it (tools/build_horovod.sh); Colab has no Horovod."
    ) from _error

import keras
import tensorflow as tf
from horovod.tensorflow import (
    Adasum,
    Average,
    Compression,
    ProcessSet,
    Sum,
    add_process_set,
    ccl_built,
    cross_rank,
    cross_size,
    cuda_built,
    ddl_built,
    global_process_set,
    gloo_built,
    gloo_enabled,
    init,
    is_initialized,
    local_rank,
    local_size,
    mpi_built,
    mpi_enabled,
    mpi_threads_supported,
    nccl_built,
    rank,
    remove_process_set,
    rocm_built,
    shutdown,
    size,
    start_timeline,
    stop_timeline,
)

__all__ = [
    "Adasum", "Average", "Compression", "DistributedOptimizer", "PartialDistributedOptimizer",
    "ProcessSet", "Sum", "add_process_set", "allgather", "allreduce", "broadcast",
    "broadcast_global_variables", "callbacks", "ccl_built", "cross_rank", "cross_size",
    "cuda_built", "ddl_built", "elastic", "gloo_built", "gloo_enabled", "global_process_set",
    "init", "is_initialized", "load_model", "local_rank", "local_size", "mpi_built",
    "mpi_enabled", "mpi_threads_supported", "nccl_built", "rank", "reducescatter",
    "remove_process_set", "rocm_built", "shutdown", "size", "start_timeline", "stop_timeline",
]

from . import callbacks, elastic
from ._impl.collectives import as_tensor
from ._impl.collectives import broadcast_global_variables as _impl_broadcast_global_variables
from ._impl.optimizer import GradientReducer, is_distributed, make_distributed


def allreduce(value: Any, name: str | None = None, average: bool | None = None,
              prescale_factor: float = 1.0, postscale_factor: float = 1.0, op: Any = None,
              compression: Any = Compression.none) -> tf.Tensor:
    """The average (default) or sum of `value` over all ranks; same shape on every rank.

    `average` is Horovod's deprecated spelling of `op`; `prescale_factor` and
    `postscale_factor` multiply the value before and after the reduction.
    """
    return _hvd.allreduce(as_tensor(value), average=average, op=op, name=name,
                          prescale_factor=prescale_factor, postscale_factor=postscale_factor,
                          compression=compression)


def allgather(value: Any, name: str | None = None) -> tf.Tensor:
    """Every rank's `value` concatenated along the first axis, in rank order."""
    return _hvd.allgather(as_tensor(value), name=name)


def broadcast(value: Any, root_rank: int, name: str | None = None) -> tf.Tensor:
    """Rank `root_rank`'s `value`, on every rank (nothing is assigned: use the result)."""
    return _hvd.broadcast(as_tensor(value), root_rank, name=name)


def reducescatter(value: Any, name: str | None = None, op: Any = Average) -> tf.Tensor:
    """This rank's slice (along the first axis) of the reduction of `value` over all ranks."""
    return _hvd.reducescatter(as_tensor(value), op=op, name=name)


def DistributedOptimizer(optimizer: Any, name: str | None = None, device_dense: str = "",  # noqa: N802 (Horovod's name)
                         device_sparse: str = "", compression: Any = Compression.none,
                         sparse_as_dense: bool = False, gradient_predivide_factor: float = 1.0,
                         op: Any = Average, backward_passes_per_step: int = 1,
                         average_aggregated_gradients: bool = False, num_groups: int = 0,
                         groups: int | list | None = None, process_set: Any = global_process_set,
                         scale_local_gradients: bool = True) -> Any:
    """A copy of a Keras 3 optimizer whose gradients are reduced over the ranks before each step.

    Horovod 0.28.1's arguments, with its meaning:
        name: prefix of the allreduce operations (default "Distributed" + the class name).
        device_dense, device_sparse: TensorFlow devices of the reductions of dense and of
            sparse (tf.IndexedSlices) gradients.
        compression: `Compression.fp16` sends float16 (half the bytes), `Compression.none`.
        sparse_as_dense: turn sparse gradients (e.g. of an Embedding) into dense tensors and
            allreduce them, instead of allgathering their rows.
        gradient_predivide_factor: with op=Average, divide by this before the sum and by
            size / factor after it (keeps float16 sums in range).
        op: Average (default) or Sum of the gradients.
        backward_passes_per_step: accumulate this many local gradients, then reduce and apply
            them once; `average_aggregated_gradients` divides the sum by that number.
        num_groups: deprecated spelling of an int `groups`.
        groups: an int: split the gradients into that many grouped allreduces; or lists of
            variables that are reduced together (each other variable on its own).
        process_set: reduce over the ranks of this process set only.
        scale_local_gradients: divide the gradients of variables registered with
            `optimizer.register_local_var(var)` (never reduced) by the process-set size.

    The result is an optimizer of the same class (`isinstance` and the class name hold; its
    config is unchanged), so a model saved with it loads as a plain Keras model. Wrap it before
    it trains: its state is not copied. Compile with `jit_compile=False` on a GPU.
    """
    if op == Adasum:
        raise NotImplementedError(
            "DistributedOptimizer(op=Adasum) is not supported: Horovod 0.28.1's own Keras "
            "DistributedOptimizer accepts only Average and Sum, and Horovod implements Adasum "
            f"only in builds with MPI (this build: mpi_built()={mpi_built()}). Use op=Average.")
    if op != Average and op != Sum:
        raise ValueError("op currently only supports Average and Sum")
    if gradient_predivide_factor != 1.0:
        if op != Average:
            raise ValueError("gradient_predivide_factor splits an average: it needs op=Average "
                             "(Horovod would ignore it with op=Sum)")
        if not gradient_predivide_factor > 0:
            raise ValueError(f"gradient_predivide_factor must be positive, got "
                             f"{gradient_predivide_factor!r}")
        if rocm_built():
            raise ValueError("gradient_predivide_factor not supported yet with ROCm")
    if (isinstance(backward_passes_per_step, bool) or not isinstance(backward_passes_per_step, int)
            or backward_passes_per_step < 1):
        raise ValueError(f"backward_passes_per_step must be an int > 0, got "
                         f"{backward_passes_per_step!r}")
    if num_groups != 0:
        warnings.warn("Parameter `num_groups` has been replaced by `groups` and will be removed "
                      "in v0.23.0.", DeprecationWarning, stacklevel=2)
        if groups is None:
            groups = num_groups
    if groups is not None:
        valid_int = isinstance(groups, int) and not isinstance(groups, bool) and groups > 0
        valid_lists = isinstance(groups, list) and all(
            isinstance(group, list | tuple) and all(
                isinstance(v, keras.Variable | tf.Variable) for v in group) for group in groups)
        if not (valid_int or valid_lists):
            raise ValueError("groups should be a non-negative integer or a list of list of "
                             f"variables, got {groups!r}")
    if not isinstance(process_set, ProcessSet):
        raise TypeError(f"process_set must be a hvd.ProcessSet, got {type(process_set).__name__}")

    if isinstance(optimizer, str | dict):
        optimizer = keras.optimizers.get(optimizer)
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(f"expected a Keras 3 optimizer (e.g. keras.optimizers.SGD(0.01)) or its "
                        f"name, got {type(optimizer).__name__}")
    if is_distributed(optimizer):
        raise ValueError("this optimizer is already a DistributedOptimizer; wrap it only once")
    if optimizer.built:
        raise ValueError("wrap the optimizer before it trains (its state would be lost): "
                         "hvd.DistributedOptimizer(keras.optimizers.SGD(...)), then compile; "
                         "to resume from a saved model use hvd.load_model")
    reducer = GradientReducer(
        name=name or f"Distributed{type(optimizer).__name__}", device_dense=device_dense,
        device_sparse=device_sparse, compression=compression, sparse_as_dense=sparse_as_dense,
        op=op, gradient_predivide_factor=gradient_predivide_factor,
        backward_passes_per_step=backward_passes_per_step,
        average_aggregated_gradients=average_aggregated_gradients, groups=groups,
        process_set=process_set, scale_local_gradients=scale_local_gradients)
    return make_distributed(type(optimizer).from_config(optimizer.get_config()), reducer)


def PartialDistributedOptimizer(optimizer: Any, name: str | None = None,  # noqa: N802 (Horovod's)
                                device_dense: str = "", device_sparse: str = "",
                                compression: Any = Compression.none,
                                sparse_as_dense: bool = False,
                                gradient_predivide_factor: float = 1.0, op: Any = Average,
                                groups: int | list | None = None,
                                process_set: Any = global_process_set, local_layers: Any = None,
                                scale_local_gradients: bool = True) -> Any:
    """A DistributedOptimizer whose `local_layers` keep their gradients on each worker.

    Horovod 0.28's `PartialDistributedOptimizer`: the trainable weights of `local_layers` (a
    Keras layer or a list of them) are registered with `register_local_var`, so their gradients
    are not reduced, only divided by the process-set size with `scale_local_gradients`. The
    other arguments are DistributedOptimizer's. Without local layers it is a
    DistributedOptimizer.
    """
    if local_layers is None:
        local_layers = []
    elif isinstance(local_layers, keras.layers.Layer):
        local_layers = [local_layers]
    elif not all(isinstance(layer, keras.layers.Layer) for layer in local_layers):
        raise ValueError("All local layers must be of tf.keras.layers.Layer type.")
    local_vars = [var for layer in local_layers for var in layer.trainable_weights]
    distributed = DistributedOptimizer(
        optimizer, name=name, device_dense=device_dense, device_sparse=device_sparse,
        compression=compression, sparse_as_dense=sparse_as_dense,
        gradient_predivide_factor=gradient_predivide_factor, op=op, groups=groups,
        process_set=process_set, scale_local_gradients=scale_local_gradients)
    for var in local_vars:
        distributed.register_local_var(var)
    return distributed


def load_model(filepath: Any, custom_optimizers: Sequence[type] | None = None,
               custom_objects: dict[str, Any] | None = None, compression: Any = Compression.none,
               legacy_opts: bool = False) -> Any:
    """`keras.models.load_model`, with the model's optimizer (and its state) made distributed.

    `custom_optimizers`: optimizer classes of your own that the file uses; `custom_objects`:
    any other custom classes or functions; `compression`: as in DistributedOptimizer.
    """
    if legacy_opts:
        raise NotImplementedError("load_model(legacy_opts=True): Keras 3 has no "
                                  "keras.optimizers.legacy optimizers to load")
    objects = {}
    for cls in custom_optimizers or ():
        if not (isinstance(cls, type) and issubclass(cls, keras.optimizers.Optimizer)):
            raise TypeError(f"custom_optimizers must be Keras optimizer classes, got {cls!r}")
        objects[cls.__name__] = cls
    objects.update(custom_objects or {})
    model = keras.models.load_model(filepath, custom_objects=objects)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not is_distributed(optimizer):
        make_distributed(optimizer, GradientReducer(
            name=f"Distributed{type(optimizer).__name__}", device_dense="", device_sparse="",
            compression=compression, sparse_as_dense=False, op=Average,
            gradient_predivide_factor=1.0, backward_passes_per_step=1,
            average_aggregated_gradients=False, groups=None, process_set=global_process_set,
            scale_local_gradients=True))
    return model


def broadcast_global_variables(root_rank: int) -> None:
    """Broadcast the weights and optimizer state of every Keras model in this process.

    TensorFlow 2 keeps no list of global variables, so the models are found by the garbage
    collector and their variables ordered by path; every rank checks that it holds the same
    variables as the others before anything is sent. Prefer BroadcastGlobalVariablesCallback
    with `model.fit`.
    """
    _impl_broadcast_global_variables(root_rank)
