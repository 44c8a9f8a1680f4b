"""The chapter 07 training with Keras' own data parallelism, keras.distribution on JAX.

    KERAS_BACKEND=jax python train_mnist_data_parallel.py --devices 2 --epochs 1 --out dp.json

One process, several devices, like train_mnist_mirrored.py, but through Keras 3's distribution
API (`keras.distribution.DataParallel`), which works on the JAX backend. With GPUs, every
visible GPU is a device. Without, XLA splits the CPU into `--devices` host devices
(XLA_FLAGS=--xla_force_host_platform_device_count, set here before JAX starts). Compare with
train_mnist_hvd.py (Horovod, one process per device).
"""

from __future__ import annotations

import os
import sys


def train_with_data_parallel(x, y, args):
    """model.fit under keras.distribution.DataParallel: the variables replicated on every
    device, each global batch split along its first axis."""
    import keras
    from mnist_cnn import build_cnn
    from train_mnist_hvd import cross_entropy

    from utils.training import EpochTimer

    devices = keras.distribution.list_devices()  # every GPU, or the host devices
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    replicas = len(devices)
    model = build_cnn()  # created under the distribution: its variables live on every device
    model.compile(optimizer=keras.optimizers.SGD(args.base_lr * replicas, momentum=0.9),
                  loss=cross_entropy(model), metrics=["accuracy"])
    timer = EpochTimer()
    # fit shards each global batch over the devices; XLA inserts the gradient all-reduce
    model.fit(x, y, batch_size=args.batch_size * replicas, epochs=args.epochs, verbose=0,
              callbacks=[timer])
    return model, devices, timer.seconds


def use_host_devices(devices: int) -> None:
    """Split the CPU into `devices` XLA host devices (before JAX starts; GPUs ignore it).

    Host devices share one thread pool. A device waiting at a gradient all-reduce holds a
    thread, and so does the next step, dispatched before this one ends; with a thread per device
    or fewer (2 cores, 2 devices), the device the others wait for may find none free, and XLA
    ends the process a minute later ("Termination timeout ... only 1 of them arrived"). Two
    threads per device avoid it (PJRT_NPROC sizes the pool; more cores than that are kept).
    """
    from utils.distributed import usable_cores

    os.environ["XLA_FLAGS"] = (f"{os.environ.get('XLA_FLAGS', '')} "
                               f"--xla_force_host_platform_device_count={devices}").strip()
    os.environ["PJRT_NPROC"] = str(max(int(os.environ.get("PJRT_NPROC", 0)), usable_cores(),
                                       2 * devices))


def main(argv: list[str] | None = None) -> int:
    from mnist_cnn import one_process_arguments, one_process_report

    args = one_process_arguments(__doc__.splitlines()[0], argv)
    if os.environ.setdefault("KERAS_BACKEND", "jax") != "jax":
        sys.exit(f"keras.distribution runs on the JAX backend here; KERAS_BACKEND is "
                 f"{os.environ['KERAS_BACKEND']!r}")
    use_host_devices(args.devices)
    import keras
    from mnist_cnn import load_data

    # keras.utils.set_random_seed also seeds TensorFlow, importing it if installed: a second
    # runtime, with thread pools of its own, in this JAX process. Mark it absent instead.
    sys.modules.setdefault("tensorflow", None)
    keras.utils.set_random_seed(args.seed)
    (x, y), (x_test, y_test) = load_data(args.train_samples)
    model, devices, epoch_seconds = train_with_data_parallel(x, y, args)
    one_process_report(model, x, x_test, y_test, args.out, replicas=len(devices),
                       devices=devices, epochs=args.epochs, epoch_seconds=epoch_seconds,
                       global_batch_size=args.batch_size * len(devices))
    return 0


if __name__ == "__main__":
    sys.exit(main())
