"""Training throughput of the MNIST CNN in one process, for a given number of threads.

Thread pools are fixed when TensorFlow starts, so each thread count needs its own process:

    python cnn_throughput.py --threads 1 --batch-sizes 32 128 512 --xla off on --out t1.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, required=True, help="TensorFlow intra-op threads")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--xla", choices=["off", "on"], nargs="+", default=["off"])
    parser.add_argument("--images", type=int, default=6144, help="images per timed pass")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the results")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.images < 1 or min(args.batch_sizes) < 1:
        parser.error("--threads, --images and --batch-sizes must be positive")

    from mnist_cnn import load_data, training_images_per_second  # makes `utils` importable

    from utils import distributed

    distributed.set_threads(args.threads)  # before TensorFlow does any work
    import tensorflow as tf

    if args.device == "cpu":
        tf.config.set_visible_devices([], "GPU")
    elif not tf.config.list_physical_devices("GPU"):
        parser.error("--device gpu, but TensorFlow sees no GPU")

    (x, y), _ = load_data(train_samples=max(args.images, 2 * max(args.batch_sizes)))
    results = []
    for xla in args.xla:
        for batch_size in args.batch_sizes:
            rate = training_images_per_second(x, y, batch_size, jit_compile=xla == "on",
                                              images=args.images)
            results.append({"device": args.device, "threads": args.threads, "xla": xla == "on",
                            "batch_size": batch_size, "images_per_second": rate})
            print(f"{args.device} threads={args.threads} xla={xla:3} batch={batch_size:4}: "
                  f"{rate:8.0f} images/s", flush=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
