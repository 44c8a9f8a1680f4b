"""Grading tests for chapter 07 (data-parallel training with Horovod), run by `make grade`.

Each test runs in the judge, a process of its own, after all of the submission's cells, and
receives `answers`, the notebook's variables by name, carried over as data
(`utils.grading.judge`). A failed `assert` scores 0 and its message is the feedback: it
names the mistake (the ones learners make) without giving the answer away.

07.1 is a real two-rank job (`horovodrun -np 2`, CPU ranks, no GPU), launched by the judge
with the source of the submission's function (the self-check in the exercise cell launches none
under the grader: one job per submission, and no report the kernel could write counts). The result
is checked by property: equal weight digests on both ranks, different from the initial ones,
the step count of a sharded epoch, the images each rank's `model.fit` was given (shares of
their own, covering the set), the scaled learning rate. The scaling efficiency is reported,
never graded (it depends on the machine's load). 07.3 is checked against hashes, as its
self-check is.
"""

import math

from utils.grading import graded

# The chapter's own jobs (throughput studies, Horovod and MirroredStrategy runs) are skipped;
# the one job left is exercise 07.1's, on 512 images instead of the learner's 2,048 (one epoch:
# 4 steps per rank, 8 for a rank that goes through the whole set; the properties it is graded
# by hold at any size). Each of its ranks starts TensorFlow: the images are the part that can go.
PARAMETERS = {"RUN_JOBS": False}
ENVIRONMENT = {"DL_COURSE_06_1_TRAIN_SAMPLES": "512"}  # utils.checks.ch07.TRAIN_SAMPLES_VARIABLE
CELL_TIMEOUT = 240  # seconds: 07.1's cell starts two TensorFlow ranks; generous for a loaded box
NOTEBOOK_TIMEOUT = 600
TEST_TIMEOUT = 240  # 07.1 launches its job only if the exercise cell did not (e.g. no check)


@graded("07.1", points=4)
def two_ranks_end_with_identical_trained_weights(answers):
    from utils.checks import ch07

    ch07.judge_two_ranks(answers["train_on_every_rank"])  # the self-check's verdict


def _terms(size, n, alpha, beta):
    return 2 * (n - 1) * alpha, 2 * (n - 1) / n * size / beta


@graded("07.2", points=2)
def crossover_makes_latency_and_bandwidth_parts_equal(answers):
    crossover_bytes = answers["crossover_bytes"]
    for n, alpha, beta in [(4, 1e-6, 100e9), (16, 8e-6, 12.5e9), (128, 2e-6, 50e9),
                           (2, 5e-5, 1e9)]:
        got = float(crossover_bytes(n, alpha, beta))
        latency, bandwidth = _terms(got, n, alpha, beta)
        if math.isclose(latency, bandwidth, rel_tol=1e-6):
            continue
        where = f"crossover_bytes({n}, {alpha:g}, {beta:g}) = {got:,.0f}"
        assert not math.isclose(got, alpha * beta, rel_tol=1e-6), (
            f"{where}: latency x bandwidth is one message's worth; the ring sends 2(N-1) "
            "messages of 1/N of the buffer each")
        assert not math.isclose(got, 2 * (n - 1) * alpha * beta, rel_tol=1e-6), (
            f"{where}: that is the size that would take as long as the latency part if ALL of "
            "it crossed one link; each worker sends only 2(N-1)/N of it")
        assert not math.isclose(got, n * alpha * beta / 8, rel_tol=1e-6), (
            f"{where}: the bandwidth is in bytes per second already, not bits")
        raise AssertionError(f"{where}: there the latency part is {latency * 1e6:.3g} us and the "
                             f"bandwidth part {bandwidth * 1e6:.3g} us; they should be equal")


@graded("07.3", points=2)
def rank_zero_lines_and_collectives(answers):
    from utils.checks import ch07

    writes, rank0 = (set(part) for part in (answers["writes_on_every_rank"],
                                            answers["rank0_only"]))
    assert ch07._lines_digest(writes) == ch07.WRITING_LINES_SHA256, (
        "writes_on_every_rank is not the set of lines that print or write a file on every rank "
        "(an argument can make a line print)")
    assert not rank0 & ch07.FIT_LINES, (
        "rank0_only holds the fit statement, whose callbacks are collective operations: on rank "
        "0 alone it would wait forever for the other ranks")
    assert ch07._lines_digest(rank0) == ch07.RANK0_LINES_SHA256, (
        "rank0_only is not the set of writing lines that should run on rank 0 only")
