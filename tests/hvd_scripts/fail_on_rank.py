"""Run under `horovodrun -np 2`: rank 1 raises while rank 0 waits for it in an allreduce."""

import sys

import horovod.tensorflow as hvd

from utils import distributed

hvd.init()
distributed.set_threads(1)
import tensorflow as tf  # noqa: E402

failing_rank = int(sys.argv[1]) if len(sys.argv) > 1 else 1
if hvd.rank() == failing_rank:
    raise RuntimeError(f"rank {failing_rank} failed on purpose")
for _ in range(1000):  # the other ranks keep waiting for the missing rank
    hvd.allreduce(tf.ones(4), op=hvd.Sum)
