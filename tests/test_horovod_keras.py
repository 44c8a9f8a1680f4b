"""utils.horovod_keras: Horovod's Keras API (0.28.1) on Keras 3, checked against Horovod's rules.

The API checks run in this process. Everything that needs real ranks comes from ONE 2-rank
Gloo job (tests/hvd_scripts/horovod_keras_scenarios.py): starting TensorFlow on the ranks is
the slow part, so that job runs every scenario and records its results, plus Horovod's own
timeline (which tensors each reduction sent, their dtype and shape, and how they travelled).
"""

from __future__ import annotations

import inspect
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from utils import distributed
from utils.distributed import horovodrun

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = Path(__file__).resolve().parent / "hvd_scripts" / "horovod_keras_scenarios.py"
JOB_TIMEOUT_S = 300  # generous: a loaded 2-core runner starts TensorFlow slowly

HOROVOD_READY = (distributed.horovod_installed()
                 and (Path(sys.executable).parent / "horovodrun").exists())
pytestmark = pytest.mark.skipif(
    not HOROVOD_READY, reason="Horovod is not installed in this Python (make setup builds it)")


@pytest.fixture(scope="module")
def hvd():
    import utils.horovod_keras

    return utils.horovod_keras


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


# --- the API, in this process (no ranks needed) --------------------------------------------------
HOROVOD_KERAS_NAMES = [  # what `horovod.tensorflow.keras` 0.28.1 offers
    "init", "shutdown", "is_initialized", "start_timeline", "stop_timeline", "size",
    "local_size", "cross_size", "rank", "local_rank", "cross_rank", "mpi_threads_supported",
    "mpi_enabled", "mpi_built", "gloo_enabled", "gloo_built", "nccl_built", "ddl_built",
    "ccl_built", "cuda_built", "rocm_built", "ProcessSet", "global_process_set",
    "add_process_set", "remove_process_set", "Average", "Sum", "Compression",
    "DistributedOptimizer", "broadcast_global_variables", "allreduce", "allgather",
    "broadcast", "reducescatter", "load_model", "callbacks", "elastic",
]

REQUIRED = inspect.Parameter.empty
HOROVOD_SIGNATURES = {  # Horovod 0.28.1's, parameter by parameter (name, default)
    "DistributedOptimizer": [
        ("optimizer", REQUIRED), ("name", None), ("device_dense", ""), ("device_sparse", ""),
        ("compression", "Compression.none"), ("sparse_as_dense", False),
        ("gradient_predivide_factor", 1.0), ("op", "Average"), ("backward_passes_per_step", 1),
        ("average_aggregated_gradients", False), ("num_groups", 0), ("groups", None),
        ("process_set", "global_process_set"), ("scale_local_gradients", True)],
    "PartialDistributedOptimizer": [  # Horovod 0.28.1 has it in horovod.keras
        ("optimizer", REQUIRED), ("name", None), ("device_dense", ""), ("device_sparse", ""),
        ("compression", "Compression.none"), ("sparse_as_dense", False),
        ("gradient_predivide_factor", 1.0), ("op", "Average"), ("groups", None),
        ("process_set", "global_process_set"), ("local_layers", None),
        ("scale_local_gradients", True)],
    "load_model": [("filepath", REQUIRED), ("custom_optimizers", None), ("custom_objects", None),
                   ("compression", "Compression.none"), ("legacy_opts", False)],
    "allreduce": [("value", REQUIRED), ("name", None), ("average", None), ("prescale_factor", 1.0),
                  ("postscale_factor", 1.0), ("op", None), ("compression", "Compression.none")],
    "allgather": [("value", REQUIRED), ("name", None)],
    "broadcast": [("value", REQUIRED), ("root_rank", REQUIRED), ("name", None)],
    "reducescatter": [("value", REQUIRED), ("name", None), ("op", "Average")],
    "broadcast_global_variables": [("root_rank", REQUIRED)],
    "callbacks.BroadcastGlobalVariablesCallback": [("root_rank", REQUIRED), ("device", ""),
                                                   ("local_variables", None)],
    "callbacks.MetricAverageCallback": [("device", "")],
    "callbacks.LearningRateScheduleCallback": [
        ("initial_lr", REQUIRED), ("multiplier", REQUIRED), ("start_epoch", 0), ("end_epoch", None),
        ("staircase", True), ("momentum_correction", True), ("steps_per_epoch", None)],
    "callbacks.LearningRateWarmupCallback": [
        ("initial_lr", REQUIRED), ("warmup_epochs", 5), ("momentum_correction", True),
        ("steps_per_epoch", None), ("verbose", 0)],
    "callbacks.BestModelCheckpoint": [
        ("monitor", "val_loss"), ("verbose", 0), ("save_weights_only", False), ("mode", "auto"),
        ("save_freq", "epoch")],
}


