"""Run under `horovodrun -np 2` with HOROVOD_TIMELINE=DYNAMIC: utils.horovod_keras end to end.

One job runs every scenario (starting TensorFlow on the ranks is the slow part). Rank 0 writes
OUT_DIR/results.json, and Horovod's timeline of the whole job, OUT_DIR/timeline.json, which
records every reduction: its tensors' names, dtypes and shapes, and what kind it was.
tests/test_horovod_keras.py asserts on both. Each DistributedOptimizer has its own `name`, so
its reductions can be told apart in the timeline.
"""

import hashlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import utils.horovod_keras as hvd
from utils import distributed

LOSS = "sparse_categorical_crossentropy"


def main(out_dir: Path) -> None:
    one_rank_sets = [hvd.ProcessSet([0]), hvd.ProcessSet([1])]
    hvd.init(process_sets=one_rank_sets)
    distributed.set_threads(1)  # two ranks share two cores
    import horovod.tensorflow as hvd_tf  # only for the test's own bookkeeping (allgather_object)
    import keras
    import tensorflow as tf

    if hvd.rank() == 0:
        hvd.start_timeline(str(out_dir / "timeline.json"))
    results = {"seconds": {}}
    r, n = hvd.rank(), hvd.size()
    clock = [time.perf_counter()]

    def timed(section):
        now = time.perf_counter()
        results["seconds"][section] = round(now - clock[0], 2)
        clock[0] = now

    def gather(value):
        """The value of every rank, in rank order (on every rank)."""
        return hvd_tf.allgather_object(value)

    def digest(variables):
        return hashlib.sha256(b"".join(np.asarray(v).tobytes() for v in variables)).hexdigest()

    def mlp(seed, inputs=8, built=True):
        keras.utils.set_random_seed(seed)
        layers = [keras.layers.Dense(16, activation="tanh"),
                  keras.layers.Dense(3, activation="softmax")]
        return keras.Sequential(([keras.Input((inputs,))] if built else []) + layers)

    def weights(model):
        return [w.numpy() for w in model.weights]

    def max_diff(a, b):
        return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b, strict=True))

    rng = np.random.default_rng(0)  # the same data on every rank
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 3, size=64)
    x_rank, y_rank = distributed.shard(x, y)  # 32 examples each
    b = len(x_rank)

    # ---- 1. the job and the collectives ----------------------------------------------------
    results["job"] = {
        "size": n, "ranks": gather(r), "local_ranks": gather(hvd.local_rank()),
        "local_size": hvd.local_size(), "cross_size": hvd.cross_size(),
        "cross_ranks": gather(hvd.cross_rank()), "is_initialized": hvd.is_initialized(),
        "gloo_enabled": bool(hvd.gloo_enabled()), "mpi_enabled": bool(hvd.mpi_enabled()),
        "gloo_built": bool(hvd.gloo_built()), "mpi_threads_supported": bool(
            hvd.mpi_threads_supported()) if hvd.mpi_enabled() else None,
        "built": [bool(f()) for f in (hvd.nccl_built, hvd.ddl_built, hvd.ccl_built,
                                       hvd.cuda_built, hvd.rocm_built, hvd.mpi_built)],
    }
    mine = keras.Variable(np.full(2, r + 1.0, "float32"))
    results["collectives"] = gather({
        "allreduce_variable": hvd.allreduce(mine).numpy().tolist(),
        "allreduce_sum": hvd.allreduce(mine, op=hvd.Sum).numpy().tolist(),
        "allreduce_average_false": hvd.allreduce(mine, average=False).numpy().tolist(),
        "allreduce_scaled": hvd.allreduce(mine, op=hvd.Sum, prescale_factor=2.0,
                                          postscale_factor=0.25).numpy().tolist(),
        "allreduce_fp16": hvd.allreduce(mine, compression=hvd.Compression.fp16).numpy().tolist(),
        "allreduce_numpy": hvd.allreduce(np.full(3, float(r))).numpy().tolist(),
        "allgather": hvd.allgather(keras.ops.ones((r + 1, 2)) * r).numpy().tolist(),
        "broadcast": hvd.broadcast(keras.Variable(np.full(3, r, "int32")), 1).numpy().tolist(),
        "reducescatter": hvd.reducescatter(keras.ops.ones((4,)) * (r + 1)).numpy().tolist(),
        "mine_unchanged": mine.numpy().tolist(),
    })

    timed("collectives")
    # ---- 2. every DistributedOptimizer argument, on hand-made gradients ---------------------
    # SGD with learning rate 1: a variable moves by minus the gradient Horovod hands it.
    def apply_steps(name, grads_of, shapes=((3,), (2, 2), (4,)), steps=1, setup=None, **kwargs):
        variables = [keras.Variable(np.zeros(s, "float32")) for s in shapes]
        optimizer = hvd.DistributedOptimizer(keras.optimizers.SGD(1.0), name=name, **kwargs)
        optimizer.build(variables)
        if setup:
            setup(optimizer, variables)
        step = tf.function(lambda: optimizer.apply(grads_of(variables), variables))  # traced
        after = []
        for _ in range(steps):
            step()
            after.append([v.numpy().tolist() for v in variables])
        return {"after_each_step": after, "iterations": int(optimizer.iterations)}

    def rank_plus_one(variables):
        return [tf.fill(v.shape, float(r + 1)) for v in variables]

    def huge(variables):
        return [tf.fill(v.shape, 40000.0) for v in variables]

    def sparse_rows(variables):  # rank 0 touches row 0 with 1s, rank 1 row 1 with 2s
        return [tf.IndexedSlices(tf.fill((1, 2), float(r + 1)), tf.constant([r]),
                                 tf.constant([4, 2]))]

    own_set = one_rank_sets[r]

    def register_last_as_local(optimizer, variables):
        optimizer.register_local_var(variables[-1])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        num_groups_run = apply_steps("arg_num_groups", rank_plus_one, num_groups=2)
    cases = {
        "arg_average": apply_steps("arg_average", rank_plus_one),
        "arg_sum": apply_steps("arg_sum", rank_plus_one, op=hvd.Sum),
        "arg_predivide": apply_steps("arg_predivide", rank_plus_one, gradient_predivide_factor=2.0),
        "arg_fp16": apply_steps("arg_fp16", rank_plus_one, compression=hvd.Compression.fp16),
        "arg_fp16_huge": apply_steps("arg_fp16_huge", huge, compression=hvd.Compression.fp16),
        "arg_fp16_huge_predivide": apply_steps("arg_fp16_huge_predivide", huge,
                                               compression=hvd.Compression.fp16,
                                               gradient_predivide_factor=2.0),
        "arg_process_set": apply_steps("arg_process_set", rank_plus_one, process_set=own_set),
        "arg_local_scaled": apply_steps("arg_local_scaled", rank_plus_one,
                                        setup=register_last_as_local),
        "arg_local_unscaled": apply_steps("arg_local_unscaled", rank_plus_one,
                                          setup=register_last_as_local,
                                          scale_local_gradients=False),
        "arg_groups_int": apply_steps("arg_groups_int", rank_plus_one, groups=2),
        "arg_num_groups": num_groups_run,
        "arg_device_dense": apply_steps("arg_device_dense", rank_plus_one,
                                        device_dense="/cpu:0"),
        "arg_device_sparse": apply_steps("arg_device_sparse", sparse_rows, shapes=((4, 2),),
                                         device_sparse="/cpu:0"),
        "arg_sparse": apply_steps("arg_sparse", sparse_rows, shapes=((4, 2),)),
        "arg_sparse_as_dense": apply_steps("arg_sparse_as_dense", sparse_rows, shapes=((4, 2),),
                                           sparse_as_dense=True),
        "arg_bpps_average": apply_steps("arg_bpps_average", rank_plus_one, steps=4,
                                        backward_passes_per_step=2,
                                        average_aggregated_gradients=True),
        "arg_bpps_sum": apply_steps("arg_bpps_sum", rank_plus_one, steps=4,
                                    backward_passes_per_step=2),
        "arg_bpps_sparse_as_dense": apply_steps("arg_bpps_sparse_as_dense", sparse_rows,
                                                shapes=((4, 2),), steps=2, sparse_as_dense=True,
                                                backward_passes_per_step=2,
                                                average_aggregated_gradients=True),
    }
    group_variables = [keras.Variable(np.zeros(s, "float32")) for s in ((3,), (2, 2), (4,))]
    grouped = hvd.DistributedOptimizer(keras.optimizers.SGD(1.0), name="arg_groups_lists",
                                       groups=[[group_variables[0], group_variables[2]]])
    grouped.build(group_variables)
    tf.function(lambda: grouped.apply(rank_plus_one(group_variables), group_variables))()
    cases["arg_groups_lists"] = {"after_each_step": [[v.numpy().tolist()
                                                      for v in group_variables]]}
    try:
        apply_steps("arg_bpps_sparse", sparse_rows, shapes=((4, 2),), backward_passes_per_step=2)
        cases["bpps_sparse_error"] = None
    except ValueError as error:
        cases["bpps_sparse_error"] = str(error)
    cases["num_groups_warnings"] = [str(w.message) for w in caught
                                    if issubclass(w.category, DeprecationWarning)]
    results["arguments"] = gather(cases)

    timed("arguments")
    # ---- 3. one 2-rank step with model.fit == one 1-rank step on the doubled batch -----------
    model = mlp(seed=1)
    start = weights(model)
    model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.SGD(0.5)), loss=LOSS)
    model.fit(x_rank, y_rank, batch_size=b, epochs=1, shuffle=False, verbose=0,
              callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0)])
    distributed_step = weights(model)

    def one_plain_step(x_, y_, lr):
        reference = mlp(seed=1)
        reference.compile(optimizer=keras.optimizers.SGD(lr), loss=LOSS)
        reference.fit(x_, y_, batch_size=len(x_), epochs=1, shuffle=False, verbose=0)
        return weights(reference)

    big_batch_step = one_plain_step(x, y, 0.5)
    results["fit_step"] = {
        "optimizer_class": type(model.optimizer).__name__,
        "max_diff_vs_big_batch": max_diff(distributed_step, big_batch_step),
        "max_change": max_diff(distributed_step, start),
        "max_diff_vs_own_batch_only": max_diff(distributed_step,
                                               one_plain_step(x_rank, y_rank, 0.5)),
    }

    timed("fit_step")
    # ---- 4. backward_passes_per_step=2 == one step on the doubled local batch ---------------
    class WeightsAfterEachBatch(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seen = []

        def on_train_batch_end(self, batch, logs=None):
            self.seen.append(weights(self.model))

    accumulation = {}
    for average, reference_lr in ((True, 0.5), (False, 1.0)):
        model = mlp(seed=1)
        optimizer = hvd.DistributedOptimizer(keras.optimizers.SGD(0.5),
                                             name=f"fit_bpps_{average}",
                                             backward_passes_per_step=2,
                                             average_aggregated_gradients=average)
        model.compile(optimizer=optimizer, loss=LOSS)
        recorder = WeightsAfterEachBatch()
        model.fit(x_rank, y_rank, batch_size=b // 2, epochs=1, shuffle=False, verbose=0,
                  callbacks=[recorder])
        reference = big_batch_step if reference_lr == 0.5 else one_plain_step(x, y, 1.0)
        accumulation[f"average_{average}"] = {
            "max_change_after_first_pass": max_diff(recorder.seen[0], start),
            "max_diff_vs_doubled_batch": max_diff(weights(model), reference),
            "iterations": int(optimizer.iterations),
        }
    results["accumulation"] = accumulation

    timed("accumulation")
    # ---- 5. ranks that start apart end identical; logs are averaged --------------------------
    class RawLogs(keras.callbacks.Callback):  # placed before MetricAverageCallback
        def on_train_begin(self, logs=None):
            self.losses = []

        def on_epoch_end(self, epoch, logs=None):
            self.losses.append(float(logs["loss"]))

    model = mlp(seed=100 + r)
    initial = digest(weights(model))
    lr = 0.01 * n
    model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.Adam(lr), name="fit_adam"),
                  loss=LOSS, metrics=["accuracy"])
    raw = RawLogs()
    history = model.fit(x_rank, y_rank, batch_size=8, epochs=3, verbose=0, callbacks=[
        hvd.callbacks.BroadcastGlobalVariablesCallback(0), raw,
        hvd.callbacks.MetricAverageCallback(),
        hvd.callbacks.LearningRateWarmupCallback(initial_lr=lr, warmup_epochs=1)])
    trained_adam = model
    adam_state = digest(v.numpy() for v in model.optimizer.variables)
    results["fit_identical"] = {
        "initial_digests": gather(initial), "final_digests": gather(digest(weights(model))),
        "optimizer_digests": gather(adam_state),
        "histories": gather({k: [float(v) for v in vs] for k, vs in history.history.items()}),
        "raw_losses": gather(raw.losses), "final_lr": float(model.optimizer.learning_rate),
    }

    # A model without keras.Input is built by its first batch: broadcast after it (Horovod's way).
    model = mlp(seed=200 + r, built=False)
    model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.SGD(0.1), name="fit_lazy"),
                  loss=LOSS)
    model.fit(x_rank, y_rank, batch_size=8, epochs=1, verbose=0,
              callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0)])
    results["fit_lazy_digests"] = gather(digest(weights(model)))

    # Local variables stay as they are on each rank.
    class RankTag(keras.layers.Layer):
        def build(self, input_shape):
            self.tag = self.add_weight(shape=(2,), initializer="zeros", trainable=False)

        def call(self, inputs):
            return inputs

    keras.utils.set_random_seed(300 + r)
    tag = RankTag()
    model = keras.Sequential([keras.Input((8,)), tag, keras.layers.Dense(3, activation="softmax")])
    tag.tag.assign(np.full(2, float(r), "float32"))
    model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.SGD(0.1), name="fit_local"),
                  loss=LOSS)
    model.fit(x_rank, y_rank, batch_size=b, epochs=1, verbose=0, callbacks=[
        hvd.callbacks.BroadcastGlobalVariablesCallback(0, local_variables=[tag.tag])])
    results["fit_local_variables"] = {"tags": gather(tag.tag.numpy().tolist()),
                                      "dense": gather(digest(weights(model)[1:]))}

    timed("fit_identical")
    # ---- 6. fp16 compression: half the bytes, and training still converges -----------------
    centers = rng.normal(scale=3.0, size=(3, 8))
    labels = rng.integers(0, 3, size=512)
    blobs = (centers[labels] + rng.normal(size=(512, 8))).astype("float32")
    blobs_rank, labels_rank = distributed.shard(blobs, labels)
    compression = {}
    for kind, method in (("none", hvd.Compression.none), ("fp16", hvd.Compression.fp16)):
        model = mlp(seed=400)
        model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.SGD(0.1, momentum=0.9),
                                                         name=f"fit_compression_{kind}",
                                                         compression=method),
                      loss=LOSS, metrics=["accuracy"])
        history = model.fit(blobs_rank, labels_rank, batch_size=32, epochs=3, verbose=0,
                            shuffle=False, callbacks=[hvd.callbacks.MetricAverageCallback()])
        compression[kind] = {"loss": history.history["loss"],
                             "accuracy": history.history["accuracy"], "weights": weights(model),
                             "digests": gather(digest(weights(model)))}
    results["compression"] = {
        kind: {k: v for k, v in c.items() if k != "weights"} for kind, c in compression.items()}
    results["compression"]["max_weight_diff"] = max_diff(compression["none"]["weights"],
                                                         compression["fp16"]["weights"])

    timed("compression")
    # ---- 7. sparse gradients from a real Embedding layer -------------------------------------
    tokens = rng.integers(0, 10, size=(64, 3))

    def embedding_model():
        keras.utils.set_random_seed(5)
        return keras.Sequential([
            keras.Input((3,), dtype="int32"), keras.layers.Embedding(10, 4),
            keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])

    tokens_rank, y_tokens = distributed.shard(tokens, y)
    embedding = {}
    for kind, as_dense in (("sparse", False), ("dense", True)):
        model = embedding_model()
        model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.SGD(0.5),
                                                         name=f"fit_embedding_{kind}",
                                                         sparse_as_dense=as_dense), loss=LOSS)
        model.fit(tokens_rank, y_tokens, batch_size=len(tokens_rank), epochs=1, shuffle=False,
                  verbose=0)
        embedding[kind] = weights(model)
    reference = embedding_model()
    reference.compile(optimizer=keras.optimizers.SGD(0.5), loss=LOSS)
    reference.fit(tokens, y, batch_size=len(tokens), epochs=1, shuffle=False, verbose=0)
    results["embedding"] = {kind: max_diff(w, weights(reference)) for kind, w in embedding.items()}

    timed("embedding")
    # ---- 8. learning-rate callbacks, batch by batch, with momentum correction ----------------
    class LearningRates(keras.callbacks.Callback):  # placed after the schedule callbacks
        def on_train_begin(self, logs=None):
            self.rates, self.logged = [], []

        def on_train_batch_begin(self, batch, logs=None):
            self.rates.append(float(self.model.optimizer.learning_rate))

        def on_epoch_end(self, epoch, logs=None):
            self.logged.append(logs.get("lr"))

    class HorovodLiteral(keras.callbacks.Callback):
        """Horovod 0.28.1's own procedure: set lr, multiply momentum by new/old for the batch,
        restore it after. Only meaningful with run_eagerly=True, where the momentum is read
        at every step (a compiled step has it as a constant)."""

        def __init__(self, lr_of):
            super().__init__()
            self.lr_of, self.epoch, self.restore = lr_of, 0, None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            new = self.lr_of(self.epoch, batch)
            if new is None:
                return
            optimizer = self.model.optimizer
            old = float(optimizer.learning_rate)
            optimizer.learning_rate = new
            self.restore = optimizer.momentum
            optimizer.momentum = self.restore * new / old

        def on_train_batch_end(self, batch, logs=None):
            if self.restore is not None:
                self.model.optimizer.momentum, self.restore = self.restore, None

    steps, epochs, warmup, initial_lr = 4, 3, 2, 0.2

    def warmup_lr(epoch, batch):  # Horovod's formula, written out
        if epoch >= warmup:
            return None
        e = epoch + batch / steps + 1 / steps
        return initial_lr / n * (e * (n - 1) / warmup + 1)

    def staircase_lr(epoch, batch):  # multiplier 0.5 from epoch 1 until epoch 3 (exclusive)
        return initial_lr * 0.5 ** (epoch - 1) if 1 <= epoch < 3 and batch == 0 else None

    x_small, y_small = x_rank[:steps * 8], y_rank[:steps * 8]

    def run_schedule(make_callback, optimizer, run_eagerly=False, epochs_=epochs):
        model = mlp(seed=7)
        model.compile(optimizer=optimizer, loss=LOSS, run_eagerly=run_eagerly)
        rates = LearningRates()
        model.fit(x_small, y_small, batch_size=8, epochs=epochs_, shuffle=False, verbose=0,
                  callbacks=[make_callback(), rates])
        return {"rates": rates.rates, "logged": rates.logged, "weights": weights(model)}

    def compare(name, ours, literal_of, optimizer_of, epochs_=epochs, control=None):
        mine = run_schedule(ours, optimizer_of(), epochs_=epochs_)
        entry = {"rates": mine["rates"], "logged": mine["logged"]}
        if literal_of is None:  # the rates only
            schedules[name] = entry
            return
        literal = run_schedule(lambda: HorovodLiteral(literal_of), optimizer_of(),
                               run_eagerly=True, epochs_=epochs_)
        entry["max_diff_vs_horovod"] = max_diff(mine["weights"], literal["weights"])
        if control is not None:
            entry["max_diff_without_correction"] = max_diff(
                run_schedule(control, optimizer_of(), epochs_=epochs_)["weights"],
                literal["weights"])
        schedules[name] = entry

    def sgd(nesterov=False):
        return lambda: keras.optimizers.SGD(initial_lr, momentum=0.9, nesterov=nesterov)

    schedules = {}
    compare("warmup_sgd", lambda: hvd.callbacks.LearningRateWarmupCallback(
        initial_lr, warmup_epochs=warmup), warmup_lr, sgd(), control=lambda: (
        hvd.callbacks.LearningRateWarmupCallback(initial_lr, warmup_epochs=warmup,
                                                 momentum_correction=False)))
    compare("warmup_nesterov", lambda: hvd.callbacks.LearningRateWarmupCallback(
        initial_lr, warmup_epochs=warmup, steps_per_epoch=steps), warmup_lr, sgd(nesterov=True))
    compare("warmup_rmsprop", lambda: hvd.callbacks.LearningRateWarmupCallback(
        initial_lr, warmup_epochs=warmup), warmup_lr,
        lambda: keras.optimizers.RMSprop(initial_lr, momentum=0.5))
    compare("schedule_staircase", lambda: hvd.callbacks.LearningRateScheduleCallback(
        initial_lr, multiplier=0.5, start_epoch=1, end_epoch=3), staircase_lr, sgd(),
        epochs_=4)
    compare("schedule_smooth", lambda: hvd.callbacks.LearningRateScheduleCallback(
        initial_lr, multiplier=lambda epoch: (1 + epoch) ** -1.0, end_epoch=2, staircase=False),
        None, sgd())
    results["schedules"] = {"steps": steps, "epochs": epochs, "warmup": warmup,
                            "initial_lr": initial_lr, **schedules}

    timed("schedules")
    # ---- 9. broadcast_global_variables: every model of the process, with its optimizer -------
    model = mlp(seed=500 + r)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss=LOSS)
    model.fit(x_rank, y_rank, batch_size=8, epochs=1, verbose=0)  # rank-specific state
    before = digest(weights(model) + [v.numpy() for v in model.optimizer.variables])
    hvd.broadcast_global_variables(0)
    results["broadcast_global_variables"] = {
        "before": gather(before),
        "after": gather(digest(weights(model) + [v.numpy() for v in model.optimizer.variables])),
        "other_model_after": gather(digest(weights(trained_adam))),
    }

    timed("broadcast_global_variables")
    # ---- 10. save, load with plain Keras, load with hvd.load_model -------------------------
    path = out_dir / "adam.keras"
    if r == 0:
        trained_adam.save(path)
    gather(None)  # wait for the file
    plain = keras.models.load_model(path)
    loaded = hvd.load_model(path, compression=hvd.Compression.fp16)
    loaded_state = digest(v.numpy() for v in loaded.optimizer.variables)
    loaded.fit(x_rank, y_rank, batch_size=b, epochs=1, shuffle=False, verbose=0)
    results["load_model"] = {
        "plain_optimizer_class": type(plain.optimizer).__name__,
        "plain_is_distributed": hasattr(plain.optimizer, "register_local_var"),
        "optimizer_class": type(loaded.optimizer).__name__,
        "state_restored": loaded_state == adam_state,
        "digests_after_training": gather(digest(weights(loaded))),
    }

    timed("load_model")
    # ---- 11. BestModelCheckpoint and XLA ----------------------------------------------------
    best = out_dir / f"best-rank{r}.keras"
    model = mlp(seed=8)
    model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.SGD(0.1), name="fit_best"),
                  loss=LOSS)
    checkpoint = hvd.callbacks.BestModelCheckpoint(monitor="val_loss", filepath=str(best))
    model.fit(x_rank, y_rank, batch_size=8, epochs=2, verbose=0, validation_data=(x, y),
              callbacks=[hvd.callbacks.MetricAverageCallback(), checkpoint] if r == 0 else
              [hvd.callbacks.MetricAverageCallback()])
    results["best_checkpoint"] = {"saved": gather(best.exists()), "best": float(checkpoint.best)
                                  if r == 0 else None}

    model = mlp(seed=1)
    model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.SGD(0.1), name="xla"),
                  loss=LOSS, jit_compile=True)
    try:
        model.fit(x_rank, y_rank, batch_size=b, epochs=1, verbose=0)
        results["xla_error"] = None
    except Exception as error:  # Keras may wrap it; the message is what matters
        results["xla_error"] = f"{type(error).__name__}: {error}"

    timed("checkpoint_and_xla")
    gather(None)
    if r == 0:
        hvd.stop_timeline()
        (out_dir / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
