"""Self-checks for chapter 06 (data-parallel training with Horovod)."""

from __future__ import annotations

import hashlib
import math
from numbers import Real

import numpy as np

from utils.checks import Hint, call, exercise, require

# Exercise 06.1: 4 nodes × 4 GPUs, 32 images per GPU; one GPU trained well with lr 0.01.
NODES, GPUS_PER_NODE, BATCH_PER_GPU, BASE_LR = 4, 4, 32, 0.01

# Exercise 06.3: (the lines that write output on every rank as the listing stands, those of them
# to run on rank 0 only). Stored as hashes so that reading this file does not give them away.
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


@exercise("06.1")
def effective_batch_and_learning_rate(answer):
    require(isinstance(answer, tuple | list) and len(answer) == 2,
            "pass a pair (effective_batch, scaled_lr)")
    batch, lr = answer
    require(isinstance(batch, Real) and isinstance(lr, Real), "both values must be numbers")
    workers = NODES * GPUS_PER_NODE
    require(batch != BATCH_PER_GPU, "that is the batch of ONE GPU; one optimizer step uses the "
            "batches of all GPUs together")
    require(batch != GPUS_PER_NODE * BATCH_PER_GPU, "that counts the GPUs of one node only: "
            "every GPU of every node runs a rank")
    require(batch == workers * BATCH_PER_GPU, "effective batch = (number of ranks) × (batch "
            "per rank), and there is one rank per GPU")
    require(not math.isclose(lr, BASE_LR), "the linear scaling rule changes the learning rate "
            "when the batch grows")
    require(math.isclose(lr, BASE_LR * workers, rel_tol=1e-6), "the rate grows by the same "
            "factor as the batch: (effective batch) / (batch the base rate was tuned for)")


@exercise("06.2")
def ring_allreduce_volume(ring_allreduce_bytes):
    cases = [(62_346, 2, 4), (62_346, 4, 4), (25_600_000, 8, 4), (1_000, 16, 2), (10, 1, 4)]
    for n_params, n_workers, width in cases:
        got = call(ring_allreduce_bytes, n_params, n_workers, width)
        require(isinstance(got, Real | np.number) and not isinstance(got, bool),
                f"return a number of bytes, got {type(got).__name__}")
        got = float(got)
        size = n_params * width
        expected = 2 * (n_workers - 1) / n_workers * size
        if n_workers == 1:
            require(got == 0, "with a single worker there is nobody to talk to: 0 bytes")
            continue
        if math.isclose(got, expected, rel_tol=1e-6):
            continue
        require(not math.isclose(got, size * (n_workers - 1), rel_tol=1e-6),
                "that is what a root would RECEIVE if everybody sent it everything; the ring "
                "splits the buffer into N chunks")
        require(not math.isclose(got, (n_workers - 1) / n_workers * size, rel_tol=1e-6),
                "that covers the reduce-scatter phase only; the all-gather phase sends as much "
                "again")
        raise Hint(f"for {n_params:,} parameters of {width} bytes on {n_workers} workers the "
                   "answer is not right: count the steps (2(N-1)) and the chunk size (size/N)")


def _line_set(value, what):
    require(isinstance(value, set | frozenset | list | tuple),
            f"{what}: give the line numbers as a set, e.g. {{2, 3}}")
    lines = set(value)
    require(all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= LISTING_LINES
                for n in lines), f"{what}: line numbers are ints from 1 to {LISTING_LINES}")
    return lines


@exercise("06.3")
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
