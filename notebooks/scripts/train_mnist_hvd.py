"""Data-parallel training of the MNIST CNN with Horovod: CPU ranks, or one GPU per rank.

    horovodrun -np 2 -H localhost:2 python train_mnist_hvd.py --epochs 2 --out run.json

Two styles, the same mathematics:
  --loop fit     model.fit with Horovod's Keras API: `import utils.horovod_keras as hvd`, the
                 course's drop-in for `horovod.tensorflow.keras` (which does not run on Keras 3)
  --loop custom  a hand-written training step where every collective operation is visible

`hvd.*` below is Horovod's API; `distributed.*` (threads, GPU pinning, shards) is the course's.

Rank 0 writes the results (throughput, time per epoch, test accuracy) as JSON to --out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
MNIST_TRAIN_SIZE = 60_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train the MNIST CNN data-parallel with Horovod.")
    parser.add_argument("--loop", choices=["fit", "custom"], default="fit")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="examples per rank per step")
    parser.add_argument("--base-lr", type=float, default=0.02,
                        help="SGD learning rate for ONE rank; scaled by the number of ranks")
    parser.add_argument("--warmup-epochs", type=float, default=1.0,
                        help="epochs to ramp the learning rate from base-lr to base-lr × ranks")
    parser.add_argument("--train-samples", type=int, default=MNIST_TRAIN_SIZE,
                        help="use the first N training images (split over the ranks)")
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow threads per rank (default: cores // ranks per node)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="JSON results file (rank 0)")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "train_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.train_samples > MNIST_TRAIN_SIZE:
        parser.error(f"--train-samples: MNIST has {MNIST_TRAIN_SIZE} training images")
    if args.base_lr <= 0 or args.warmup_epochs < 0 or args.threads < 0:
        parser.error("--base-lr must be positive; --warmup-epochs and --threads not negative")
    if args.warmup_epochs != int(args.warmup_epochs):
        parser.error("--warmup-epochs must be a whole number of epochs (Horovod's warm-up "
                     "callback ramps epoch by epoch)")
    return args


def fail(message: str) -> None:
    """Stop this rank with a one-line error. Every rank runs the same check, so none hangs."""
    from utils.distributed import rank0_print

    rank0_print(f"train_mnist_hvd.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def weights_digest(model) -> str:
    """A fingerprint of the exact bits of every weight."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(weight.numpy().tobytes())
    return digest.hexdigest()


def train_with_fit(model, x, y, args, lr, hvd):
    """model.fit with Horovod's Keras API (`hvd` is utils.horovod_keras, Horovod's names)."""
    import keras

    optimizer = hvd.DistributedOptimizer(keras.optimizers.SGD(lr, momentum=0.9))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=False)  # Horovod's ops cannot run in XLA
    epoch_seconds = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.start)

    callbacks = [
        hvd.callbacks.BroadcastGlobalVariablesCallback(root_rank=0),  # same start on every rank
        hvd.callbacks.MetricAverageCallback(),  # logs = average over ranks, not rank 0's shard
    ]
    if args.warmup_epochs:  # lr / size -> lr, batch by batch; momentum rescaled to match
        callbacks.append(hvd.callbacks.LearningRateWarmupCallback(
            initial_lr=lr, warmup_epochs=int(args.warmup_epochs), momentum_correction=True,
            verbose=1))
    callbacks.append(EpochTimer())
    history = model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, shuffle=True,
                        callbacks=callbacks, verbose=2 if hvd.rank() == 0 else 0)
    return epoch_seconds, history.history["loss"][-1]


