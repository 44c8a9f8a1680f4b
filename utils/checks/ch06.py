"""Self-checks for chapter 06 (data-parallel training with Horovod)."""

from __future__ import annotations

import hashlib
import math
from numbers import Real

from utils.checks import Hint, exercise, require

# Exercise 06.1: 4 nodes × 4 GPUs, 32 images per GPU; one GPU trained well with lr 0.01.
NODES, GPUS_PER_NODE, BATCH_PER_GPU, BASE_LR = 4, 4, 32, 0.01

# Exercise 06.3: the lines of the listing that write output and must run on rank 0 only.
# Stored as a hash so that reading this file does not give the answer away.
RANK0_LINES_SHA256 = "e625da1604143d3d32f692b53798c321ccb88455b52f6a32be11c3b851cf1895"
LISTING_LINES = 11
EVERY_RANK_LINES = {1: "hvd.init() starts Horovod in every process",
                    2: "every rank trains on its own shard",
                    3: "every rank needs the model",
                    4: "every rank needs the optimizer that averages the gradients",
                    6: "the callbacks are part of training on every rank: the broadcast and the "
                       "metric average are collective operations all ranks must join",
                    7: "the callbacks are part of training on every rank",
                    11: "evaluating on every rank is wasteful but writes nothing"}


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
    require(callable(ring_allreduce_bytes), "define a function ring_allreduce_bytes(n_params, "
            "n_workers, bytes_per_param=4)")
    cases = [(62_346, 2, 4), (62_346, 4, 4), (25_600_000, 8, 4), (1_000, 16, 2), (10, 1, 4)]
    for n_params, n_workers, width in cases:
        try:
            got = float(ring_allreduce_bytes(n_params, n_workers, width))
        except Exception as error:
            raise Hint(f"your function raised {type(error).__name__}: {error}") from None
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


@exercise("06.3")
def rank0_only_lines(answer):
    require(isinstance(answer, set | frozenset | list | tuple),
            "give the line numbers as a set, e.g. {2, 3}")
    lines = set(answer)
    require(all(isinstance(n, int) and 1 <= n <= LISTING_LINES for n in lines),
            f"line numbers are ints from 1 to {LISTING_LINES}")
    for number in sorted(lines):
        if number in EVERY_RANK_LINES:
            raise Hint(f"line {number} must run on every rank: {EVERY_RANK_LINES[number]}")
    require(_lines_digest(lines) == RANK0_LINES_SHA256,
            "not all of them yet: look for every line that prints or writes a file, including "
            "through an argument")
