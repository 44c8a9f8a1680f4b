"""What a DistributedOptimizer does to the gradients, grafted on a Keras 3 optimizer instance.

Horovod 0.28.1 (`horovod/_keras/__init__.py`) builds a subclass of the wrapped optimizer whose
`_compute_gradients` / `get_gradients` reduce the gradients, with a helper
(`LocalGradientAggregationHelper`, `optimizer._agg_helper`) that sums them locally over
`backward_passes_per_step` passes, reduces the sum once, and lets `apply_gradients` apply it on
the last pass only. Keras 3 computes the gradients itself (in `model.fit`) and calls
`optimizer.apply(grads, variables)`, so here `apply` reduces them; the Horovod entry points
(`_compute_gradients`, `get_gradients`, `apply_gradients`) exist too, and gradients they
already reduced are not reduced again by `apply`.
"""

from __future__ import annotations

import os
import types
from collections.abc import Sequence
from typing import Any

import horovod.tensorflow as _hvd
import keras
import tensorflow as tf
from horovod.common.util import split_list
from horovod.tensorflow import Average

from .collectives import contains, tf_variable


def refuse_xla() -> None:
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


def elastic_job() -> bool:
    """True on the workers of an elastic job (horovodrun sets HOROVOD_ELASTIC=1): their number
    changes at run time, so nothing may depend on the size seen when a step was traced."""
    return os.environ.get("HOROVOD_ELASTIC", "0") not in ("", "0")


