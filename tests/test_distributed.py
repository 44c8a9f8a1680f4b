"""utils.distributed: the course's helpers (cores, threads, shards) and its horovodrun launcher.

Horovod's own API lives in utils.horovod_keras (tests/test_horovod_keras.py). The launcher
tests start real Horovod jobs on the CPU (Gloo); every job runs under a timeout that kills its
ranks, so a hang fails the test instead of stalling CI.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from utils import distributed
from utils.distributed import HorovodJobError, horovodrun

ROOT = Path(__file__).resolve().parent.parent
HVD_SCRIPTS = Path(__file__).resolve().parent / "hvd_scripts"
TRAINING_SCRIPT = ROOT / "notebooks" / "scripts" / "train_mnist_hvd.py"
JOB_TIMEOUT_S = 240  # generous: a loaded 2-core runner starts TensorFlow slowly
FAILURE_BOUND_S = 150  # a failing job must end by itself well within the timeout

HOROVOD_READY = (distributed.horovod_installed()
                 and (Path(sys.executable).parent / "horovodrun").exists())
needs_horovod = pytest.mark.skipif(
    not HOROVOD_READY, reason="Horovod is not installed in this Python (make setup builds it)",
)


# --- helpers that need neither Horovod nor TensorFlow ------------------------------------------
@pytest.mark.parametrize(("ranks", "cores", "threads"), [(1, 2, 2), (2, 2, 1), (4, 16, 4),
                                                          (3, 8, 2), (8, 2, 1)])
def test_threads_per_rank_splits_the_cores_of_a_node_between_its_ranks(ranks, cores, threads):
    assert distributed.threads_per_rank(ranks, cores) == threads


def test_threads_per_rank_defaults_to_every_usable_core_for_a_single_process():
    assert distributed.threads_per_rank() == distributed.usable_cores() >= 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_threads_per_rank_rejects_a_rank_count_that_is_not_a_positive_int(bad):
    with pytest.raises(ValueError, match="ranks_per_node must be a positive int"):
        distributed.threads_per_rank(bad, 4)


@pytest.mark.parametrize(("n", "size"), [(10, 1), (10, 2), (11, 3), (64, 4), (7, 7)])
def test_shard_gives_every_rank_an_equal_share_and_no_example_twice(n, size):
    x, y = np.arange(n) * 10, np.arange(n)
    shards = [distributed.shard(x, y, rank=r, size=size) for r in range(size)]
    assert {len(xs) for xs, _ in shards} == {n // size}
    taken = np.concatenate([ys for _, ys in shards])
    assert len(set(taken.tolist())) == len(taken) == (n // size) * size
    assert all(np.array_equal(xs, ys * 10) for xs, ys in shards)  # x and y stay paired


def test_shard_makes_the_ranks_batches_together_one_big_batch():
    x = np.arange(48)
    size, b = 3, 4
    shards = [distributed.shard(x, rank=r, size=size) for r in range(size)]
    for i in range(len(shards[0]) // b):
        together = np.sort(np.concatenate([s[i * b:(i + 1) * b] for s in shards]))
        assert np.array_equal(together, x[i * b * size:(i + 1) * b * size])


def test_shard_refuses_more_ranks_than_examples():
    with pytest.raises(ValueError, match="cannot shard 1 examples over 2 ranks"):
        distributed.shard(np.zeros(1), rank=0, size=2)


def test_shard_rejects_a_rank_outside_the_job_and_arrays_of_different_lengths():
    with pytest.raises(ValueError, match=r"rank must be an int in \[0, 2\)"):
        distributed.shard(np.zeros(4), rank=2, size=2)
    with pytest.raises(ValueError, match="same length"):
        distributed.shard(np.zeros(4), np.zeros(5), rank=0, size=2)


def test_warmup_climbs_linearly_from_the_one_rank_rate_to_the_scaled_rate():
    lr = 0.4  # already scaled for 4 ranks
    rates = [distributed.warmup_learning_rate(e, lr, 4, 2) for e in (0, 0.5, 1, 1.5, 2, 3)]
    assert np.allclose(rates, [0.1, 0.175, 0.25, 0.325, 0.4, 0.4])
    assert distributed.warmup_learning_rate(0, lr, 4, 0) == lr  # no warm-up
    assert distributed.warmup_learning_rate(0, lr, 1, 5) == lr  # one rank: nothing to warm up
    with pytest.raises(ValueError, match="initial_lr must be positive"):
        distributed.warmup_learning_rate(0, 0.0, 2, 1)


def test_rank0_print_prints_on_rank_0_only(monkeypatch, capsys):
    monkeypatch.setenv("HOROVOD_RANK", "1")
    distributed.rank0_print("from rank 1")
    monkeypatch.setenv("HOROVOD_RANK", "0")
    distributed.rank0_print("from rank 0")
    assert capsys.readouterr().out == "from rank 0\n"


def test_job_output_helpers_pick_a_ranks_lines_and_the_first_real_error():
    log = "\n".join([
        "[1]<stderr>:I0000 00:00:17 port.cc:153] oneDNN custom operations are on.",
        "[0]<stdout>:Epoch 1/2",
        "[1]<stdout>:rank 1 says hello",
        "[1]<stderr>:RuntimeError: rank 1 failed on purpose",
        "[0]<stderr>:tensorflow.python.framework.errors_impl.UnknownError: Horovod has been "
        "shut down. This was caused by an exception on one of the ranks",
        "RuntimeError: Horovod detected that one or more processes exited with non-zero status",
    ])
    assert distributed.rank_lines(log) == ["Epoch 1/2"]
    assert distributed.rank_lines(log, 1, streams=("stdout", "stderr")) == [
        "rank 1 says hello", "RuntimeError: rank 1 failed on purpose"]
    assert distributed.first_rank_error(log) == "[rank 1] RuntimeError: rank 1 failed on purpose"
    assert distributed.first_rank_error("[0]<stdout>:all good") is None


def test_a_rank_that_dies_in_cpp_is_named_with_its_last_words_or_how_it_ended():
    """No Python error when Gloo or XLA ends a rank: its `what()` line, else horovodrun's word
    on the exit (a shell's 128 + N for signal N) names the cause."""
    gloo = "\n".join([
        "[0]<stdout>:rank 0 waits",
        "[1]<stderr>:terminate called after throwing an instance of 'gloo::IoException'",
        "[1]<stderr>:  what():  [gloo/transport/tcp/pair.cc:598] Connection closed by peer",
        "Process 1 exit with status code 134.",
        "Terminating remaining workers after failure of Process 1.",
    ])
    assert distributed.first_rank_error(gloo) == (
        "[rank 1] what():  [gloo/transport/tcp/pair.cc:598] Connection closed by peer")
    killed = "[0]<stdout>:epoch 1\nProcess 1 exit with status code 137.\n"
    assert distributed.first_rank_error(killed) == "[rank 1] ended with signal SIGKILL"
    assert distributed.first_rank_error("Process 0 exit with status code 3.") == (
        "[rank 0] ended with exit code 3")
    assert distributed.how_it_ended(-33) == "signal 33"


def test_a_failed_script_is_told_by_its_signal_its_fatal_line_and_its_last_lines():
    """What a script that XLA aborts prints: absl's fatal line, then a long stack trace."""
    done = subprocess.run([sys.executable, "-c", "import os, sys\n"
                           "print('F1206 19:34:48.255607 4126 rendezvous.cc:161] Termination "
                           "timeout', file=sys.stderr)\n"
                           "print('\\n'.join(f'    @ frame {i}' for i in range(40)),"
                           " file=sys.stderr)\n"
                           "os.abort()"], capture_output=True, text=True)
    message = distributed.script_failure("late.py", done.returncode, done.stdout + done.stderr)
    lines = message.splitlines()
    assert lines[0] == "late.py failed with signal SIGABRT; its last words:"
    assert lines[1].startswith("F1206") and lines[1].endswith("Termination timeout")
    assert lines[2:] == [f"    @ frame {i}" for i in range(34, 40)]
    assert distributed.how_it_ended(2) == "exit code 2"


def test_the_training_scripts_throughput_is_its_fastest_stretch_between_validation_checks():
    spec = importlib.util.spec_from_file_location("train_mnist_hvd", TRAINING_SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)  # imports neither TensorFlow nor Horovod at the top
    progress = script.Progress(np.zeros(0), np.zeros(0), 4, 100, 10)
    # [training seconds, images, accuracy]: 1,000 images a stretch; the first one traces the
    # graph (4 s), the third was slowed down by other work on the machine (5 s instead of 1).
    progress.curve = [[4.0, 1000, 0.5], [5.0, 2000, 0.6], [10.0, 3000, 0.7], [11.0, 4000, 0.8]]
    assert progress.images_per_second(images_per_epoch=2000) == 1000
    progress.curve, progress.epoch_seconds = [], [9.0, 2.0, 4.0]  # no validation: the epochs
    assert progress.images_per_second(images_per_epoch=2000) == 2000 * 2 / 6


def test_horovodrun_refuses_a_command_given_as_one_string():
    with pytest.raises(ValueError, match="non-empty list of arguments"):
        horovodrun("python train.py", 2)


# --- helpers that need TensorFlow, in this process ---------------------------------------------
def test_horovods_api_is_left_to_the_drop_in():
    for name in ("DistributedOptimizer", "BroadcastGlobalVariablesCallback",
                 "MetricAverageCallback", "LearningRateWarmupCallback", "init", "rank"):
        assert not hasattr(distributed, name)  # import utils.horovod_keras as hvd for those


def test_pin_gpu_does_nothing_on_a_machine_without_gpus():
    tf = pytest.importorskip("tensorflow")
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    assert distributed.pin_gpu(local_rank=3) is None


def test_set_threads_works_before_tensorflow_starts_and_explains_why_it_fails_after():
    code = "\n".join([
        "from utils.distributed import set_threads",
        "import tensorflow as tf",
        "set_threads(1)",
        "assert tf.config.threading.get_intra_op_parallelism_threads() == 1",
        "tf.constant(1.0) + 1.0  # starts the runtime",
        "try:",
        "    set_threads(2)",
        "except RuntimeError as error:",
        "    print(error)",
    ])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "call set_threads() right after hvd.init()" in result.stdout


# --- real Horovod jobs: 2 ranks on the CPU -------------------------------------------------------
@needs_horovod
def test_a_rank_that_raises_fails_the_whole_job_quickly_with_its_error():
    start = time.perf_counter()
    with pytest.raises(HorovodJobError) as failure:
        horovodrun([sys.executable, str(HVD_SCRIPTS / "fail_on_rank.py"), "1"], 2,
                   timeout=JOB_TIMEOUT_S, cwd=ROOT)
    assert time.perf_counter() - start < FAILURE_BOUND_S
    assert failure.value.returncode not in (0, None)  # it ended by itself: not our timeout
    assert "First error: [rank 1] RuntimeError: rank 1 failed on purpose" in str(failure.value)


@needs_horovod
def test_more_ranks_than_training_examples_is_a_clear_error():
    with pytest.raises(HorovodJobError) as failure:
        horovodrun([sys.executable, str(TRAINING_SCRIPT), "--train-samples", "1"], 2,
                   timeout=JOB_TIMEOUT_S, cwd=ROOT)
    assert "2 ranks but only 1 training example(s)" in str(failure.value)


@needs_horovod
def test_a_job_past_its_timeout_is_killed_with_all_its_ranks(tmp_path):
    marker = f"hvd-timeout-test-{uuid.uuid4().hex}"
    started = tmp_path / "started"
    code = (f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); "
            f"time.sleep(600)  # {marker}")
    deadline = time.perf_counter() + 60
    with pytest.raises(HorovodJobError, match="did not finish within 10 s and was killed"):
        horovodrun([sys.executable, "-c", code], 2, timeout=10)  # ranks start in 1-2 s
    while time.perf_counter() < deadline and _processes_with(marker):
        time.sleep(0.5)  # SIGKILL is immediate, reaping may take a moment
    assert not _processes_with(marker)
    if not started.exists():
        pytest.skip("the ranks had not started within 10 s (very busy machine)")


def _processes_with(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
