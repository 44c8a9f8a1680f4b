"""Run under `horovodrun -np 2`: checks utils.distributed end to end, rank 0 writes JSON.

1. One data-parallel step (2 ranks × batch b, model.fit) against one single-process step with
   batch 2b from the same initial weights.
2. A short training from DIFFERENT initial weights per rank, with the broadcast, metric-average
   and warm-up callbacks: afterwards every rank must hold bit-identical weights and logs.
3. A model compiled with XLA must be refused with a clear message (Horovod's ops cannot run
   inside XLA), on every rank, before any rank waits for another.
"""

import hashlib
import json
import sys

import numpy as np

from utils import distributed as hvd_keras


def make_model(seed):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(16, activation="tanh"),
                             keras.layers.Dense(3, activation="softmax")])


def digest(model):
    return hashlib.sha256(b"".join(w.numpy().tobytes() for w in model.weights)).hexdigest()


def main(out_path):
    import horovod.tensorflow as hvd

    hvd.init()
    hvd_keras.set_threads(1)
    import keras

    rng = np.random.default_rng(0)  # the same data on every rank
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 3, size=64)
    b = len(x) // hvd.size()
    x_rank, y_rank = hvd_keras.shard(x, y)
    assert len(x_rank) == b
    loss = "sparse_categorical_crossentropy"

    # 1. One distributed step vs one big single-process step, same initial weights.
    model = make_model(seed=1)
    start = [w.numpy() for w in model.weights]
    model.compile(optimizer=hvd_keras.DistributedOptimizer(keras.optimizers.SGD(0.5)), loss=loss,
                  jit_compile=False)
    model.fit(x_rank, y_rank, batch_size=b, epochs=1, shuffle=False, verbose=0,
              callbacks=[hvd_keras.BroadcastGlobalVariablesCallback(0)])
    distributed = [w.numpy() for w in model.weights]

    reference = make_model(seed=1)
    reference.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss, jit_compile=False)
    reference.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    single_rank_only = make_model(seed=1)  # what rank 0 would do without the allreduce
    single_rank_only.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss, jit_compile=False)
    single_rank_only.fit(x_rank, y_rank, batch_size=b, epochs=1, shuffle=False, verbose=0)

    def max_diff(a, b_):
        return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b_, strict=True))

    step = {
        "max_diff_vs_big_batch": max_diff(distributed, [w.numpy() for w in reference.weights]),
        "max_change": max_diff(distributed, start),
        "max_diff_vs_own_batch_only": max_diff(distributed,
                                               [w.numpy() for w in single_rank_only.weights]),
    }

    # 2. Train from different starting points; broadcast must bring the ranks together.
    model = make_model(seed=100 + hvd.rank())
    initial_digests = hvd.allgather_object(digest(model))
    lr = 0.05 * hvd.size()
    model.compile(optimizer=hvd_keras.DistributedOptimizer(keras.optimizers.Adam(lr)), loss=loss,
                  metrics=["accuracy"], jit_compile=False)
    history = model.fit(x_rank, y_rank, batch_size=8, epochs=3, verbose=0, callbacks=[
        hvd_keras.BroadcastGlobalVariablesCallback(0), hvd_keras.MetricAverageCallback(),
        hvd_keras.LearningRateWarmupCallback(initial_lr=lr, warmup_epochs=1)])
    final_digests = hvd.allgather_object(digest(model))
    final_lr = float(model.optimizer.learning_rate)
    optimizer_digests = hvd.allgather_object(hashlib.sha256(b"".join(
        v.numpy().tobytes() for v in model.optimizer.variables)).hexdigest())
    histories = hvd.allgather_object({k: [float(v) for v in vs]
                                      for k, vs in history.history.items()})
    # 3. XLA: refused at trace time, on every rank alike.
    model = make_model(seed=1)
    model.compile(optimizer=hvd_keras.DistributedOptimizer("sgd"), loss=loss, jit_compile=True)
    try:
        model.fit(x_rank, y_rank, batch_size=b, epochs=1, verbose=0)
        xla_error = None
    except Exception as error:  # Keras may wrap it; the message is what matters
        xla_error = f"{type(error).__name__}: {error}"

    if hvd.rank() == 0:
        result = {"size": hvd.size(), "step": step, "initial_digests": initial_digests,
                  "final_digests": final_digests, "optimizer_digests": optimizer_digests,
                  "histories": histories, "final_lr": final_lr, "xla_error": xla_error}
        with open(out_path, "w") as handle:
            json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