class GradientReducer:
    """The Horovod part of a DistributedOptimizer: what happens to the gradients before a step.

    One object per optimizer, holding the DistributedOptimizer arguments and, with
    `backward_passes_per_step > 1`, Horovod's local aggregation: `counter` (the passes since the
    last reduction) and the per-gradient sums, plain TensorFlow variables, so they are neither
    saved with the model nor broadcast. It is `optimizer._agg_helper` then, as in Horovod.
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
        self.counter: tf.Variable | None = None
        if backward_passes_per_step > 1:
            with tf.init_scope():
                self.counter = tf.Variable(0, dtype=tf.int32, trainable=False,
                                           name="aggregation_counter")
        self._reduced: dict[int, Any] = {}

    def register_local_var(self, var: Any) -> None:
        """Keep `var`'s gradient on this worker: it is not reduced (only scaled, see
        `scale_local_gradients`)."""
        if not isinstance(var, keras.Variable | tf.Variable):
            raise TypeError(f"register_local_var expects a Keras or TensorFlow variable, got "
                            f"{type(var).__name__}")
        self.local_variables.append(var)

    # ---- the reduction itself ----------------------------------------------------------------
    def _reduces(self) -> bool:
        if not self.process_set.included():
            return False
        return elastic_job() or self.process_set.size() > 1

    def _size(self, dtype: Any) -> Any:
        """The process set's size: read when the step runs in an elastic job (Horovod does the
        same), else when it is traced."""
        if elastic_job():
            from horovod.tensorflow.mpi_ops import size_op

            return tf.cast(size_op(process_set_id=self.process_set.process_set_id), dtype)
        return tf.cast(self.process_set.size(), dtype)

    def prepare(self, grads: Sequence[Any]) -> list[Any]:
        """`sparse_as_dense`: the sparse gradients (tf.IndexedSlices) as dense tensors."""
        if not self.sparse_as_dense:
            return list(grads)
        return [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]

    def reduce(self, grads: list[Any], variables: list[Any] | None) -> list[Any]:
        """The gradients after Horovod: reduced over the process set, local ones scaled."""
        if not self._reduces():
            return list(grads)
        refuse_xla()
        local = set()
        if self.local_variables:
            if variables is None:
                raise ValueError("this optimizer has local variables: pass the variables with "
                                 "the gradients, optimizer.apply(grads, variables)")
            local = {i for i, v in enumerate(variables) if contains(self.local_variables, v)}
        shared = [i for i, g in enumerate(grads) if g is not None and i not in local]
        reduced = list(grads)
        with tf.name_scope(self.name + "_Allreduce"):
            for group in self._split(shared, variables):
                for i, g in zip(group, self._allreduce_group([grads[i] for i in group]),
                                strict=True):
                    reduced[i] = g
        if self.scale_local_gradients and local:
            for i in local:
                g = reduced[i]
                if isinstance(g, tf.IndexedSlices):
                    reduced[i] = tf.IndexedSlices(g.values / self._size(g.dtype), g.indices,
                                                  g.dense_shape)
                elif g is not None:
                    reduced[i] = g / self._size(g.dtype)
        return reduced

    def _split(self, positions: list[int], variables: list[Any] | None) -> list[list[int]]:
        """The gradients (by position) that travel together, as Horovod's `groups` says."""
        if self.groups is None:
            return [[i] for i in positions]  # one allreduce each; Horovod fuses them at run time
        if isinstance(self.groups, int):
            return [chunk for chunk in split_list(positions, self.groups) if chunk]
        if variables is None:
            raise ValueError("groups given as lists of variables need the variables: "
                             "optimizer.apply(grads, variables)")
        left, split = list(positions), []
        for group in self.groups:
            members = [i for i in left if contains(group, variables[i])]
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

    # ---- local aggregation (backward_passes_per_step > 1) -------------------------------------
    def aggregate(self, grads: list[Any], variables: list[Any] | None) -> list[Any]:
        """Horovod's `_agg_helper.compute_gradients`: add this pass's gradients to the local
        sums; on the last pass of a step, reduce the sums (divided by the number of passes with
        `average_aggregated_gradients`), clear them and the counter, and return the result.
        On the other passes, return the sums so far."""
        summed = self._accumulate(grads, variables)
        present = [i for i, g in enumerate(summed) if g is not None]

        def reduce_and_clear():
            reduced = self.reduce(summed, variables)
            if self.average_aggregated_gradients:
                reduced = [None if g is None else g / self.backward_passes_per_step
                           for g in reduced]
            values = [tf.identity(reduced[i]) for i in present]
            with tf.control_dependencies(values):  # cleared once the result is read
                for accumulator in self.accumulators:
                    if accumulator is not None:
                        accumulator.assign(tf.zeros_like(accumulator))
                self.counter.assign(0)
            return values

        def keep_summing():
            return [tf.identity(summed[i]) for i in present]

        values = tf.cond(tf.equal(self.counter, self.backward_passes_per_step),
                         reduce_and_clear, keep_summing)
        result = list(summed)
        for i, value in zip(present, values, strict=True):
            result[i] = value
        return result

    def _accumulate(self, grads: list[Any], variables: list[Any] | None) -> list[Any]:
        if any(isinstance(g, tf.IndexedSlices) for g in grads):
            raise ValueError("IndexedSlices are not supported when `backward_passes_per_step` "
                             "> 1 and `sparse_as_dense` is False.")
        if self.accumulators is None:
            with tf.init_scope():  # created once, outside any traced function
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
        self.counter.assign_add(1)
        return summed

    def _apply_on_last_pass(self, optimizer: Any, grads: list[Any],
                            variables: list[Any] | None) -> Any:
        """Horovod's `_agg_helper.apply_gradients`: apply once the counter is back at 0 (the
        pass that reduced); on the other passes only count the pass in `iterations`."""
        base_apply = type(optimizer).apply

        def apply_now():
            base_apply(optimizer, grads, variables)
            return tf.constant(True)

        def count_the_pass():
            optimizer.iterations.assign_add(1)  # Horovod counts every backward pass
            return tf.constant(False)

        return tf.cond(tf.equal(self.counter, 0), apply_now, count_the_pass)

    # ---- gradients already reduced by _compute_gradients / get_gradients ----------------------
    def mark_reduced(self, grads: Sequence[Any]) -> None:
        self._reduced = {id(g): g for g in grads if g is not None}

    def take_reduced(self, grads: Sequence[Any]) -> bool:
        present = [g for g in grads if g is not None]
        if present and all(id(g) in self._reduced for g in present):
            self._reduced = {}
            return True
        return False

    def reduce_or_aggregate(self, grads: Sequence[Any], variables: list[Any]) -> list[Any]:
        grads = self.prepare(grads)
        if self.counter is None:
            result = self.reduce(grads, variables)
        else:
            result = self.aggregate(grads, variables)
        self.mark_reduced(result)
        return result

    # ---- the optimizer's entry points -----------------------------------------------------------
    def apply(self, optimizer: Any, grads: Sequence[Any],
              trainable_variables: Sequence[Any] | None) -> Any:
        base_apply = type(optimizer).apply
        grads = list(grads)
        variables = None if trainable_variables is None else list(trainable_variables)
        if variables is not None and len(variables) != len(grads):
            raise ValueError(f"got {len(grads)} gradients for {len(variables)} variables")
        if variables is not None and not optimizer.built:
            optimizer.build(variables)  # outside any tf.cond below: a branch cannot create state
        if self.take_reduced(grads):
            reduced = grads  # from _compute_gradients or get_gradients: already reduced
        else:
            grads = self.prepare(grads)
            reduced = (self.reduce(grads, variables) if self.counter is None
                       else self.aggregate(grads, variables))
        if self.counter is None:
            return base_apply(optimizer, reduced, variables)
        return self._apply_on_last_pass(optimizer, reduced, variables)

    def compute_gradients(self, loss: Any, var_list: Any, grad_loss: Any = None,
                          tape: Any = None) -> list[tuple[Any, Any]]:
        """Keras 2's `Optimizer._compute_gradients`, then Horovod's reduction."""
        if not callable(loss) and tape is None:
            raise ValueError("`tape` is required when a `Tensor` loss is passed.")
        tape = tape if tape is not None else tf.GradientTape()
        if callable(loss):
            with tape:
                if not callable(var_list):
                    tape.watch([tf_variable(v) for v in tf.nest.flatten(var_list)])
                loss = loss()
                if callable(var_list):
                    var_list = var_list()
        var_list = tf.nest.flatten(var_list)
        with tf.name_scope(self.name + "_gradients"):
            grads = tape.gradient(loss, [tf_variable(v) for v in var_list], grad_loss)
        return list(zip(self.reduce_or_aggregate(grads, var_list), var_list, strict=True))

    def get_gradients(self, optimizer: Any, loss: Any, params: Sequence[Any]) -> list[Any]:
        """Keras 2's `get_gradients` (the optimizer class's own if it has one), reduced."""
        params = list(params)
        own = getattr(type(optimizer), "get_gradients", None)
        if own is not None:
            grads = own(optimizer, loss, params)
        else:  # Keras 2 took the symbolic gradients of the loss (graph mode only)
            grads = tf.gradients(loss, [tf_variable(p) for p in params])
        return self.reduce_or_aggregate(grads, params)


