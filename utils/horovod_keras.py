"""Horovod's `horovod.tensorflow.keras` (0.28.1) for Keras 3: `import utils.horovod_keras as hvd`.

Horovod's own Keras layer was written for Keras 2: on Keras 3 (TensorFlow >= 2.16) its
DistributedOptimizer hooks methods Keras 3 never calls and its callbacks use backend functions
Keras 3 removed (Horovod issue #4290; 0.28.1, June 2023, is its last release). This module
offers the same API, names and semantics, built on the parts of `horovod.tensorflow` that do
work with Keras 3: collectives on plain gradient tensors, broadcasts of the TensorFlow
variables under the Keras ones. An existing Horovod Keras script runs by changing its import:

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
- `hvd.elastic` is not implemented: its functions raise NotImplementedError.
- The collectives run outside XLA only: compile with `jit_compile=False` where Keras 3 turns
  XLA on by itself (models on a GPU); the optimizer says so if it finds itself inside XLA.
"""

from __future__ import annotations

import gc
import hashlib
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

try:
    import horovod.tensorflow as _hvd
    from horovod.common.util import split_list as _split_list
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
    "Adasum", "Average", "Compression", "DistributedOptimizer", "ProcessSet", "Sum",
    "add_process_set", "allgather", "allreduce", "broadcast", "broadcast_global_variables",
    "callbacks", "ccl_built", "cross_rank", "cross_size", "cuda_built", "ddl_built", "elastic",
    "gloo_built", "gloo_enabled", "global_process_set", "init", "is_initialized", "load_model",
    "local_rank", "local_size", "mpi_built", "mpi_enabled", "mpi_threads_supported",
    "nccl_built", "rank", "reducescatter", "remove_process_set", "rocm_built", "shutdown",
    "size", "start_timeline", "stop_timeline",
]


# --------------------------------------------------------------------------------------------
# Collectives on values, Keras tensors and Keras variables
# --------------------------------------------------------------------------------------------
def _as_tensor(value: Any) -> tf.Tensor:
    """A TensorFlow tensor holding `value` (a Keras variable is read, never aliased)."""
    if isinstance(value, keras.Variable):
        value = value.value
    return tf.convert_to_tensor(value)


def allreduce(value: Any, name: str | None = None, average: bool | None = None,
              prescale_factor: float = 1.0, postscale_factor: float = 1.0, op: Any = None,
              compression: Any = Compression.none) -> tf.Tensor:
    """The average (default) or sum of `value` over all ranks; same shape on every rank.

    `average` is Horovod's deprecated spelling of `op`; `prescale_factor` and
    `postscale_factor` multiply the value before and after the reduction.
    """
    return _hvd.allreduce(_as_tensor(value), average=average, op=op, name=name,
                          prescale_factor=prescale_factor, postscale_factor=postscale_factor,
                          compression=compression)


def allgather(value: Any, name: str | None = None) -> tf.Tensor:
    """Every rank's `value` concatenated along the first axis, in rank order."""
    return _hvd.allgather(_as_tensor(value), name=name)


def broadcast(value: Any, root_rank: int, name: str | None = None) -> tf.Tensor:
    """Rank `root_rank`'s `value`, on every rank (nothing is assigned: use the result)."""
    return _hvd.broadcast(_as_tensor(value), root_rank, name=name)


def reducescatter(value: Any, name: str | None = None, op: Any = Average) -> tf.Tensor:
    """This rank's slice (along the first axis) of the reduction of `value` over all ranks."""
    return _hvd.reducescatter(_as_tensor(value), op=op, name=name)


def _broadcast_variables(variables: Sequence[Any], root_rank: int) -> None:
    """Assign rank `root_rank`'s values to `variables` on every rank.

    Horovod assigns TensorFlow variables; a Keras 3 variable keeps one in `.value`.
    """
    _check_root_rank(root_rank)
    tf_variables = [v.value if isinstance(v, keras.Variable) else v for v in variables]
    if tf_variables:
        _hvd.broadcast_variables(tf_variables, root_rank=root_rank)


def _check_root_rank(root_rank: Any) -> None:
    if isinstance(root_rank, bool) or not isinstance(root_rank, int) or root_rank < 0:
        raise ValueError(f"root_rank must be a non-negative int, got {root_rank!r}")
    if is_initialized() and root_rank >= size():
        raise ValueError(f"root_rank {root_rank} does not exist: the job has {size()} rank(s)")


# --------------------------------------------------------------------------------------------
# DistributedOptimizer
# --------------------------------------------------------------------------------------------
def _refuse_xla() -> None:
    """Horovod's collectives cannot live inside an XLA cluster: say so at trace time."""
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # private module moved: skip the friendly check
        return
    if control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()):
        raise RuntimeError(
            "DistributedOptimizer cannot reduce gradients inside an XLA-compiled step: compile "
            "the model with jit_compile=False (Keras 3 turns XLA on by itself when a GPU is "
            "present; Horovod's collective operations do not run inside XLA)"
        )


