"""Grading tests for chapter 06 (data-parallel training with Horovod), run by `make grade`.

Each test runs in the submission's kernel after all of its cells and receives `answers`, the
notebook's variables by name. A failed `assert` scores 0 and its message is the feedback: it
names the mistake (the ones learners make) without giving the answer away. 06.3 is checked
against hashes, as its self-check is.
"""

import math

from utils.grading import graded

# The chapter's own jobs (throughput studies, Horovod and MirroredStrategy runs) are skipped:
# the exercises launch none, and each launch costs seconds of start-up per rank.
PARAMETERS = {"RUN_JOBS": False}
CELL_TIMEOUT = 60  # seconds; generous, so that a loaded machine changes no status
NOTEBOOK_TIMEOUT = 300
TEST_TIMEOUT = 5


@graded("06.1", points=2)
def effective_batch_and_scaled_learning_rate(answers):
    batch, rate = answers["effective_batch"], answers["scaled_lr"]
    assert batch != 32, "32 is the batch of one GPU; one step uses the batches of all the GPUs"
    assert batch != 4 * 32, "that counts the GPUs of one node; every GPU of every node has a rank"
    assert batch == 16 * 32, "the effective batch is (ranks) x (batch per rank)"
    assert not math.isclose(rate, 0.01), "the linear scaling rule changes the learning rate"
    assert math.isclose(rate, 0.16, rel_tol=1e-6), (
        "the rate grows by the same factor as the batch")


@graded("06.2", points=2)
def ring_allreduce_sends_twice_n_minus_one_chunks(answers):
    ring_allreduce_bytes = answers["ring_allreduce_bytes"]
    for n_params, workers, width in [(1_000_000, 4, 4), (3_000, 3, 2), (50_000, 64, 4),
                                     (7, 1, 4)]:
        got = float(ring_allreduce_bytes(n_params, workers, width))
        size = n_params * width
        if workers == 1:
            assert got == 0, "a single worker sends nothing"
            continue
        where = f"ring_allreduce_bytes({n_params:,}, {workers}, {width}) = {got:,.0f}"
        assert not math.isclose(got, (workers - 1) / workers * size), (
            f"{where}: that is only the reduce-scatter phase")
        assert not math.isclose(got, (workers - 1) * size), (
            f"{where}: that is sending the whole buffer to every other worker")
        assert math.isclose(got, 2 * (workers - 1) / workers * size, rel_tol=1e-6), (
            f"{where} is not what a ring sends per worker")
    assert float(ring_allreduce_bytes(1000, 2)) == 4000, "bytes_per_param defaults to 4 (float32)"


@graded("06.3", points=2)
def rank_zero_lines_and_collectives(answers):
    from utils.checks import ch06

    writes, rank0 = (set(part) for part in (answers["writes_on_every_rank"],
                                            answers["rank0_only"]))
    assert ch06._lines_digest(writes) == ch06.WRITING_LINES_SHA256, (
        "writes_on_every_rank is not the set of lines that print or write a file on every rank "
        "(an argument can make a line print)")
    assert not rank0 & ch06.FIT_LINES, (
        "rank0_only holds the fit statement, whose callbacks are collective operations: on rank "
        "0 alone it would wait forever for the other ranks")
    assert ch06._lines_digest(rank0) == ch06.RANK0_LINES_SHA256, (
        "rank0_only is not the set of writing lines that should run on rank 0 only")