# The methods a DistributedOptimizer instance gets (bound to it by `make_distributed`).
def _apply(self: Any, grads: Sequence[Any], trainable_variables: Sequence[Any] | None = None):
    """`apply` of a DistributedOptimizer: Horovod's reduction, then the optimizer's own step."""
    return self._horovod.apply(self, grads, trainable_variables)


def _apply_gradients(self: Any, grads_and_vars: Any, name: str | None = None,
                     skip_gradients_aggregation: bool = False,
                     experimental_aggregate_gradients: bool = True) -> Any:
    """Keras 2's `apply_gradients(grads_and_vars)`: the gradients from `_compute_gradients` or
    `get_gradients` are applied as they are (reduced once already), any others are reduced
    first. `name` and the two Keras 2 aggregation flags are accepted and have no effect (they
    steered tf.distribute's cross-replica sum, which a Horovod job does not use)."""
    grads_and_vars = list(grads_and_vars)
    if not grads_and_vars:
        return self.iterations
    grads, variables = zip(*grads_and_vars, strict=True)
    self.apply(list(grads), list(variables))
    return self.iterations


def _compute_gradients(self: Any, loss: Any, var_list: Any, grad_loss: Any = None,
                       tape: Any = None) -> list[tuple[Any, Any]]:
    """Horovod's `_compute_gradients`: the gradients of `loss` (a callable, or a tensor recorded
    by `tape`) for `var_list`, reduced over the ranks (or aggregated locally, see
    backward_passes_per_step); `apply_gradients` applies them without reducing them again."""
    return self._horovod.compute_gradients(loss, var_list, grad_loss, tape)


def _compute_gradients_public(self: Any, loss: Any, var_list: Any, tape: Any = None):
    """Horovod's `compute_gradients(loss, var_list, tape=None)`: see `_compute_gradients`."""
    return self._horovod.compute_gradients(loss, var_list, None, tape)


def _get_gradients(self: Any, loss: Any, params: Sequence[Any]) -> list[Any]:
    """Horovod's `get_gradients`: the optimizer's gradients of `loss`, reduced over the ranks."""
    return self._horovod.get_gradients(self, loss, params)


def make_distributed(optimizer: Any, reducer: GradientReducer) -> Any:
    """Give this optimizer instance Horovod's reduction, keeping its class, config and state."""
    optimizer._horovod = reducer
    optimizer._agg_helper = reducer if reducer.counter is not None else None
    for name, function in (("apply", _apply), ("apply_gradients", _apply_gradients),
                           ("_compute_gradients", _compute_gradients),
                           ("compute_gradients", _compute_gradients_public),
                           ("get_gradients", _get_gradients)):
        setattr(optimizer, name, types.MethodType(function, optimizer))
    optimizer.register_local_var = reducer.register_local_var
    return optimizer


def is_distributed(optimizer: Any) -> bool:
    return isinstance(getattr(optimizer, "_horovod", None), GradientReducer)
