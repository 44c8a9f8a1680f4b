"""Chapter 06's MNIST CNN and its data, shared by the chapter 07 notebook and scripts."""

from __future__ import annotations

import sys
import time
from pathlib import Path

try:
    import utils
except ImportError:  # run from a checkout where the course helpers are not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import utils


def build_cnn():
    """Conv(32, 5×5) → max-pool → Conv(64, 5×5) → max-pool → Dense(10): 62,346 parameters.

    Chapter 06's network, `utils.training.seeds_cnn()`. It outputs logits: compile it with
    `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`, and apply
    `keras.ops.softmax` to its outputs where probabilities are wanted."""
    from utils.training import seeds_cnn

    return seeds_cnn(name="mnist_cnn")


def load_data(train_samples: int | None = None):
    """MNIST as float32 images in [0, 1] with a channel axis, and integer labels."""
    from utils.data import to_images

    (x_train, y_train), (x_test, y_test) = utils.load_mnist(verbose=False)
    if train_samples is not None:
        x_train, y_train = x_train[:train_samples], y_train[:train_samples]
    train = to_images(x_train), y_train.astype("int64")
    return train, (to_images(x_test), y_test.astype("int64"))


def training_images_per_second(x, y, batch_size: int, *, jit_compile: bool = False,
                               images: int = 6144, seed: int = 0) -> float:
    """Steady-state training throughput of a fresh CNN: one warm-up pass, then a timed one."""
    import keras

    keras.utils.set_random_seed(seed)
    steps = max(2, images // batch_size)
    n = steps * batch_size  # whole batches only: a smaller last batch would trigger a retrace
    x, y = x[:n], y[:n]
    if len(x) < n:
        raise ValueError(f"need {n} images for batch size {batch_size}, got {len(x)}")
    model = build_cnn()
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    model.fit(x[:2 * batch_size], y[:2 * batch_size], batch_size=batch_size, epochs=1,
              shuffle=False, verbose=0)  # traces (and, with XLA, compiles) the training step
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    return n / (time.perf_counter() - start)


def train_on_one_device(x, y, args):
    """model.fit on one device: the training that chapter 07's three data-parallel versions
    start from (it counts the lines each one changes)."""
    import keras
    from train_mnist_hvd import cross_entropy  # from logits, unless the CNN ends in a softmax

    from utils.training import EpochTimer

    model = build_cnn()
    model.compile(optimizer=keras.optimizers.SGD(args.base_lr, momentum=0.9),
                  loss=cross_entropy(model), metrics=["accuracy"])
    timer = EpochTimer()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
              callbacks=[timer])
    return model, timer.seconds


def one_process_arguments(description: str, argv: list[str] | None = None):
    """The options of the one-process scripts, the Horovod script's where they share one."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--devices", type=int, default=2, help="devices to split the CPU into "
                        "(without GPUs; with GPUs, every visible one is used)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="examples per replica")
    parser.add_argument("--base-lr", type=float, default=0.02, help="rate for one replica")
    parser.add_argument("--train-samples", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if min(args.devices, args.epochs, args.batch_size, args.train_samples) < 1:
        parser.error("--devices, --epochs, --batch-size and --train-samples must be positive")
    return args


def one_process_report(model, x, x_test, y_test, out: Path | None, *, replicas: int,
                       devices: list[str], epochs: int, global_batch_size: int,
                       epoch_seconds: list[float]) -> None:
    """What the one-process scripts (MirroredStrategy, keras.distribution) report, as the
    Horovod script does: time per epoch, throughput over the steady epochs and test accuracy,
    printed, and written as JSON to `out` if given."""
    import json

    import numpy as np

    for epoch, seconds in enumerate(epoch_seconds, start=1):
        print(f"epoch {epoch}/{epochs}: {seconds:.1f} s", flush=True)
    steady = epoch_seconds[1:] or epoch_seconds  # the first epoch also traces the step
    logits = model.predict(x_test, batch_size=1000, verbose=0)
    accuracy = float(np.mean(np.argmax(logits, 1) == y_test))
    rate = len(x) * len(steady) / sum(steady)
    print(f"{replicas} replicas: test accuracy {accuracy:.4f}, {rate:.0f} images/s", flush=True)
    if out:
        out.write_text(json.dumps({
            "replicas": replicas, "devices": devices, "epochs": epochs,
            "global_batch_size": global_batch_size, "epoch_seconds": epoch_seconds,
            "images_per_second": rate, "test_accuracy": accuracy}, indent=1) + "\n")
