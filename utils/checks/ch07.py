"""Self-checks for chapter 07 (data-parallel training with Horovod).

07.1 launches the learner's function on two CPU ranks (`horovodrun -np 2`, through
`utils.distributed.horovodrun`) and checks what the job did, by property: both ranks end with
the same weights, different from where they started, after the right number of steps on
shares of their own (the images each rank's `model.fit` was given) at the scaled learning
rate. The job's result is kept per version of the function (its source), so a second check of
the same function reads it instead of launching the job again. The grader's judge launches
its own job, from the function's source.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import sys
import tempfile
import textwrap
from numbers import Real
from pathlib import Path
from typing import Any

from utils.checks import Hint, NotAnswered, call, exercise, graded_by_the_judge, require
from utils.exercises import UNANSWERED_WORDS

# --------------------------------------------------------------------------------------------
# Exercise 07.1: a two-rank job that ends with identical replicas
# --------------------------------------------------------------------------------------------
JOB = {"np": 2, "train_samples": 2048, "batch_size": 64, "base_lr": 0.02, "epochs": 1}
# The grader's quick check may train on fewer images (its grading tests set it in the
# kernel's ENVIRONMENT): every property `job_problem` reads holds at any size.
TRAIN_SAMPLES_VARIABLE = "DL_COURSE_06_1_TRAIN_SAMPLES"
JOB_TIMEOUT = 200  # seconds; a loaded machine needs a minute or more for two TensorFlow ranks
_JOBS: dict[str, dict[str, Any]] = {}  # source digest -> the job's result


def _source(function: Any) -> str:
    require(callable(function), f"expected a function, got {type(function).__name__}")
    if isinstance(getattr(function, "source", None), str):  # the judge's view of a function
        return function.source
    try:
        return textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        raise Hint("define train_on_every_rank with `def` in a notebook cell: the job sends its "
                   "source code to the ranks") from None


def _script() -> Path:
    from utils.notebook import course_folder

    return course_folder() / "scripts" / "two_rank_exercise.py"


def job_settings() -> dict[str, Any]:
    """JOB, with the number of training images TRAIN_SAMPLES_VARIABLE sets, if it is set."""
    settings = dict(JOB)
    value = os.environ.get(TRAIN_SAMPLES_VARIABLE, "").strip()
    if value:
        settings["train_samples"] = int(value)
        require(settings["train_samples"] >= settings["np"], f"{TRAIN_SAMPLES_VARIABLE} should "
                f"be at least {settings['np']} (one image per rank), got {value}")
    return settings


def two_rank_job(function: Any, *, timeout: float = JOB_TIMEOUT) -> dict[str, Any]:
    """Run `function` on every rank of `horovodrun -np 2` (CPU ranks); rank 0's JSON report.

    The same source is run once per process (and job size): a second call returns the first
    result.
    """
    from utils import distributed

    source = _source(function)
    job = job_settings()
    key = hashlib.sha256((source + json.dumps(job, sort_keys=True)).encode()).hexdigest()
    if key in _JOBS:
        return _JOBS[key]
    folder = Path(tempfile.mkdtemp(prefix="ex06-1-"))
    (folder / "answer.py").write_text(source)
    out = folder / "job.json"
    command = [sys.executable, str(_script()), "--solution", str(folder / "answer.py"),
               "--function", function.__name__, "--out", str(out),
               *[f"--{k.replace('_', '-')}={v}" for k, v in job.items() if k != "np"]]
    for attempt in (1, 2):
        try:
            distributed.horovodrun(command, job["np"], env={"CUDA_VISIBLE_DEVICES": ""},
                                   timeout=timeout)
            break
        except distributed.HorovodJobError as error:
            cause = distributed.first_rank_error(error.output) or str(error).splitlines()[0]
            if attempt == 1 and error.returncode is not None and not distributed.rank_raised(
                    error.output):  # a rank lost to the machine, not to the answer: once more
                print(f"the two-rank job failed ({cause}); running it once more",
                      file=sys.stderr)
                continue
            if error.returncode is None:  # killed at the timeout
                cause += (" (a collective operation that only some ranks call, e.g. under `if "
                          "hvd.rank() == 0`, waits forever for the others)")
            raise Hint(f"the two-rank job failed: {cause}") from None
    _JOBS[key] = json.loads(out.read_text())
    return _JOBS[key]


def expected_steps(job: dict[str, Any]) -> int:
    """Optimizer steps per rank when each rank goes once per epoch through its own shard."""
    per_rank = job["train_samples"] // job["np"]
    return math.ceil(per_rank / job["batch_size"]) * job["epochs"]


def job_problem(job: dict[str, Any]) -> str | None:
    """What is wrong with a finished job, in words that do not give the answer; None if right."""
    if job["error"]:
        return f"on the ranks, your function raised {job['error']}"
    steps, lr = job["steps"][0], job["learning_rates"][0]
    if steps == 0:
        return ("the model took no training step: compile it with an optimizer and call "
                "model.fit inside the function")
    initial, final = job["initial_digests"], job["final_digests"]
    if len(set(final)) > 1:
        if job["same_change"]:
            return ("the ranks applied the very same updates but ended apart, so they started "
                    "apart: every rank builds its own random weights, and nothing made rank "
                    "0's reach the others before the first step")
        return ("the replicas drifted apart: each rank stepped with its own gradients. They must "
                "be averaged over the ranks at every step, before the update")
    if final[0] == initial[0]:
        return "the weights are where rank 0 started: the model did not train"
    whole = math.ceil(job["train_samples"] / job["batch_size"]) * job["epochs"]
    if steps == whole and steps != expected_steps(job):
        return (f"each rank made {steps} steps: every rank went through the WHOLE training set. "
                "Give each rank its own share of the data, so the job does the work once")
    if steps != expected_steps(job):
        return (f"each rank made {steps} steps; with its own share of the data it makes one pass "
                "per epoch over that share (did you change the batch size or the epochs?)")
    problem = shares_problem(job)
    if problem:
        return problem
    if math.isclose(lr, job["base_lr"], rel_tol=1e-4):
        return ("the learning rate is still the one-rank rate, but each step of the job averages "
                "the batches of all ranks: apply the linear scaling rule (section 4)")
    if not math.isclose(lr, job["base_lr"] * job["np"], rel_tol=1e-4):
        return (f"the learning rate after training is {lr:g}: after the warm-up (if any) it "
                "should follow the linear scaling rule for this job")
    return None


def shares_problem(job: dict[str, Any]) -> str | None:
    """What is wrong with the images the ranks trained on (when the job could read them back:
    arrays given to `model.fit`, not a tf.data pipeline); None if each had its own share."""
    shares = job.get("shares")
    if not shares:
        return None
    if shares["overlap"] > 0.05 * min(shares["sizes"]):
        return (f"the ranks trained on {shares['overlap']} of the same images (each on "
                f"{' and '.join(str(s) for s in shares['sizes'])}): every rank needs a share of "
                "its own, different from every other rank's")
    if shares["covered"] < 0.95 * job["train_samples"]:
        return (f"together the ranks trained on {shares['covered']} of the "
                f"{job['train_samples']} images they were given: their shares should cover the "
                "whole training set")
    return None


def job_remark(job: dict[str, Any]) -> str:
    efficiency = job["efficiency"]
    return (f"Both ranks ended with the same weights (sha256 {job['final_digests'][0][:12]}...), "
            "different from where they started. Scaling efficiency of this job: "
            + ("not measured" if efficiency is None else
               f"{efficiency:.0%} (speedup {2 * efficiency:.2f} on 2 ranks, each on one core, "
               "against one rank on one core)."))


@exercise("07.1")
def two_ranks_identical_replicas(train_on_every_rank):
    if graded_by_the_judge():  # its judge launches the job that counts: one job, not two
        _source(train_on_every_rank)  # a function defined with `def`, still
        return "the grader launches this job itself."
    return judge_two_ranks(train_on_every_rank)


def judge_two_ranks(train_on_every_rank):
    """The verdict on exercise 07.1: the two-rank job run, then read by `job_problem`; a remark,
    or Hint. The self-check and the grader's judge both decide with it."""
    source = _source(train_on_every_rank)
    if UNANSWERED_WORDS.search(source):  # the placeholder is still there: launch nothing
        raise NotAnswered()
    from utils import distributed

    require(distributed.horovod_installed(), "this exercise launches two Horovod ranks, and "
            "Horovod is not installed here (Colab has none): use the course environment "
            "(`make setup`), or build it with the optional cell at the top")
    job = two_rank_job(train_on_every_rank)
    problem = job_problem(job)
    if problem:
        raise Hint(problem)
    return job_remark(job)