def _same_variable(a: Any, b: Any) -> bool:
    """True when `a` and `b` are one variable (a Keras variable or the TensorFlow one in it)."""
    return a is b or (isinstance(a, keras.Variable) and a.value is b) or (
        isinstance(b, keras.Variable) and b.value is a)


def _contains(variables: Iterable[Any], variable: Any) -> bool:
    return any(_same_variable(v, variable) for v in variables)


class _GradientReducer:
    """The Horovod part of a DistributedOptimizer: what happens to the gradients before `apply`.

    One object per optimizer, holding the DistributedOptimizer arguments and, with
    `backward_passes_per_step > 1`, the local accumulators (plain TensorFlow variables, so
    they are neither saved with the model nor broadcast).
    """

    def __init__(self, *, name: str, device_dense: str, device_sparse: str, compression: Any,
                 sparse_as_dense: bool, op: Any, gradient_predivide_factor: float,
                 backward_passes_per_step: int, average_aggregated_gradients: bool,
                 groups: int | list | None, process_set: Any, scale_local_gradients: bool):
        self.name = name
        self.device_dense = device_dense
        self.device_sparse = device_sparse
        self.compression = compression
        self.sparse_as_dense = sparse_as_dense
        self.op = op
        # Horovod splits the average around the sum: x / f on every rank, then sum, then f / N.
        # (The 1 / N of an Average is applied by Horovod's own operation.)
        if op == Average:
            self.prescale_factor = 1.0 / gradient_predivide_factor
            self.postscale_factor = float(gradient_predivide_factor)
        else:
            self.prescale_factor = self.postscale_factor = 1.0
        self.backward_passes_per_step = backward_passes_per_step
        self.average_aggregated_gradients = average_aggregated_gradients
        self.groups = groups
        self.process_set = process_set
        self.scale_local_gradients = scale_local_gradients
        self.local_variables: list[Any] = []
        self.accumulators: list[tf.Variable | None] | None = None
        self.passes: tf.Variable | None = None

    def register_local_var(self, var: Any) -> None:
        """Keep `var`'s gradient on this worker: it is not reduced (only scaled, see
        `scale_local_gradients`)."""
        if not isinstance(var, keras.Variable | tf.Variable):
            raise TypeError(f"register_local_var expects a Keras or TensorFlow variable, got "
                            f"{type(var).__name__}")
        self.local_variables.append(var)

    # ---- the reduction itself ----------------------------------------------------------------
    def _reduces(self) -> bool:
        return self.process_set.included() and self.process_set.size() > 1

    def reduce(self, grads: list[Any], variables: list[Any] | None) -> list[Any]:
        """The gradients after Horovod: reduced over the process set, local ones scaled."""
        if not self._reduces():
            return list(grads)
        _refuse_xla()
        local = set()
        if self.local_variables:
            if variables is None:
                raise ValueError("this optimizer has local variables: pass the variables with "
                                 "the gradients, optimizer.apply(grads, variables)")
            local = {i for i, v in enumerate(variables) if _contains(self.local_variables, v)}
        shared = [i for i, g in enumerate(grads) if g is not None and i not in local]
        reduced = list(grads)
        with tf.name_scope(self.name + "_Allreduce"):
            for group in self._split(shared, variables):
                for i, g in zip(group, self._allreduce_group([grads[i] for i in group]),
                                strict=True):
                    reduced[i] = g
        if self.scale_local_gradients and local:
            horovod_size = self.process_set.size()
            for i in local:
                g = reduced[i]
                if isinstance(g, tf.IndexedSlices):
                    reduced[i] = tf.IndexedSlices(g.values / horovod_size, g.indices,
                                                  g.dense_shape)
                elif g is not None:
                    reduced[i] = g / horovod_size
        return reduced

    def _split(self, positions: list[int], variables: list[Any] | None) -> list[list[int]]:
        """The gradients (by position) that travel together, as Horovod's `groups` says."""
        if self.groups is None:
            return [[i] for i in positions]  # one allreduce each; Horovod fuses them at run time
        if isinstance(self.groups, int):
            return [chunk for chunk in _split_list(positions, self.groups) if chunk]
        if variables is None:
            raise ValueError("groups given as lists of variables need the variables: "
                             "optimizer.apply(grads, variables)")
        left, split = list(positions), []
        for group in self.groups:
            members = [i for i in left if _contains(group, variables[i])]
            left = [i for i in left if i not in members]
            if members:
                split.append(members)
        return split + [[i] for i in left]  # a variable in no list forms a group of its own

    def _allreduce_group(self, grads: list[Any]) -> list[Any]:
        options = dict(device_dense=self.device_dense, device_sparse=self.device_sparse,
                       compression=self.compression, op=self.op,
                       prescale_factor=self.prescale_factor,
                       postscale_factor=self.postscale_factor, process_set=self.process_set)
        if self.groups is None:
            return [_hvd.allreduce(g, **options) for g in grads]
        return list(_hvd.grouped_allreduce(grads, **options))

    # ---- apply, with or without local accumulation -------------------------------------------
    def apply(self, optimizer: Any, grads: Sequence[Any],
              trainable_variables: Sequence[Any] | None) -> Any:
        base_apply = type(optimizer).apply
        grads = list(grads)
        if self.sparse_as_dense:
            grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                     for g in grads]
        variables = None if trainable_variables is None else list(trainable_variables)
        if variables is not None and len(variables) != len(grads):
            raise ValueError(f"got {len(grads)} gradients for {len(variables)} variables")
        if self.backward_passes_per_step == 1:
            return base_apply(optimizer, self.reduce(grads, variables), variables)

        if variables is not None and not optimizer.built:
            optimizer.build(variables)  # outside the branches below: they cannot create state
        grads = self._accumulate(grads, variables)

        def reduce_and_apply():
            reduced = self.reduce(grads, variables)
            if self.average_aggregated_gradients:
                reduced = [None if g is None else g / self.backward_passes_per_step
                           for g in reduced]
            base_apply(optimizer, reduced, variables)
            for accumulator in self.accumulators:
                if accumulator is not None:
                    accumulator.assign(tf.zeros_like(accumulator))
            self.passes.assign(0)
            return tf.constant(True)

        def count_the_pass():
            optimizer.iterations.assign_add(1)  # Horovod counts every backward pass
            return tf.constant(False)

        return tf.cond(tf.equal(self.passes, self.backward_passes_per_step), reduce_and_apply,
                       count_the_pass)

    def _accumulate(self, grads: list[Any], variables: list[Any] | None) -> list[Any]:
        """Add this pass's gradients to the local sums; return the sums so far."""
        if any(isinstance(g, tf.IndexedSlices) for g in grads):
            raise ValueError("IndexedSlices are not supported when `backward_passes_per_step` "
                             "> 1 and `sparse_as_dense` is False.")
        if self.accumulators is None:
            with tf.init_scope():  # created once, outside any traced function
                self.passes = tf.Variable(0, dtype=tf.int64, trainable=False,
                                          name="backward_passes")
                self.accumulators = [
                    None if g is None else tf.Variable(
                        tf.zeros(variables[i].shape if variables else g.shape, g.dtype),
                        trainable=False, name="accumulated_gradient")
                    for i, g in enumerate(grads)]
        if [g is None for g in grads] != [a is None for a in self.accumulators]:
            raise ValueError("backward_passes_per_step > 1 needs the same gradients (and the "
                             "same missing ones) at every pass")
        summed = []
        for g, accumulator in zip(grads, self.accumulators, strict=True):
            summed.append(None if g is None else accumulator.assign_add(g).read_value())
        self.passes.assign_add(1)
        return summed