def test_the_drop_in_offers_every_name_of_horovod_tensorflow_keras(hvd):
    import horovod.tensorflow as horovod_tf

    missing = [name for name in HOROVOD_KERAS_NAMES if not hasattr(hvd, name)]
    assert missing == []
    assert set(HOROVOD_KERAS_NAMES) <= set(hvd.__all__)
    for name in ("init", "size", "rank", "local_rank", "Average", "Sum", "Adasum",
                 "Compression", "ProcessSet", "global_process_set", "gloo_enabled"):
        assert getattr(hvd, name) is getattr(horovod_tf, name)  # re-exported, not copied


def _resolve(hvd, dotted):
    target = hvd
    for part in dotted.split("."):
        target = getattr(target, part)
    return target


@pytest.mark.parametrize("name", sorted(HOROVOD_SIGNATURES))
def test_each_function_and_callback_has_horovods_parameters_and_defaults(hvd, name):
    constants = {"Compression.none": hvd.Compression.none, "Average": hvd.Average,
                 "global_process_set": hvd.global_process_set}
    parameters = list(inspect.signature(_resolve(hvd, name)).parameters.values())
    expected = HOROVOD_SIGNATURES[name]
    assert [p.name for p in parameters[:len(expected)]] == [n for n, _ in expected]
    for parameter, (_, default) in zip(parameters, expected, strict=False):
        if isinstance(default, str) and default in constants:
            assert parameter.default is constants[default], parameter.name
        else:
            assert parameter.default == default, parameter.name
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters[len(expected):])  # extras only


def test_callbacks_is_an_importable_submodule_of_keras_callbacks(hvd, keras):
    import utils.horovod_keras.callbacks as callbacks
    from utils.horovod_keras.callbacks import BroadcastGlobalVariablesCallback

    assert callbacks is hvd.callbacks and "__getattr__" not in vars(callbacks)
    assert BroadcastGlobalVariablesCallback is hvd.callbacks.BroadcastGlobalVariablesCallback
    for name in callbacks.__all__:
        assert issubclass(getattr(callbacks, name), keras.callbacks.Callback)
    assert issubclass(callbacks.BestModelCheckpoint, keras.callbacks.ModelCheckpoint)


def test_the_wrapped_optimizer_is_still_its_class_with_the_same_config(hvd, keras):
    plain = keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True, name="sgd_plain")
    wrapped = hvd.DistributedOptimizer(plain)
    assert type(wrapped) is keras.optimizers.SGD and wrapped is not plain
    assert wrapped.get_config() == plain.get_config()
    assert keras.saving.serialize_keras_object(wrapped) == keras.saving.serialize_keras_object(
        plain)  # so a saved model holds a plain SGD and loads anywhere
    assert callable(wrapped.register_local_var) and not hasattr(plain, "register_local_var")
    assert type(hvd.DistributedOptimizer("adam")) is keras.optimizers.Adam


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"op": "Adasum"}, NotImplementedError, r"op=Adasum\) is not supported.*only in builds "
                                            r"with MPI"),
    ({"op": "Min"}, ValueError, "op currently only supports Average and Sum"),
    ({"op": "Sum", "gradient_predivide_factor": 2.0}, ValueError, "needs op=Average"),
    ({"gradient_predivide_factor": 0.0}, ValueError, "must be positive"),
    ({"backward_passes_per_step": 0}, ValueError, "backward_passes_per_step must be an int > 0"),
    ({"backward_passes_per_step": 1.5}, ValueError, "backward_passes_per_step must be an int"),
    ({"groups": 0}, ValueError, "groups should be a non-negative integer or a list of list"),
    ({"groups": [["not a variable"]]}, ValueError, "groups should be"),
    ({"process_set": [0, 1]}, TypeError, "process_set must be a hvd.ProcessSet"),
])
def test_distributed_optimizer_refuses_what_it_cannot_do_and_says_why(hvd, keras, kwargs, error,
                                                                       match):
    import horovod.tensorflow as horovod_tf

    kwargs = {k: getattr(horovod_tf, v) if k == "op" else v for k, v in kwargs.items()}
    with pytest.raises(error, match=match):
        hvd.DistributedOptimizer(keras.optimizers.SGD(0.1), **kwargs)