def train_with_custom_loop(model, x, y, args, lr, hvd):
    """The same training, written out: gradient, allreduce, update (horovod.tensorflow's ops)."""
    import horovod.tensorflow as hvd_tf  # the collective operations themselves
    import keras
    import tensorflow as tf

    from utils import distributed

    optimizer = keras.optimizers.SGD(lr, momentum=0.9)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    dataset = (tf.data.Dataset.from_tensor_slices((x, y))
               .shuffle(len(x), seed=args.seed + hvd.rank())
               .batch(args.batch_size, drop_remainder=True)  # same step count on every rank
               .prefetch(tf.data.AUTOTUNE))
    steps_per_epoch = len(x) // args.batch_size

    # Start from rank 0's state: weights and optimizer slots (built now, so they exist).
    optimizer.build(model.trainable_variables)
    hvd_tf.broadcast_variables([w.value for w in model.weights], root_rank=0)
    hvd_tf.broadcast_variables([v.value for v in optimizer.variables], root_rank=0)

    @tf.function
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        grads = tape.gradient(loss, model.trainable_variables)  # from this rank's batch
        grads = hvd_tf.grouped_allreduce(grads, op=hvd_tf.Average)  # mean over all ranks' batches
        optimizer.apply(grads, model.trainable_variables)  # identical update everywhere
        return loss

    epoch_seconds = []
    for epoch in range(args.epochs):
        start, loss_sum = time.perf_counter(), tf.constant(0.0)
        for step, (images, labels) in enumerate(dataset):
            if step == 0 or epoch < args.warmup_epochs:  # linear warm-up, batch by batch
                optimizer.learning_rate = distributed.warmup_learning_rate(
                    epoch + step / steps_per_epoch, lr, hvd.size(), args.warmup_epochs)
            loss_sum += train_step(images, labels)  # a tensor: no wait for the step to finish
        epoch_seconds.append(time.perf_counter() - start)
        mean_loss = float(hvd_tf.allreduce(loss_sum / steps_per_epoch, op=hvd_tf.Average))
        distributed.rank0_print(f"Epoch {epoch + 1}/{args.epochs} - {epoch_seconds[-1]:.1f}s - "
                                f"loss: {mean_loss:.4f}")
    return epoch_seconds, mean_loss


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mnist_cnn import build_cnn, load_data  # also makes `utils` importable from a checkout

    import utils.horovod_keras as hvd  # Horovod's Keras API (drop-in for horovod.tensorflow.keras)
    from utils import distributed  # the course's helpers: threads, GPU pinning, data shards

    # 1. One process per device: start Horovod, size the thread pools, pin a GPU.
    hvd.init()
    threads = args.threads or distributed.threads_per_rank()  # cores // ranks on this node
    distributed.set_threads(threads)  # must come before TensorFlow does any work
    gpu = distributed.pin_gpu()  # GPU of this local rank; None on a CPU-only machine
    device = gpu or f"CPU, {threads} thread(s)"
    # Deliberately on every rank: one line each shows who is who.
    print(f"rank {hvd.rank()}/{hvd.size()} (local rank {hvd.local_rank()}/{hvd.local_size()}) "
          f"on {device}", flush=True)

    # 2. Check the arguments against the job size before loading anything.
    per_rank = args.train_samples // hvd.size()
    if per_rank == 0:
        fail(f"{hvd.size()} ranks but only {args.train_samples} training example(s): "
             "every rank needs data. Use fewer ranks (-np) or more --train-samples.")
    if per_rank < args.batch_size:
        fail(f"each of the {hvd.size()} ranks gets {per_rank} examples, fewer than one batch of "
             f"--batch-size {args.batch_size}. Lower the batch size or the number of ranks.")

    # 3. Data: every rank loads MNIST and keeps its own shard.
    import keras
    import numpy as np

    (x_train, y_train), (x_test, y_test) = load_data(args.train_samples)
    x, y = distributed.shard(x_train, y_train, rank=hvd.rank(), size=hvd.size())

    # 4. Model and optimizer; linear scaling rule: N ranks take N times bigger steps.
    keras.utils.set_random_seed(args.seed + hvd.rank())  # different on purpose: broadcast fixes it
    model = build_cnn()
    lr = args.base_lr * hvd.size()
    train = train_with_fit if args.loop == "fit" else train_with_custom_loop
    epoch_seconds, final_loss = train(model, x, y, args, lr, hvd)

    # 5. Every rank must now hold the very same weights: compare fingerprints.
    digest = np.frombuffer(bytes.fromhex(weights_digest(model)), dtype=np.uint8)
    digests = hvd.allgather(digest[np.newaxis]).numpy()  # one row per rank
    if hvd.rank() == 0:
        probabilities = model.predict(x_test, batch_size=1000, verbose=0)
        accuracy = float(np.mean(np.argmax(probabilities, axis=1) == y_test))
        steady = epoch_seconds[1:] or epoch_seconds  # the first epoch also traces the graph
        images_per_epoch = len(x) * hvd.size()
        result = {
            "loop": args.loop, "np": hvd.size(), "threads_per_rank": threads, "device": device,
            "epochs": args.epochs, "batch_size_per_rank": args.batch_size,
            "global_batch_size": args.batch_size * hvd.size(), "learning_rate": lr,
            "warmup_epochs": args.warmup_epochs, "train_images_per_epoch": images_per_epoch,
            "epoch_seconds": epoch_seconds,
            "images_per_second": images_per_epoch * len(steady) / sum(steady),
            "final_loss": final_loss, "test_accuracy": accuracy,
            "weights_identical": bool((digests == digests[0]).all()),
        }
        print(f"test accuracy {accuracy:.4f}, {result['images_per_second']:.0f} images/s, "
              f"weights identical on all ranks: {result['weights_identical']}", flush=True)
        if args.out:
            args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