# --------------------------------------------------------------------------------------------
# Exercise 07.2: where the latency term of a ring allreduce stops dominating
# --------------------------------------------------------------------------------------------
def latency_seconds(n_workers: int, latency: float) -> float:
    """The latency term of the ring's alpha-beta model: one message per step, 2(N-1) steps."""
    return 2 * (n_workers - 1) * latency


def bandwidth_seconds(n_bytes: float, n_workers: int, bandwidth: float) -> float:
    """The bandwidth term: 2(N-1)/N of the buffer leaves each worker, at `bandwidth` bytes/s."""
    return 2 * (n_workers - 1) / n_workers * n_bytes / bandwidth


CROSSOVER_CASES = [(2, 2e-6, 450e9), (8, 5e-6, 50e9), (64, 3e-6, 25e9), (3, 1e-4, 1.25e8)]


@exercise("07.2")
def latency_bandwidth_crossover(crossover_bytes):
    for n, alpha, beta in CROSSOVER_CASES:
        got = call(crossover_bytes, n, alpha, beta)
        require(isinstance(got, Real) and not isinstance(got, bool),
                f"return a number of bytes, got {type(got).__name__}")
        got = float(got)
        require(got > 0, f"crossover_bytes({n}, {alpha:g}, {beta:g}) = {got:g}: a size in bytes "
                "is positive")
        latency, bandwidth = latency_seconds(n, alpha), bandwidth_seconds(got, n, beta)
        if math.isclose(latency, bandwidth, rel_tol=1e-6):
            continue
        where = (f"for {n} workers, latency {alpha * 1e6:g} us and {beta / 1e9:g} GB/s your size "
                 f"gives a latency term of {latency * 1e6:.3g} us and a bandwidth term of "
                 f"{bandwidth * 1e6:.3g} us")
        require(not math.isclose(got, alpha * beta, rel_tol=1e-6),
                f"{where}: latency x bandwidth is the size of ONE message in flight, but the "
                "ring sends 2(N-1) messages of a chunk each, and a chunk is 1/N of the buffer")
        require(not math.isclose(got, 2 * (n - 1) * alpha * beta, rel_tol=1e-6),
                f"{where}: that size would match the latency part if ALL of it crossed one "
                "link; each worker sends only 2(N-1)/N of the buffer")
        require(not math.isclose(got * 8, alpha * beta * n, rel_tol=1e-6),
                f"{where}: the bandwidth is given in bytes per second already")
        raise Hint(f"{where}; they should be equal: set the two terms of the model equal and "
                   "solve for the buffer size")