def test_distributed_optimizer_refuses_a_non_optimizer_a_trained_one_and_a_second_wrap(hvd,
                                                                                      keras):
    with pytest.raises(TypeError, match="expected a Keras 3 optimizer"):
        hvd.DistributedOptimizer(0.01)
    with pytest.raises(ValueError, match="already a DistributedOptimizer"):
        hvd.DistributedOptimizer(hvd.DistributedOptimizer(keras.optimizers.SGD(0.1)))
    trained = keras.optimizers.SGD(0.1)
    trained.build([keras.Variable(np.zeros(3))])
    with pytest.raises(ValueError, match="wrap the optimizer before it trains.*hvd.load_model"):
        hvd.DistributedOptimizer(trained)


def test_num_groups_is_accepted_with_horovods_deprecation_warning(hvd, keras):
    with pytest.warns(DeprecationWarning, match="`num_groups` has been replaced by `groups`"):
        hvd.DistributedOptimizer(keras.optimizers.SGD(0.1), num_groups=2)


def test_elastic_offers_horovods_state_loop_and_callbacks(hvd, keras):
    import utils.horovod_keras.elastic as elastic

    assert elastic is hvd.elastic and "__getattr__" not in vars(elastic)
    assert set(elastic.__all__) == {"run", "KerasState", "CommitStateCallback",
                                    "UpdateBatchStateCallback", "UpdateEpochStateCallback"}
    for name in ("CommitStateCallback", "UpdateBatchStateCallback", "UpdateEpochStateCallback"):
        assert issubclass(getattr(elastic, name), keras.callbacks.Callback)
    with pytest.raises(ValueError, match="Model must be built first"):
        elastic.KerasState(keras.Sequential([keras.layers.Dense(2)]))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="KerasState needs an optimizer"):
        elastic.KerasState(model)
    assert callable(elastic.run(lambda state: None))  # it runs in tests/test_horovod_upstream.py


def test_load_model_rewraps_optimizers_of_any_class_and_refuses_legacy_ones(hvd, keras, tmp_path):
    class TinySGD(keras.optimizers.SGD):
        pass

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=hvd.DistributedOptimizer(TinySGD(0.1, momentum=0.5)), loss="mse")
    model.optimizer.build(model.trainable_variables)
    model.optimizer.momentums[0].assign(np.ones((3, 2)))  # some state to restore
    path = tmp_path / "tiny.keras"
    model.save(path)
    loaded = hvd.load_model(path, custom_optimizers=[TinySGD])
    assert type(loaded.optimizer) is TinySGD and callable(loaded.optimizer.register_local_var)
    assert np.array_equal(loaded.optimizer.momentums[0].numpy(), np.ones((3, 2)))
    with pytest.raises(NotImplementedError, match="no keras.optimizers.legacy"):
        hvd.load_model(path, legacy_opts=True)
    with pytest.raises(TypeError, match="custom_optimizers must be Keras optimizer classes"):
        hvd.load_model(path, custom_optimizers=["TinySGD"])


def test_callbacks_check_their_arguments_and_the_optimizer_they_drive(hvd, keras):
    with pytest.raises(ValueError, match="root_rank must be a non-negative int"):
        hvd.callbacks.BroadcastGlobalVariablesCallback(-1)
    with pytest.raises(ValueError, match="All local variables must be"):
        hvd.callbacks.BroadcastGlobalVariablesCallback(0, local_variables=[np.zeros(2)])
    with pytest.raises(ValueError, match="Parameter `initial_lr` is required"):
        hvd.callbacks.LearningRateScheduleCallback(None, 0.5)
    with pytest.raises(ValueError, match="warmup_epochs must be positive"):
        hvd.callbacks.LearningRateWarmupCallback(0.1, warmup_epochs=0)

    def started(callback, optimizer):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer=optimizer, loss="mse")
        callback.set_model(model)
        callback.set_params({"steps": 4})
        callback.on_train_begin()
        return callback

    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    with pytest.raises(TypeError, match="give the optimizer a number, not a LearningRateSch"):
        started(hvd.callbacks.LearningRateWarmupCallback(0.1), keras.optimizers.SGD(schedule))

    class HeavyBall(keras.optimizers.Adam):  # has a momentum the drop-in cannot correct
        momentum = 0.9

    with pytest.raises(NotImplementedError, match="momentum_correction=True for HeavyBall"):
        started(hvd.callbacks.LearningRateWarmupCallback(0.1), HeavyBall())
    started(hvd.callbacks.LearningRateWarmupCallback(0.1, momentum_correction=False), HeavyBall())
    with pytest.raises(ValueError, match="BestModelCheckpoint has no filepath"):
        started(hvd.callbacks.BestModelCheckpoint(), keras.optimizers.SGD())
    with pytest.raises(ValueError, match=r"must end in `\.keras`"):
        hvd.callbacks.BestModelCheckpoint(filepath="best.txt")


