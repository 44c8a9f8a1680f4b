"""Exercise 07.1's job: run a learner's `train_on_every_rank` on every rank of a Horovod job.

    horovodrun -np 2 -H localhost:2 python two_rank_exercise.py --solution answer.py --out job.json

`answer.py` defines `train_on_every_rank(model, x, y, base_lr, batch_size, epochs)`; it runs with
`keras`, `np` and `distributed` (utils.distributed) defined, as in the notebook. Each rank:
1. builds the CNN from its own seed (so the replicas start DIFFERENT, as in any real job);
2. trains a throw-away copy alone on one shard (no communication): the one-rank baseline, every
   rank on its own core at the same time, so both runs share the machine the same way;
3. calls the learner's function on the full training set;
4. reports its weights before and after (sha256 digests), the change of its weights, its step
   count and learning rate, and which training images its `model.fit` calls were given;
5. times one more pass over its shard with the learner's compiled model, and the same for the
   baseline (second passes: the tracing of the training step is not timed). Rank 0 writes it
   all as JSON to --out, with the scaling efficiency E = S(2) / 2 = (images/s of the job) /
   (2 x images/s of one rank alone) = (seconds alone) / (seconds in the job), the same work
   per rank in both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run exercise 07.1 on every rank.")
    parser.add_argument("--solution", type=Path, required=True)
    parser.add_argument("--function", default="train_on_every_rank")
    parser.add_argument("--train-samples", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--base-lr", type=float, default=0.02)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args(argv)


def digest(model) -> str:
    """A fingerprint of the exact bits of every weight."""
    h = hashlib.sha256()
    for weight in model.weights:
        h.update(weight.numpy().tobytes())
    return h.hexdigest()


class FitRecorder:
    """Wraps a model's `fit` to note which of the training images `x` each call trains on."""

    def __init__(self, model, x, np):
        self.np, self.fit, self.recording = np, model.fit, True
        self.index = {row.tobytes(): i for i, row in enumerate(x)}
        self.seen = np.zeros(len(x), dtype=bool)
        self.known, self.calls = True, 0
        model.fit = self

    def __call__(self, *args, **kwargs):
        if self.recording:
            self.calls += 1
            images = kwargs["x"] if "x" in kwargs else (args[0] if args else None)
            images = images.numpy() if hasattr(images, "numpy") else images
            if isinstance(images, self.np.ndarray):  # a tf.data pipeline cannot be read back
                rows = [self.index.get(row.tobytes()) for row in images.astype(self.np.float32)]
                self.known &= None not in rows
                self.seen[[r for r in rows if r is not None]] = True
            else:
                self.known = False
        return self.fit(*args, **kwargs)

    def mask(self):
        """1 if this rank's images were all read back, then 1 for each image it trained on."""
        known = self.known and self.calls > 0
        return self.np.concatenate([[known], self.seen]).astype(self.np.uint8)


def shares(masks) -> dict | None:
    """What the ranks' masks say about their shares; None if any rank's could not be read."""
    if not masks[:, 0].all():
        return None
    seen = masks[:, 1:].astype(bool)
    return {"sizes": [int(s) for s in seen.sum(axis=1)],
            "overlap": int(seen.all(axis=0).sum()), "covered": int(seen.any(axis=0).sum())}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mnist_cnn import build_cnn, load_data  # also makes `utils` importable from a checkout
    from train_mnist_hvd import cross_entropy  # from logits, unless the CNN ends in a softmax

    import utils.horovod_keras as hvd
    from utils import distributed

    hvd.init()
    distributed.set_threads(distributed.threads_per_rank())
    import keras
    import numpy as np

    (x, y), _ = load_data(args.train_samples)
    keras.utils.set_random_seed(args.seed + hvd.rank())  # every rank its own initial weights
    model = build_cnn()
    before = [w.numpy().copy() for w in model.weights]
    initial = digest(model)

    # The baseline: this rank trains a copy on one shard, alone, with a plain optimizer.
    alone = keras.models.clone_model(model)
    alone.compile(optimizer=keras.optimizers.SGD(args.base_lr), jit_compile=False,
                  loss=cross_entropy(alone))
    x_shard, y_shard = distributed.shard(x, y, rank=hvd.rank(), size=hvd.size())
    alone.fit(x_shard, y_shard, batch_size=args.batch_size, epochs=1, verbose=0)  # traces
    start = time.perf_counter()
    alone.fit(x_shard, y_shard, batch_size=args.batch_size, epochs=1, verbose=0)
    alone_seconds = time.perf_counter() - start
    hvd.allreduce(np.zeros(1), name="baseline_done")  # start the job's part together

    # The learner's function sees what the notebook's cells see by these names.
    namespace: dict = {"__name__": "learner_solution", "keras": keras, "np": np,
                       "distributed": distributed}
    error = None
    recorder = FitRecorder(model, x, np)
    try:
        exec(compile(args.solution.read_text(), str(args.solution), "exec"), namespace)
        returned = namespace[args.function](model, x, y, args.base_lr, args.batch_size,
                                            args.epochs)
        if isinstance(returned, keras.Model):
            model = returned
    except Exception as failure:  # reported to the check, which turns it into a hint
        error = f"{type(failure).__name__}: {failure}"
        traceback.print_exc()
    recorder.recording = False

    optimizer = getattr(model, "optimizer", None)
    steps = int(optimizer.iterations.numpy()) if optimizer is not None else 0
    try:
        lr = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except Exception:  # no optimizer, or a schedule
        lr = float("nan")
    change = [w.numpy() - b for w, b in zip(model.weights, before, strict=True)] \
        if len(model.weights) == len(before) else []
    # Rank 0 learns what every rank found: the digests, and whether their changes agree.
    rows = [bytes.fromhex(initial), bytes.fromhex(digest(model))]
    gathered = hvd.allgather(np.frombuffer(b"".join(rows), dtype=np.uint8)[np.newaxis]).numpy()
    flat = np.concatenate([c.ravel() for c in change]) if change else np.zeros(1)
    changes = hvd.allgather(flat[np.newaxis].astype(np.float64)).numpy()
    numbers = hvd.allgather(np.array([[alone_seconds, steps, lr,
                                       float(error is not None)]])).numpy()
    job_seconds = float("nan")
    if not numbers[:, 3].any() and optimizer is not None:  # the same choice on every rank
        start = time.perf_counter()
        model.fit(x_shard, y_shard, batch_size=args.batch_size, epochs=1, verbose=0)
        job_seconds = time.perf_counter() - start
    seconds = hvd.allgather(np.array([job_seconds])).numpy()
    masks = hvd.allgather(recorder.mask()[np.newaxis]).numpy()
    if hvd.rank() == 0:
        result = {
            "np": hvd.size(), "train_samples": len(x), "batch_size": args.batch_size,
            "base_lr": args.base_lr, "epochs": args.epochs, "error": error,
            "initial_digests": [row[:32].tobytes().hex() for row in gathered],
            "final_digests": [row[32:].tobytes().hex() for row in gathered],
            "same_change": bool(np.allclose(changes, changes[0], rtol=1e-4, atol=1e-6)),
            "alone_seconds": numbers[:, 0].tolist(), "job_seconds": seconds.tolist(),
            "steps": [int(s) for s in numbers[:, 1]], "learning_rates": numbers[:, 2].tolist(),
            "errors_on_ranks": int(numbers[:, 3].sum()), "shares": shares(masks),
        }
        # None (JSON null) when the job could not be timed
        efficiency = float(np.mean(numbers[:, 0]) / np.max(seconds))
        result["efficiency"] = efficiency if np.isfinite(efficiency) else None
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
