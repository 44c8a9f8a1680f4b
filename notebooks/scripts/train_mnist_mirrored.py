"""The chapter 07 training with tf.distribute.MirroredStrategy: one process, several devices.

    python train_mnist_mirrored.py --devices 2 --epochs 1 --out mirrored.json

On a machine without GPUs the CPU is split into `--devices` logical devices, so the strategy
has replicas to mirror; with GPUs it uses every visible GPU. Compare with train_mnist_hvd.py.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def train_with_mirrored_strategy(x, y, args):
    """model.fit under MirroredStrategy: one replica of the model per device, one process."""
    import keras
    import tensorflow as tf
    from mnist_cnn import build_cnn
    from train_mnist_hvd import cross_entropy  # from logits, unless the CNN ends in a softmax

    from utils.training import EpochTimer

    strategy = tf.distribute.MirroredStrategy()  # every visible GPU, or the logical CPUs
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():  # variables created here are mirrored on every device
        model = build_cnn()
        model.compile(optimizer=keras.optimizers.SGD(args.base_lr * replicas, momentum=0.9),
                      loss=cross_entropy(model), metrics=["accuracy"])
    timer = EpochTimer()
    # fit splits each global batch over the replicas and all-reduces the gradients itself
    model.fit(x, y, batch_size=args.batch_size * replicas, epochs=args.epochs, verbose=0,
              callbacks=[timer])
    return model, replicas, timer.seconds


def main(argv: list[str] | None = None) -> int:
    from mnist_cnn import one_process_arguments

    args = one_process_arguments(__doc__.splitlines()[0], argv)
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):  # must happen before TensorFlow starts
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.devices)
    import keras
    from mnist_cnn import load_data, one_process_report

    keras.utils.set_random_seed(args.seed)
    (x, y), (x_test, y_test) = load_data(args.train_samples)
    model, replicas, epoch_seconds = train_with_mirrored_strategy(x, y, args)
    devices = [d.name for d in tf.config.list_logical_devices() if d.device_type in ("CPU", "GPU")]
    one_process_report(model, x, x_test, y_test, args.out, replicas=replicas, devices=devices,
                       epochs=args.epochs, global_batch_size=args.batch_size * replicas,
                       epoch_seconds=epoch_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