# --- one real 2-rank job ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """Run the scenarios on 2 ranks; their results and what Horovod's timeline recorded."""
    out = tmp_path_factory.mktemp("horovod_keras")
    horovodrun([sys.executable, str(SCENARIOS), str(out)], 2, timeout=JOB_TIMEOUT_S, cwd=ROOT,
               env={"HOROVOD_TIMELINE": "DYNAMIC"})
    results = json.loads((out / "results.json").read_text())
    results["timeline"] = _reductions(json.loads((out / "timeline.json").read_text()))
    results["out"] = out
    return results


_BYTES = {"float16": 2, "float32": 4, "float64": 8, "int32": 4, "int64": 8}


def _reductions(events):
    """Per DistributedOptimizer name: every tensor its reductions sent, from Horovod's timeline.

    The timeline names each tensor (its op name, under the optimizer's `<name>_Allreduce` scope),
    and for each time it was sent records the activity (ALLREDUCE, ALLGATHER) and, at the end,
    its dtype and shape.
    """
    names = {e["pid"]: e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "process_name" and "name" in e["args"]}
    tensors = defaultdict(dict)
    for e in events:
        if e.get("pid") not in names:
            continue
        scopes = names[e["pid"]].split("/")
        owner = next((s[:-len("_Allreduce")] for s in scopes if s.endswith("_Allreduce")), None)
        if owner is None:
            continue
        tensor = tensors[owner].setdefault(e["pid"], {"op": scopes[-1], "times": 0, "kinds": set(),
                                                      "dtype": None, "shape": None})
        if e.get("ph") == "B" and e["name"] in ("ALLREDUCE", "ALLGATHER"):
            tensor["times"] += 1
            tensor["kinds"].add(e["name"])
        if e.get("ph") == "E" and "dtype" in e.get("args", {}):
            tensor["dtype"] = e["args"]["dtype"]
            tensor["shape"] = json.loads(e["args"]["shape"])
    for per_tensor in tensors.values():
        for tensor in per_tensor.values():
            tensor["bytes"] = math.prod(tensor["shape"]) * _BYTES[tensor["dtype"]]
    return {owner: list(per_tensor.values()) for owner, per_tensor in tensors.items()}


def _case(job, name):
    """The per-rank results of one hand-made-gradient case: the variables after each step."""
    return [ranks[name] for ranks in job["arguments"]]


def _moved_by(job, name, step=-1):
    """How far each rank's variables moved, one number per variable (they move uniformly)."""
    return [[float(np.unique(np.asarray(v))[0]) for v in rank["after_each_step"][step]]
            for rank in _case(job, name)]


def test_the_job_runs_two_ranks_on_gloo_and_reports_horovods_capabilities(job):
    assert job["job"]["size"] == 2 and job["job"]["ranks"] == [0, 1]
    assert job["job"]["local_ranks"] == [0, 1] and job["job"]["local_size"] == 2
    assert job["job"]["cross_size"] == 1 and job["job"]["cross_ranks"] == [0, 0]
    assert job["job"]["is_initialized"] and job["job"]["gloo_enabled"]
    assert job["job"]["gloo_built"] and not job["job"]["mpi_enabled"]


def test_collectives_take_keras_variables_tensors_and_arrays(job):
    for rank, c in enumerate(job["collectives"]):
        assert c["allreduce_variable"] == [1.5, 1.5]  # mean of 1 and 2
        assert c["allreduce_sum"] == c["allreduce_average_false"] == [3.0, 3.0]
        assert c["allreduce_scaled"] == [1.5, 1.5]  # (2·1 + 2·2) · 0.25
        assert c["allreduce_fp16"] == [1.5, 1.5] and c["allreduce_numpy"] == [0.5] * 3
        assert c["allgather"] == [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]  # 1 row, then 2 rows
        assert c["broadcast"] == [1, 1, 1] and c["reducescatter"] == [1.5, 1.5]
        assert c["mine_unchanged"] == [rank + 1.0] * 2  # a reduction never writes its input


