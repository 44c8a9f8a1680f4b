"""Data-parallel training of the MNIST CNN with Horovod: CPU ranks, or one GPU per rank.

    horovodrun -np 2 -H localhost:2 python train_mnist_hvd.py --epochs 2 --out run.json

Two styles, the same mathematics:
  --loop fit     model.fit with Horovod's Keras API: `import utils.horovod_keras as hvd`, the
                 course's drop-in for `horovod.tensorflow.keras` (which does not run on Keras 3)
  --loop custom  a hand-written training step where every collective operation is visible

`hvd.*` below is Horovod's API; `distributed.*` (threads, GPU pinning, shards) is the course's.

With --loop fit, two DistributedOptimizer options change what is communicated:
  --backward-passes-per-step K  accumulate K local gradients, then allreduce and apply once
  --compression fp16            send the gradients as float16 (half the bytes)

Rank 0 writes the results (throughput, time per epoch, test accuracy and, with --val-samples,
the validation curve for time-to-accuracy) as JSON to --out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from itertools import pairwise
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
MNIST_TRAIN_SIZE = 60_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train the MNIST CNN data-parallel with Horovod.")
    parser.add_argument("--loop", choices=["fit", "custom"], default="fit")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="examples per rank per step")
    parser.add_argument("--base-lr", type=float, default=0.02,
                        help="SGD learning rate for ONE rank at --base-batch; scaled with the "
                        "effective global batch (the linear scaling rule)")
    parser.add_argument("--base-batch", type=int, default=0,
                        help="the batch --base-lr is meant for (default: --batch-size, one "
                        "rank's batch): the rate is base-lr x effective global batch / base-batch")
    parser.add_argument("--backward-passes-per-step", type=int, default=1,
                        help="local gradients accumulated before each allreduce and update "
                        "(--loop fit); the effective batch grows by this factor")
    parser.add_argument("--compression", choices=["none", "fp16"], default="none",
                        help="how the gradients travel (--loop fit): float32, or float16")
    parser.add_argument("--warmup-epochs", type=float, default=1.0,
                        help="epochs to ramp the learning rate from base-lr to base-lr × ranks")
    parser.add_argument("--train-samples", type=int, default=MNIST_TRAIN_SIZE,
                        help="use the first N training images (split over the ranks)")
    parser.add_argument("--val-samples", type=int, default=0,
                        help="the LAST N training images, held out: rank 0 measures the "
                        "validation accuracy on them during training (time-to-accuracy)")
    parser.add_argument("--evaluations-per-epoch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow threads per rank (default: cores // ranks per node)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="JSON results file (rank 0)")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "train_samples", "backward_passes_per_step"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.train_samples > MNIST_TRAIN_SIZE:
        parser.error(f"--train-samples: MNIST has {MNIST_TRAIN_SIZE} training images")
    if args.val_samples < 0 or args.train_samples + args.val_samples > MNIST_TRAIN_SIZE:
        parser.error(f"--train-samples + --val-samples: MNIST has {MNIST_TRAIN_SIZE} training "
                     "images, and the validation images must not be trained on")
    if args.evaluations_per_epoch < 1:
        parser.error("--evaluations-per-epoch must be at least 1")
    if args.base_lr <= 0 or args.warmup_epochs < 0 or args.threads < 0:
        parser.error("--base-lr must be positive; --warmup-epochs and --threads not negative")
    if args.base_batch < 0:
        parser.error("--base-batch must be positive (or 0: the same as --batch-size)")
    args.base_batch = args.base_batch or args.batch_size
    if args.loop == "custom" and (args.backward_passes_per_step > 1 or args.compression != "none"):
        parser.error("--backward-passes-per-step and --compression are DistributedOptimizer "
                     "options: use them with --loop fit")
    if args.warmup_epochs != int(args.warmup_epochs):
        parser.error("--warmup-epochs must be a whole number of epochs (Horovod's warm-up "
                     "callback ramps epoch by epoch)")
    return args


def fail(message: str) -> None:
    """Stop this rank with a one-line error. Every rank runs the same check, so none hangs."""
    from utils.distributed import rank0_print

    rank0_print(f"train_mnist_hvd.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def learning_rate(args: argparse.Namespace, size: int) -> float:
    """The linear scaling rule: base-lr x (effective global batch / base batch), where the
    effective global batch is batch-size x ranks x backward passes per step."""
    effective_batch = args.batch_size * size * args.backward_passes_per_step
    return args.base_lr * effective_batch / args.base_batch


def cross_entropy(model):
    """The loss for this model's output: from logits, unless its last layer is a softmax."""
    import keras

    probabilities = getattr(model.layers[-1], "activation", None) is keras.activations.softmax
    return keras.losses.SparseCategoricalCrossentropy(from_logits=not probabilities)


def compression(args: argparse.Namespace, hvd):
    """Horovod's compressor for --compression: float16 on the wire, or the gradients as they are."""
    return hvd.Compression.fp16 if args.compression == "fp16" else hvd.Compression.none