# --------------------------------------------------------------------------------------------
# Exercise 07.3: which lines write output, and which of them belong to rank 0
# --------------------------------------------------------------------------------------------
# (the lines that write output on every rank as the listing stands, those of them to run on
# rank 0 only), stored as hashes so that reading this file does not give them away.
WRITING_LINES_SHA256 = "e625da1604143d3d32f692b53798c321ccb88455b52f6a32be11c3b851cf1895"
RANK0_LINES_SHA256 = "f45c056fcd2d42df5b2ce2d3c76ad3c30d69fdaaabb820af2662ac1b7ae77779"
LISTING_LINES = 11
FIT_LINES = {5, 6, 7}  # one statement: model.fit(..., verbose=2, callbacks=[...])
SILENT_LINES = {1: "hvd.init() starts Horovod and prints nothing",
                2: "sharding picks this rank's slice of the arrays in memory",
                3: "building a model writes nothing",
                4: "compiling writes nothing",
                6: "lines 6 and 7 are part of the statement that starts on line 5: count it once, "
                   "by its first line",
                7: "lines 6 and 7 are part of the statement that starts on line 5: count it once, "
                   "by its first line",
                11: "evaluate(..., verbose=0) returns its result and prints nothing"}


def _lines_digest(lines) -> str:
    return hashlib.sha256(",".join(str(n) for n in sorted(lines)).encode()).hexdigest()


def _line_set(value, what):
    require(isinstance(value, set | frozenset | list | tuple),
            f"{what}: give the line numbers as a set, e.g. {{2, 3}}")
    lines = set(value)
    require(all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= LISTING_LINES
                for n in lines), f"{what}: line numbers are ints from 1 to {LISTING_LINES}")
    return lines


@exercise("07.3")
def rank0_only_lines(answer):
    require(isinstance(answer, tuple | list) and len(answer) == 2,
            "pass a pair of sets: (writes_on_every_rank, rank0_only)")
    writes = _line_set(answer[0], "writes_on_every_rank")
    rank0 = _line_set(answer[1], "rank0_only")
    for number in sorted(writes):
        if number in SILENT_LINES:
            raise Hint(f"writes_on_every_rank: line {number}? {SILENT_LINES[number]}")
    require(_lines_digest(writes) == WRITING_LINES_SHA256,
            "writes_on_every_rank: not all of them yet: look for every line that prints or "
            "writes a file, including through an argument")
    require(rank0 <= writes, "rank0_only: pick them among the lines that write output")
    require(not rank0 & FIT_LINES,
            "rank0_only: line 5 writes on every rank, but it cannot run on rank 0 alone: fit's "
            "callbacks and the optimizer's gradient averaging are collective operations that "
            "every rank must join, or rank 0 waits forever. Keep it on every rank and let its "
            "verbosity depend on the rank instead")
    require(_lines_digest(rank0) == RANK0_LINES_SHA256,
            "rank0_only: not all of them yet: which of the writing lines would leave 8 copies "
            "of the same output, or 8 ranks writing the same file at once?")