# Each case: SGD with learning rate 1 on three variables; rank r's gradient is r + 1 everywhere.
@pytest.mark.parametrize(("case", "moved"), [
    ("arg_average", [[-1.5] * 3, [-1.5] * 3]),  # the mean of 1 and 2
    ("arg_sum", [[-3.0] * 3, [-3.0] * 3]),
    ("arg_predivide", [[-1.5] * 3, [-1.5] * 3]),  # same mean, split around the sum
    ("arg_fp16", [[-1.5] * 3, [-1.5] * 3]),
    ("arg_process_set", [[-1.0] * 3, [-2.0] * 3]),  # each rank alone in its process set
    ("arg_local_scaled", [[-1.5, -1.5, -0.5], [-1.5, -1.5, -1.0]]),  # last: local, / size
    ("arg_local_unscaled", [[-1.5, -1.5, -1.0], [-1.5, -1.5, -2.0]]),  # last: local, as is
    ("arg_groups_int", [[-1.5] * 3, [-1.5] * 3]),
    ("arg_groups_lists", [[-1.5] * 3, [-1.5] * 3]),
    ("arg_num_groups", [[-1.5] * 3, [-1.5] * 3]),
    ("arg_device_dense", [[-1.5] * 3, [-1.5] * 3]),
])
def test_each_argument_gives_horovods_update(job, case, moved):
    assert _moved_by(job, case) == moved


def test_name_prefixes_every_reduction_of_the_optimizer(job):
    timeline = job["timeline"]
    assert len(timeline["arg_average"]) == 3  # one allreduce per gradient, under its name
    assert all(t["op"].startswith("HorovodAllreduce_") for t in timeline["arg_average"])
    assert {"DistributedSGD", "DistributedAdam"} <= set(timeline)  # the default names


def test_fp16_compression_sends_half_the_bytes_and_training_still_converges(job):
    timeline = job["timeline"]
    plain, half = timeline["fit_compression_none"], timeline["fit_compression_fp16"]
    assert {t["dtype"] for t in plain} == {"float32"} and {t["dtype"] for t in half} == {"float16"}
    assert sum(t["bytes"] * t["times"] for t in half) * 2 == sum(
        t["bytes"] * t["times"] for t in plain)  # the same steps, half the bytes
    assert {t["dtype"] for t in timeline["arg_fp16"]} == {"float16"}
    none, fp16 = job["compression"]["none"], job["compression"]["fp16"]
    assert fp16["accuracy"][-1] == none["accuracy"][-1] == 1.0
    assert fp16["loss"][-1] < 0.01 and np.allclose(fp16["loss"], none["loss"], rtol=0.01)
    assert 0 < job["compression"]["max_weight_diff"] < 1e-2  # close, not bit-identical
    assert len(set(fp16["digests"])) == 1  # and still the same weights on every rank


def test_gradient_predivide_factor_keeps_a_float16_sum_in_range(job):
    # 40000 on both ranks: the float16 sum 80000 overflows (max 65504); 20000 + 20000 does not.
    assert _moved_by(job, "arg_fp16_huge")[0] == [-math.inf] * 3
    assert _moved_by(job, "arg_fp16_huge_predivide") == [[-40000.0] * 3] * 2


def test_sparse_gradients_are_allgathered_unless_sparse_as_dense(job):
    expected = [[-0.5, -0.5], [-1.0, -1.0], [0.0, 0.0], [0.0, 0.0]]  # rows 0 and 1 averaged
    for case in ("arg_sparse", "arg_sparse_as_dense", "arg_device_sparse"):
        assert all(rank["after_each_step"][0] == [expected] for rank in _case(job, case))
    accumulated = _case(job, "arg_bpps_sparse_as_dense")  # 2 passes, averaged: the same step
    assert all(rank["after_each_step"] == [[[[0.0, 0.0]] * 4], [expected]] for rank in accumulated)
    timeline = job["timeline"]
    assert {k for t in timeline["arg_sparse"] for k in t["kinds"]} == {"ALLGATHER"}
    assert {k for t in timeline["arg_sparse_as_dense"] for k in t["kinds"]} == {"ALLREDUCE"}
    assert [t["shape"] for t in timeline["arg_sparse_as_dense"]] == [[4, 2]]
    # the same from model.fit, with a real Embedding layer
    assert {k for t in timeline["fit_embedding_sparse"] for k in t["kinds"]} == {
        "ALLGATHER", "ALLREDUCE"}
    assert {k for t in timeline["fit_embedding_dense"] for k in t["kinds"]} == {"ALLREDUCE"}
    assert job["embedding"]["sparse"] < 1e-6 and job["embedding"]["dense"] < 1e-6