def _distributed_apply(self: Any, grads: Sequence[Any], trainable_variables=None) -> Any:
    """`apply` of a DistributedOptimizer: Horovod's reduction, then the optimizer's own step."""
    return self._horovod.apply(self, grads, trainable_variables)


def _make_distributed(optimizer: Any, reducer: _GradientReducer) -> Any:
    """Give this optimizer instance Horovod's reduction, keeping its class, config and state."""
    optimizer._horovod = reducer
    optimizer.apply = types.MethodType(_distributed_apply, optimizer)
    optimizer.register_local_var = reducer.register_local_var
    return optimizer


def _is_distributed(optimizer: Any) -> bool:
    return isinstance(getattr(optimizer, "_horovod", None), _GradientReducer)


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
    if _is_distributed(optimizer):
        raise ValueError("this optimizer is already a DistributedOptimizer; wrap it only once")
    if optimizer.built:
        raise ValueError("wrap the optimizer before it trains (its state would be lost): "
                         "hvd.DistributedOptimizer(keras.optimizers.SGD(...)), then compile; "
                         "to resume from a saved model use hvd.load_model")
    reducer = _GradientReducer(
        name=name or f"Distributed{type(optimizer).__name__}", device_dense=device_dense,
        device_sparse=device_sparse, compression=compression, sparse_as_dense=sparse_as_dense,
        op=op, gradient_predivide_factor=gradient_predivide_factor,
        backward_passes_per_step=backward_passes_per_step,
        average_aggregated_gradients=average_aggregated_gradients, groups=groups,
        process_set=process_set, scale_local_gradients=scale_local_gradients)
    return _make_distributed(type(optimizer).from_config(optimizer.get_config()), reducer)


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
    if optimizer is not None and not _is_distributed(optimizer):
        _make_distributed(optimizer, _GradientReducer(
            name=f"Distributed{type(optimizer).__name__}", device_dense="", device_sparse="",
            compression=compression, sparse_as_dense=False, op=Average,
            gradient_predivide_factor=1.0, backward_passes_per_step=1,
            average_aggregated_gradients=False, groups=None, process_set=global_process_set,
            scale_local_gradients=True))
    return model