def gradient_bytes(model, compressor) -> int:
    """The bytes of one rank's gradients as the compressor hands them to the allreduce."""
    import numpy as np
    import tensorflow as tf

    return sum(int(np.prod(w.shape)) * compressor.compress(tf.zeros(w.shape))[0].dtype.size
               for w in model.trainable_weights)


def weights_digest(model) -> str:
    """A fingerprint of the exact bits of every weight."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(weight.numpy().tobytes())
    return digest.hexdigest()


class Progress:
    """Rank 0's clock and validation curve, shared by both training styles.

    The clock counts training time only: while rank 0 measures the validation accuracy (the
    other ranks wait for it at their next allreduce), it is stopped.
    """

    def __init__(self, x_val, y_val, evaluations_per_epoch, steps_per_epoch, images_per_step):
        self.x_val, self.y_val = x_val, y_val
        self.every = max(1, steps_per_epoch // evaluations_per_epoch) if len(x_val) else 0
        self.steps_per_epoch, self.images_per_step = steps_per_epoch, images_per_step
        self.curve = []  # [training seconds, images seen by the job, validation accuracy]
        self.epoch_seconds = []
        self.passes = self.updates = 0  # backward passes, and those that changed the weights
        self.trained = 0.0  # training seconds before the current stretch
        self.started = None

    def start(self):
        self.started = time.perf_counter()

    def seconds(self):
        return self.trained + time.perf_counter() - self.started

    def after_step(self, model, epoch, step, updated=True):
        self.passes += 1
        self.updates += bool(updated)
        if not self.every or (step + 1) % self.every:
            return
        self.trained = self.seconds()
        import numpy as np

        accuracy = float(np.mean(np.concatenate([
            np.argmax(model(self.x_val[i:i + 500], training=False), axis=1)
            for i in range(0, len(self.x_val), 500)]) == self.y_val))
        images = (epoch * self.steps_per_epoch + step + 1) * self.images_per_step
        self.curve.append([self.trained, images, accuracy])
        self.start()

    def images_per_second(self, images_per_epoch):
        """Training throughput, robust to other work on the machine.

        The validation checks cut training into stretches, each timed after a synchronising
        evaluation. Other jobs can only ever slow a stretch down, so the fastest stretch is the
        best estimate of what the job itself can do (`timeit` takes the minimum for the same
        reason). The first stretch also traces the graph: it is left out. Without a validation
        curve, the epochs after the first are timed instead.
        """
        stretches = list(pairwise(self.curve))  # from one check to the next: not the first
        if stretches:
            return max((i1 - i0) / (t1 - t0) for (t0, i0, _), (t1, i1, _) in stretches)
        steady = self.epoch_seconds[1:] or self.epoch_seconds
        return images_per_epoch * len(steady) / sum(steady)

    def end_epoch(self, epoch, epochs, loss, accuracy=None):
        self.epoch_seconds.append(self.seconds() - sum(self.epoch_seconds))
        from utils.distributed import rank0_print

        rank0_print(f"epoch {epoch + 1}/{epochs}: {self.epoch_seconds[-1]:.1f} s, loss {loss:.4f}"
                    + ("" if accuracy is None else f", accuracy {accuracy:.4f}")
                    + (f", validation accuracy {self.curve[-1][2]:.4f}" if self.curve else ""))


def progress_report(progress, args, hvd):
    """A Keras callback that drives rank 0's Progress: the clock, the validation curve, and one
    line per epoch. Instrumentation for the chapter, not part of Horovod's recipe."""
    import keras

    class Report(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            progress.start()
            self.last = (keras.ops.convert_to_numpy(self.model.trainable_weights[-1])
                         if self.model.built else None)

        def on_train_batch_end(self, batch, logs=None):
            if hvd.rank() == 0:  # a pass that only accumulated leaves the weights as they were
                bias = keras.ops.convert_to_numpy(self.model.trainable_weights[-1])
                updated = self.last is None or bool((bias != self.last).any())
                self.last = bias
                progress.after_step(self.model, self.epoch, batch, updated)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            progress.end_epoch(epoch, args.epochs, logs["loss"], logs["accuracy"])

    return Report()


def train_with_fit(model, x, y, args, lr, hvd, progress):
    """model.fit with Horovod's Keras API (`hvd` is utils.horovod_keras, Horovod's names)."""
    import keras

    optimizer = hvd.DistributedOptimizer(
        keras.optimizers.SGD(lr, momentum=0.9),
        backward_passes_per_step=args.backward_passes_per_step,  # allreduce every K passes
        average_aggregated_gradients=True,  # apply the mean of the K gradients
        compression=compression(args, hvd))  # float16 on the wire with --compression fp16
    model.compile(optimizer=optimizer, loss=cross_entropy(model),
                  metrics=["accuracy"], jit_compile=False)  # Horovod's ops cannot run in XLA

    callbacks = [
        hvd.callbacks.BroadcastGlobalVariablesCallback(root_rank=0),  # same start on every rank
        hvd.callbacks.MetricAverageCallback(),  # logs = average over ranks, not rank 0's shard
    ]
    if args.warmup_epochs:  # lr / size -> lr, batch by batch; momentum rescaled to match
        callbacks.append(hvd.callbacks.LearningRateWarmupCallback(
            initial_lr=lr, warmup_epochs=int(args.warmup_epochs), momentum_correction=True))
    callbacks.append(progress_report(progress, args, hvd))
    history = model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, shuffle=True,
                        callbacks=callbacks, verbose=0)  # progress_report prints, on rank 0
    return history.history["loss"][-1]