def test_groups_decide_which_gradients_travel_together(job):
    def grouping(case):
        return sorted(re.search(r"_(\d+of\d+)$", t["op"]).group(1) if "Grouped" in t["op"]
                      else "alone" for t in job["timeline"][case])

    assert grouping("arg_average") == ["alone"] * 3
    assert grouping("arg_groups_int") == ["1of1", "1of2", "2of2"]  # 3 gradients in 2 groups
    assert grouping("arg_num_groups") == grouping("arg_groups_int")
    lists = {tuple(t["shape"]): t["op"][-4:] for t in job["timeline"]["arg_groups_lists"]}
    assert lists == {(3,): "1of2", (4,): "2of2", (2, 2): "1of1"}  # [[v0, v2]], v1 alone


def test_local_variables_and_process_sets_keep_their_gradients_off_the_wire(job):
    timeline = job["timeline"]
    assert sorted(t["shape"] for t in timeline["arg_local_scaled"]) == [[2, 2], [3]]
    assert "arg_process_set" not in timeline  # a set of one rank reduces nothing


def test_backward_passes_per_step_accumulates_before_one_allreduce(job):
    average = [_moved_by(job, "arg_bpps_average", step) for step in range(4)]
    assert [a[0][0] for a in average] == [0.0, -1.5, -1.5, -3.0]  # (1+1 + 2+2) / 2 / 2 per
    summed = [_moved_by(job, "arg_bpps_sum", step) for step in range(4)]
    assert [s[0][0] for s in summed] == [0.0, -3.0, -3.0, -6.0]  # update; 2 passes summed
    assert all(rank["iterations"] == 4 for rank in _case(job, "arg_bpps_average"))
    assert {t["times"] for t in job["timeline"]["arg_bpps_average"]} == {2}  # 4 passes, 2 sends
    assert "IndexedSlices are not supported when `backward_passes_per_step` > 1" in (
        job["arguments"][0]["bpps_sparse_error"])
    assert job["arguments"][0]["num_groups_warnings"] == [
        "Parameter `num_groups` has been replaced by `groups` and will be removed in v0.23.0."]


def test_backward_passes_per_step_2_equals_one_step_on_the_doubled_local_batch(job):
    for average in (True, False):  # False sums the passes: one step with twice the rate
        run = job["accumulation"][f"average_{average}"]
        assert run["max_change_after_first_pass"] == 0.0  # the first pass only accumulates
        assert run["max_diff_vs_doubled_batch"] < 1e-5
        assert run["iterations"] == 2
    assert {t["times"] for t in job["timeline"]["fit_bpps_True"]} == {1}


def test_one_data_parallel_step_equals_one_single_process_step_with_twice_the_batch(job):
    step = job["fit_step"]
    assert step["optimizer_class"] == "SGD"
    assert step["max_diff_vs_big_batch"] < 1e-5
    assert step["max_change"] > 1e-3  # the step really moved the weights...
    assert step["max_diff_vs_own_batch_only"] > 1e-3  # ...and used the other rank's batch


def test_ranks_that_start_apart_end_with_bit_identical_weights_and_optimizer_state(job):
    run = job["fit_identical"]
    assert len(set(run["initial_digests"])) == 2  # different starting weights
    assert len(set(run["final_digests"])) == 1 and len(set(run["optimizer_digests"])) == 1
    assert len(set(job["fit_lazy_digests"])) == 1  # built by its first batch: broadcast after


def test_metric_average_gives_every_rank_the_mean_of_the_ranks_logs(job):
    run = job["fit_identical"]
    first, second = run["histories"]
    assert first == second and len(first["loss"]) == 3
    assert np.allclose(first["loss"], np.mean(run["raw_losses"], axis=0))
    assert len({tuple(losses) for losses in run["raw_losses"]}) == 2  # they did differ
    assert np.isclose(run["final_lr"], 0.02)  # warm-up done: the scaled rate, 0.01 × 2


