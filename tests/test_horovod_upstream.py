"""Horovod's own Keras tests on utils.horovod_keras, and an elastic job that loses a rank.

tests/hvd_upstream/ holds Horovod v0.28.1's `test/parallel/test_tensorflow2_keras.py` and
`test_tensorflow2_keras_process_sets.py`, with the import switched to the drop-in and only their
Keras 2 spellings respelled (each changed line says why). They run as Horovod's CI runs them: one
`horovodrun -np 2 --gloo python -m pytest FILE` per file (the second initialises Horovod with
process sets of its own), and every rank must report every test passed, except
`test_legacy_optimizer` (Keras 3 has no keras.optimizers.legacy; tests/hvd_upstream/conftest.py
skips it). `test_session` is TensorFlow's TestCase helper, which pytest reports as skipped.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from utils import distributed
from utils.distributed import horovodrun

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = Path(__file__).resolve().parent / "hvd_upstream"
JOB_TIMEOUT_S = 300  # generous: a loaded 2-core runner starts TensorFlow slowly

HOROVOD_READY = (distributed.horovod_installed()
                 and (Path(sys.executable).parent / "horovodrun").exists())
pytestmark = pytest.mark.skipif(
    not HOROVOD_READY, reason="Horovod is not installed in this Python (make setup builds it)")

UPSTREAM_TESTS = {
    "test_tensorflow2_keras.py": [  # 13 tests, 12 of them run
        "test_train_model_lr_schedule", "test_sparse_as_dense",
        "test_sparse_as_dense_with_grad_aggregation", "test_grad_aggregation_with_inf_grad",
        "test_from_config", "test_elastic_state", "test_gradient_aggregation_0",
        "test_gradient_aggregation_1", "test_gradient_aggregation_with_local_vars_0",
        "test_gradient_aggregation_with_local_vars_1", "test_partial_distributed_optimizer",
        "test_broadcast_global_variables_callback_with_local_vars"],
    "test_tensorflow2_keras_process_sets.py": ["test_process_set_optimizer"],
}
EXEMPT = {"test_tensorflow2_keras.py": {"test_legacy_optimizer"}}
NOT_A_TEST = {"test_session"}  # tf.test.TestCase's helper; pytest collects it and skips it
OUTCOME = re.compile(r"::(\w+) (PASSED|FAILED|SKIPPED|ERROR)\b")


def _outcomes(output: str, rank: int) -> dict[str, set[str]]:
    outcomes: dict[str, set[str]] = {}
    for line in distributed.rank_lines(output, rank):
        match = OUTCOME.search(line)
        if match:
            outcomes.setdefault(match.group(2), set()).add(match.group(1))
    return outcomes


@pytest.mark.parametrize("name", sorted(UPSTREAM_TESTS))
def test_horovods_own_keras_tests_pass_on_the_drop_in_on_two_gloo_ranks(name):
    if importlib.util.find_spec("parameterized") is None:
        pytest.fail("Horovod's tests need the `parameterized` package (requirements.txt)")
    job = horovodrun([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider",
                      "-W", "ignore::DeprecationWarning", str(UPSTREAM / name)], 2,
                     timeout=JOB_TIMEOUT_S, cwd=ROOT, check=False)
    for rank in (0, 1):
        outcomes = _outcomes(job.stdout, rank)
        assert outcomes.get("PASSED", set()) == set(UPSTREAM_TESTS[name]), (
            rank, outcomes, distributed.first_rank_error(job.stdout))
        assert outcomes.get("SKIPPED", set()) == EXEMPT.get(name, set()) | NOT_A_TEST
        assert not outcomes.get("FAILED") and not outcomes.get("ERROR")
    assert job.returncode == 0


def test_an_elastic_job_that_loses_a_rank_mid_epoch_goes_on_from_the_last_commit(tmp_path):
    """Real elastic Horovod (`--min-np 1`) on two local "hosts"; rank 1 is SIGKILLed at the start
    of batch 3 of epoch 1 (tests/hvd_upstream/elastic_keras.py), rank 0 goes on alone."""
    job = horovodrun([sys.executable, str(UPSTREAM / "elastic_keras.py"), str(tmp_path)], 2,
                     hosts="localhost:1,127.0.0.1:1", extra_args=["--min-np", "1"],
                     timeout=JOB_TIMEOUT_S, cwd=ROOT)
    assert "exit with status code 137" in job.stdout  # the worker really was killed (SIGKILL)
    log = json.loads((tmp_path / "elastic.json").read_text())
    (reset,) = log["resets"]
    last_commit = [c for c in log["commits"] if c["size"] == 2][-1]
    assert (last_commit["epoch"], last_commit["batch"]) == (1, 1)  # commits every 2 batches
    lost = reset["last_batch_before"]  # where the survivor was when its allreduce failed
    assert (lost["epoch"], lost["batch"]) == (1, 2)
    # Restored: the model, the optimizer's state and the counters of the last commit, not
    # the batch done since; then the job went on with one rank.
    assert reset["digest"] == last_commit["digest"] != lost["digest"]
    assert (reset["epoch"], reset["batch"], reset["size"]) == (1, 1, 1)
    assert [(e["epochs_done"], e["size"]) for e in log["epochs"]] == [(1, 2), (2, 1), (3, 1),
                                                                      (4, 1)]
    assert log["final"]["epoch"] == 4 and log["final"]["size"] == 1
    assert log["epochs"][-1]["loss"] < log["epochs"][0]["loss"] / 10  # and it still learns
