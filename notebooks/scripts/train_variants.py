"""Several short trainings in one Horovod job: chapter 07's comparisons, one start-up for all.

    horovodrun -np 2 -H localhost:2 python train_variants.py --epochs 1 --train-samples 12000 \
        --val-samples 2000 --batch-size 128 --base-batch 128 --variant plain \
        --variant strong:batch-size=64,warmup-epochs=0 \
        --variant accumulate:batch-size=32,backward-passes-per-step=4 \
        --variant fp16:compression=fp16 --out variants.json

Every option except --variant and --out is train_mnist_hvd.py's, shared by all variants; a
variant NAME:FLAG=VALUE,... overrides some of them (the flags without their leading dashes).
The variants train one after the other on the same ranks and the same shards, each with a fresh
model (built from --seed, then broadcast from rank 0), with train_mnist_hvd.py's training
(`--loop fit`). Starting TensorFlow and Horovod once, not once per variant, is the point.

Rank 0 writes {"np": ..., "variants": {NAME: figures}} to --out: the figures of
train_mnist_hvd.py (throughput, passes and updates, gradient bytes, the validation curve), no
test accuracy (the variants are compared on the validation images), and for a variant with
--compression fp16 the relative error that float16 adds to one averaged gradient.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_variant(text: str) -> tuple[str, list[str]]:
    """'NAME:flag=value,flag=value' -> (NAME, ['--flag', 'value', ...])."""
    name, _, overrides = text.partition(":")
    if not name:
        raise argparse.ArgumentTypeError(f"a variant needs a name, got {text!r}")
    flags = []
    for item in filter(None, overrides.split(",")):
        flag, equals, value = item.partition("=")
        if not equals or not flag or flag.startswith("-"):
            raise argparse.ArgumentTypeError(
                f"variant {name!r}: expected FLAG=VALUE (e.g. batch-size=64), got {item!r}")
        flags += [f"--{flag}", value]
    return name, flags


def parse_args(argv: list[str] | None = None) -> tuple[Path, list[tuple[str, object]]]:
    """The output file and, per variant, its name and train_mnist_hvd.py arguments."""
    import train_mnist_hvd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", type=parse_variant, action="append", required=True,
                        help="NAME or NAME:FLAG=VALUE,... (train_mnist_hvd.py flags)")
    parser.add_argument("--out", type=Path, required=True, help="JSON results file (rank 0)")
    ours, shared = parser.parse_known_args(argv)
    names = [name for name, _ in ours.variant]
    if len(set(names)) != len(names):
        parser.error(f"variant names must differ, got {names}")
    variants = []
    for name, flags in ours.variant:
        args = train_mnist_hvd.parse_args([*shared, *flags])
        if args.loop != "fit" or args.out is not None or args.val_samples == 0:
            parser.error(f"variant {name!r}: the variants train with --loop fit, are compared "
                         "on --val-samples images, and only train_variants.py's --out is written")
        shared_by_all = (args.train_samples, args.val_samples, args.threads)
        if variants and shared_by_all != (variants[0][1].train_samples,
                                          variants[0][1].val_samples, variants[0][1].threads):
            parser.error(f"variant {name!r}: the variants share --train-samples, --val-samples "
                         "and --threads (one data set, one start-up)")
        variants.append((name, args))
    return ours.out, variants


def fp16_error(model, x, y, hvd) -> float:
    """Relative error of one gradient averaged over the ranks with float16 on the wire,
    against the same average in float32 (every rank must call this: it allreduces)."""
    import numpy as np
    import tensorflow as tf
    from train_mnist_hvd import cross_entropy

    with tf.GradientTape() as tape:
        loss = cross_entropy(model)(y[:256], model(x[:256], training=False))
    grads = tape.gradient(loss, model.trainable_variables)
    exact, half = [], []
    for i, g in enumerate(grads):
        exact.append(hvd.allreduce(g, name=f"fp16_check_exact_{i}").numpy().ravel())
        half.append(hvd.allreduce(g, name=f"fp16_check_half_{i}",
                                  compression=hvd.Compression.fp16).numpy().ravel())
    exact, half = np.concatenate(exact), np.concatenate(half)
    return float(np.linalg.norm(half - exact) / np.linalg.norm(exact))


def main(argv: list[str] | None = None) -> int:
    out, variants = parse_args(argv)
    from mnist_cnn import build_cnn, load_data  # also makes `utils` importable from a checkout
    from train_mnist_hvd import learning_rate, train_and_compare

    import utils.horovod_keras as hvd
    from utils import distributed

    first = variants[0][1]
    hvd.init()  # as in train_mnist_hvd.py: threads, GPU, data shards
    threads = first.threads or distributed.threads_per_rank()
    distributed.set_threads(threads)
    device = distributed.pin_gpu() or f"CPU, {threads} thread(s)"
    print(f"rank {hvd.rank()}/{hvd.size()} on {device}", flush=True)  # who is who, on every rank
    import keras

    (x_all, y_all), _ = load_data()
    x_val, y_val = x_all[len(x_all) - first.val_samples:], y_all[len(x_all) - first.val_samples:]
    results = {}
    for name, args in variants:
        x, y = distributed.shard(x_all[:args.train_samples], y_all[:args.train_samples],
                                 rank=hvd.rank(), size=hvd.size())
        keras.utils.set_random_seed(args.seed + hvd.rank())  # broadcast makes them equal
        model = build_cnn()
        result = train_and_compare(model, (x, y), (x_val, y_val), args,
                                   learning_rate(args, hvd.size()), hvd)
        if args.compression == "fp16":
            result["fp16_relative_error"] = fp16_error(model, x, y, hvd)
        result.update(threads_per_rank=threads, device=device, seed=args.seed)
        results[name] = result
        if hvd.rank() == 0:  # rank 0 keeps the clock and the validation curve
            print(f"{name}: {result['images_per_second']:.0f} images/s, {result['updates']} "
                  f"updates in {result['passes']} passes, validation accuracy "
                  f"{result['validation_curve'][-1][2]:.4f}", flush=True)
    if hvd.rank() == 0:
        out.write_text(json.dumps({"np": hvd.size(), "variants": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