def train_with_custom_loop(model, x, y, args, lr, hvd, progress):
    """The same training, written out: gradient, allreduce, update (horovod.tensorflow's ops)."""
    import horovod.tensorflow as hvd_tf  # the collective operations themselves
    import keras
    import tensorflow as tf

    from utils import distributed

    optimizer = keras.optimizers.SGD(lr, momentum=0.9)
    loss_fn = cross_entropy(model)
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

    progress.start()
    for epoch in range(args.epochs):
        loss_sum = tf.constant(0.0)
        for step, (images, labels) in enumerate(dataset):
            if step == 0 or epoch < args.warmup_epochs:  # linear warm-up, batch by batch
                optimizer.learning_rate = distributed.warmup_learning_rate(
                    epoch + step / steps_per_epoch, lr, hvd.size(), args.warmup_epochs)
            loss_sum += train_step(images, labels)  # a tensor: no wait for the step to finish
            if hvd.rank() == 0:
                progress.after_step(model, epoch, step)
        mean_loss = float(hvd_tf.allreduce(loss_sum / steps_per_epoch, op=hvd_tf.Average))
        progress.end_epoch(epoch, args.epochs, mean_loss)
    return mean_loss


def train_and_compare(model, train_data, val_data, args, lr, hvd) -> dict:
    """Train `model` on this rank's shard (x, y); then check that every rank holds the very same
    weights. Returns the run's figures (rank 0's clock and validation curve)."""
    import numpy as np

    x, y = train_data
    train = train_with_fit if args.loop == "fit" else train_with_custom_loop
    steps_per_epoch = -(-len(x) // args.batch_size) if args.loop == "fit" else \
        len(x) // args.batch_size  # the custom loop drops the last, partial batch
    progress = Progress(*val_data, args.evaluations_per_epoch, steps_per_epoch,
                        args.batch_size * hvd.size())
    final_loss = train(model, x, y, args, lr, hvd, progress)

    # Every rank must now hold the very same weights: compare fingerprints.
    digest = np.frombuffer(bytes.fromhex(weights_digest(model)), dtype=np.uint8)
    digests = hvd.allgather(digest[np.newaxis]).numpy()  # one row per rank
    images_per_epoch = len(x) * hvd.size()
    global_batch = args.batch_size * hvd.size()
    return {
        "loop": args.loop, "np": hvd.size(), "epochs": args.epochs,
        "batch_size_per_rank": args.batch_size, "global_batch_size": global_batch,
        "backward_passes_per_step": args.backward_passes_per_step,
        "effective_batch_size": global_batch * args.backward_passes_per_step,
        "compression": args.compression, "learning_rate": lr,
        "warmup_epochs": args.warmup_epochs, "train_images_per_epoch": images_per_epoch,
        "epoch_seconds": progress.epoch_seconds,
        "images_per_second": progress.images_per_second(images_per_epoch),
        "final_loss": final_loss, "validation_curve": progress.curve,
        "val_samples": args.val_samples, "passes": progress.passes, "updates": progress.updates,
        "gradient_bytes": gradient_bytes(model, compression(args, hvd)),
        "weights_identical": bool((digests == digests[0]).all()),
    }


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

    (x_all, y_all), (x_test, y_test) = load_data()
    x_train, y_train = x_all[:args.train_samples], y_all[:args.train_samples]
    x_val, y_val = x_all[len(x_all) - args.val_samples:], y_all[len(x_all) - args.val_samples:]
    x, y = distributed.shard(x_train, y_train, rank=hvd.rank(), size=hvd.size())

    # 4. Model and optimizer; linear scaling rule: N ranks take N times bigger steps.
    keras.utils.set_random_seed(args.seed + hvd.rank())  # different on purpose: broadcast fixes it
    model = build_cnn()
    lr = learning_rate(args, hvd.size())  # base-lr x size (x backward passes per step)
    result = train_and_compare(model, (x, y), (x_val, y_val), args, lr, hvd)

    # 5. Rank 0 measures the test accuracy and writes the results.
    if hvd.rank() == 0:
        probabilities = model.predict(x_test, batch_size=1000, verbose=0)
        accuracy = float(np.mean(np.argmax(probabilities, axis=1) == y_test))
        result.update(threads_per_rank=threads, device=device, test_accuracy=accuracy)
        print(f"test accuracy {accuracy:.4f}, {result['images_per_second']:.0f} images/s, "
              f"weights identical on all ranks: {result['weights_identical']}", flush=True)
        if args.out:
            args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