def test_local_variables_are_left_out_of_the_broadcast(job):
    run = job["fit_local_variables"]
    assert run["tags"] == [[0.0, 0.0], [1.0, 1.0]] and len(set(run["dense"])) == 1


def _horovod_rates(schedule, epochs, steps):
    """The learning rate of every batch under Horovod's rule (None: leave it as it is)."""
    rates, current = [], 0.2  # the optimizer's own rate until the callback sets one
    for epoch in range(epochs):
        for batch in range(steps):
            new = schedule(epoch, batch)
            current = current if new is None else new
            rates.append(current)
    return rates


def test_warmup_and_schedule_callbacks_set_horovods_learning_rate_batch_by_batch(job):
    s = job["schedules"]
    steps, warmup, lr, n = s["steps"], s["warmup"], s["initial_lr"], 2

    def warmup_rule(epoch, batch):  # Horovod 0.28.1: lr/size · (e·(size-1)/warmup + 1)
        e = epoch + (batch + 1) / steps
        return lr / n * (e * (n - 1) / warmup + 1) if epoch < warmup else None

    def staircase_rule(epoch, batch):  # multiplier 0.5, start_epoch 1, end_epoch 3
        return lr * 0.5 ** (epoch - 1) if 1 <= epoch < 3 and batch == 0 else None

    def smooth_rule(epoch, batch):  # multiplier(e) = 1 / (1 + e), staircase=False, end_epoch 2
        return lr / (1 + epoch + batch / steps) if epoch < 2 else None

    for name, rule, epochs in (("warmup_sgd", warmup_rule, 3), ("warmup_nesterov", warmup_rule, 3),
                               ("warmup_rmsprop", warmup_rule, 3),
                               ("schedule_staircase", staircase_rule, 4),
                               ("schedule_smooth", smooth_rule, 3)):
        expected = _horovod_rates(rule, epochs, steps)
        assert np.allclose(s[name]["rates"], expected, rtol=1e-6), name
        assert np.allclose(s[name]["logged"], expected[steps - 1::steps], rtol=1e-6), name
    assert s["warmup_sgd"]["rates"][0] == pytest.approx(lr / n * (1 + 1 / (steps * warmup)))
    assert s["warmup_sgd"]["rates"][steps * warmup - 1] == pytest.approx(lr)  # reached at the
    # last batch of the warm-up, and kept after it


def test_momentum_correction_gives_horovods_update_inside_a_compiled_step(job):
    s = job["schedules"]
    # Compared with Horovod's own procedure (momentum × new/old for one batch) run eagerly:
    for name in ("warmup_sgd", "warmup_nesterov", "schedule_staircase"):
        assert s[name]["max_diff_vs_horovod"] < 1e-5, name
    assert s["warmup_rmsprop"]["max_diff_vs_horovod"] < 1e-4  # divides by sqrt(v): more rounding
    assert s["warmup_sgd"]["max_diff_without_correction"] > 1e-2  # the correction matters


def test_broadcast_global_variables_copies_every_model_and_optimizer_of_rank_0(job):
    run = job["broadcast_global_variables"]
    assert len(set(run["before"])) == 2 and run["after"] == [run["before"][0]] * 2
    assert len(set(run["other_model_after"])) == 1


def test_a_saved_model_loads_plain_in_keras_and_distributed_with_load_model(job):
    run = job["load_model"]
    assert run["plain_optimizer_class"] == "Adam" and not run["plain_is_distributed"]
    assert run["optimizer_class"] == "Adam" and run["state_restored"]
    assert len(set(run["digests_after_training"])) == 1  # it trained distributed...
    assert {t["dtype"] for t in job["timeline"]["DistributedAdam"]} == {"float16"}  # ...in fp16


def test_best_model_checkpoint_keeps_the_best_model_where_it_was_added(job):
    assert job["best_checkpoint"]["saved"] == [True, False]  # added on rank 0 only
    assert (job["out"] / "best-rank0.keras").exists() and job["best_checkpoint"]["best"] > 0


def test_distributed_optimizer_refuses_xla_with_a_clear_message(job):
    assert job["xla_error"] and "compile the model with jit_compile=False" in job["xla_error"]
