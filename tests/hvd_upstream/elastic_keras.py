"""An elastic Keras job that loses a rank mid-epoch and goes on (tests/test_horovod_upstream.py).

Started as `horovodrun -np 2 --min-np 1 -H localhost:1,127.0.0.1:1 --gloo python THIS OUT_DIR`:
two "hosts" that are both this machine, because elastic Horovod removes (blacklists) the host of
a failed worker and needs another one to go on with. The worker of the second rank kills itself
(SIGKILL, no goodbye) at the start of batch KILL_BATCH of epoch KILL_EPOCH. The survivor's
allreduce fails, `hvd.elastic.run` restores the last commit, Horovod re-forms the job with one
rank, and training resumes from the committed state (`fit(epochs=EPOCHS - state.epoch)`, as
Horovod's elastic examples do: its UpdateEpochStateCallback counts epochs across resets).
The survivor writes what happened to OUT_DIR/elastic.json: every commit (epoch, batch, digest
of the weights and optimizer state), the reset (the state it restored, the new size), the
epochs it trained and at which size.
"""

import hashlib
import json
import os
import signal
import sys
from pathlib import Path

import utils.horovod_keras as hvd
from utils import distributed

hvd.init()
distributed.set_threads(1)
import keras  # noqa: E402
import numpy as np  # noqa: E402

EPOCHS, STEPS, BATCH = 4, 6, 8
KILL_EPOCH, KILL_BATCH = 1, 3
BATCHES_PER_COMMIT = 2  # commits after batches 1, 3, 5 and at each epoch's end

out = Path(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.normal(size=(STEPS * BATCH, 4)).astype("float32")
y = x @ np.array([[1.0], [2.0], [-1.0], [0.5]], dtype="float32")

keras.utils.set_random_seed(1 + hvd.rank())  # different initial weights: the sync must fix it
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.SGD(0.05, momentum=0.5)),
              loss="mse", jit_compile=False)
state = hvd.elastic.KerasState(model, batch=0, epoch=0)
log = {"commits": [], "resets": [], "epochs": [], "last_batch": None}


def digest():
    weights = [np.asarray(w) for w in model.get_weights()]
    weights += [np.asarray(v) for v in model.optimizer.variables]  # momentum, iterations
    return hashlib.sha256(b"".join(w.tobytes() for w in weights)).hexdigest()


save = state.save


def recorded_save():  # what CommitStateCallback commits, recorded
    save()
    log["commits"].append({"epoch": state.epoch, "batch": state.batch, "digest": digest(),
                           "size": hvd.size()})


state.save = recorded_save
state.register_reset_callbacks([lambda: log["resets"].append(  # after the restore
    {"epoch": state.epoch, "batch": state.batch, "digest": digest(), "size": hvd.size(),
     "last_batch_before": log["last_batch"]})])


class Events(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (hvd.size() == 2 and hvd.rank() == 1 and self.epoch == KILL_EPOCH
                and batch == KILL_BATCH):
            os.kill(os.getpid(), signal.SIGKILL)  # a lost worker: no exception, no goodbye

    def on_train_batch_end(self, batch, logs=None):
        log["last_batch"] = {"epoch": self.epoch, "batch": batch, "digest": digest()}

    def on_epoch_end(self, epoch, logs=None):  # after UpdateEpochStateCallback: epochs done
        log["epochs"].append({"epochs_done": state.epoch, "size": hvd.size(),
                              "loss": float(logs["loss"])})


@hvd.elastic.run
def train(state):
    model.fit(x[hvd.rank()::hvd.size()], y[hvd.rank()::hvd.size()], batch_size=BATCH // 2,
              steps_per_epoch=STEPS, epochs=EPOCHS - state.epoch, verbose=0,  # as Horovod does
              shuffle=False, callbacks=[hvd.elastic.UpdateBatchStateCallback(state),
                                        hvd.elastic.UpdateEpochStateCallback(state),
                                        hvd.elastic.CommitStateCallback(state, BATCHES_PER_COMMIT),
                                        Events()])


train(state)
if hvd.rank() == 0:
    log["final"] = {"size": hvd.size(), "epoch": state.epoch, "digest": digest()}
    (out / "elastic.json").write_text(json.dumps(log, indent=1))