def _models_in_this_process() -> list[Any]:
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
    """Broadcast the weights and optimizer state of every Keras model in this process.

    TensorFlow 2 keeps no list of global variables, so the models are found by the garbage
    collector and their variables ordered by path; every rank checks that it holds the same
    variables as the others before anything is sent. Prefer BroadcastGlobalVariablesCallback
    with `model.fit`.
    """
    variables, seen = [], set()
    for model in _models_in_this_process():
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
    _broadcast_variables(variables, root_rank)


# --------------------------------------------------------------------------------------------
# Callbacks (served as hvd.callbacks.*)
# --------------------------------------------------------------------------------------------
class BroadcastGlobalVariablesCallback(keras.callbacks.Callback):
    """Start every rank from rank `root_rank`'s model weights and optimizer state.

    Needed because every rank initialises its own random weights (and a restored checkpoint
    may exist on one rank only). `device`: where the broadcast runs; `local_variables`:
    variables that stay as they are on each rank.
    """

    def __init__(self, root_rank: int, device: str = "", local_variables: Any = None):
        super().__init__()
        _check_root_rank(root_rank)
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
        variables = [w for w in self.model.weights if not _contains(self._local_variables, w)]
        if optimizer is not None:
            variables += list(optimizer.variables)
        with tf.device(self.device):
            _broadcast_variables(variables, self.root_rank)
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
        keys = sorted(k for k, v in logs.items() if _is_number(v))
        if not keys:
            return
        with tf.device(self.device):
            averaged = _hvd.allreduce(tf.constant([float(logs[k]) for k in keys], tf.float64),
                                      op=Average, name="MetricAverageCallback")
        for key, value in zip(keys, averaged.numpy().tolist(), strict=True):
            logs[key] = value


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _current_lr(optimizer: Any) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class _MomentumCorrection:
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
        self._correction: _MomentumCorrection | None = None

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
            optimizer.learning_rate = _current_lr(optimizer)
        except TypeError as error:
            raise TypeError(f"{type(self).__name__} sets the learning rate itself: give the "
                            f"optimizer a number, not a LearningRateSchedule ({error})") from None
        if not self.staircase and not self.steps_per_epoch:
            self.steps_per_epoch = self._autodetect_steps_per_epoch()
        self._correction = (_MomentumCorrection(self.model) if self.momentum_correction
                            else None)

    def on_epoch_begin(self, epoch, logs=None):
        self.current_epoch = epoch

    def _adjust_learning_rate(self, epoch: float) -> None:
        optimizer = self.model.optimizer
        old_lr = _current_lr(optimizer)
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
            logs["lr"] = _current_lr(self.model.optimizer)


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
                  f"{_current_lr(self.model.optimizer):g}.", flush=True)


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


def _namespace(name: str, doc: str, members: dict[str, Any]) -> types.ModuleType:
    """A submodule `utils.horovod_keras.<name>`: an attribute here, and importable by name."""
    module = types.ModuleType(f"{__name__}.{name}", doc)
    module.__dict__.update(members)
    module.__all__ = sorted(members)
    sys.modules[module.__name__] = module  # as os.path: `import utils.horovod_keras.callbacks`
    return module


callbacks = _namespace("callbacks", "Horovod's Keras callbacks, for Keras 3.", {
    cls.__name__: cls for cls in (BroadcastGlobalVariablesCallback, MetricAverageCallback,
                                  LearningRateScheduleCallback, LearningRateWarmupCallback,
                                  BestModelCheckpoint)})


def _elastic_unavailable(name: str) -> Callable[..., Any]:
    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"hvd.elastic.{name}: elastic Horovod (ranks joining and leaving a running job) is "
            "not implemented by utils.horovod_keras. Run a fixed-size job with horovodrun -np "
            "N and restart it from a checkpoint (hvd.load_model) when a node fails.")
    return unavailable


elastic = _namespace("elastic", "Elastic Horovod: not implemented for Keras 3 (raises).", {
    name: _elastic_unavailable(name) for name in (
        "run", "KerasState", "CommitStateCallback", "UpdateBatchStateCallback",
        "UpdateEpochStateCallback")})

