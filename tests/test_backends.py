"""Keras 3 on its other backends: the MLP chapter, at grading size, on JAX and on PyTorch.

`make run BACKEND=jax` is what a learner runs; this is the same runner, with the grader's smaller
parameters, both backends at once (most of a grading-size run is one core's work). The claims run
as notices, as in grading: at this size they are not the text's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from utils import grading, paths

BACKENDS = ["jax", "torch"]
CHAPTER = "03"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    parameters = grading.find_chapter_tests(grading.DEFAULT_TESTS)[CHAPTER].parameters
    folder = tmp_path_factory.mktemp("backends")

    def run(backend):
        out = folder / backend
        command = [sys.executable, "-m", "utils.runner", CHAPTER, "--claims", "notice",
                   "--out", str(out), "--summary", str(out / "summary.json")]
        for name, value in parameters.items():
            command += ["-p", f"{name}={json.dumps(value)}"]
        # One thread each (torch's OpenMP, JAX's XLA pool), as the grader gives a worker: the
        # two runs share two cores with the other test worker, and more threads than cores
        # made them spin against each other (over 600 s, against 59 and 79 s alone).
        done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "KERAS_BACKEND": backend,
                                   "OMP_NUM_THREADS": "1", "PJRT_NPROC": "1"})
        return done, out

    with ThreadPoolExecutor(max_workers=len(BACKENDS)) as pool:
        return dict(zip(BACKENDS, pool.map(run, BACKENDS), strict=True))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_mlp_chapter_runs_on_another_backend(runs, backend):
    done, out = runs[backend]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    notebook = json.loads(next(out.glob(f"{CHAPTER}_*.ipynb")).read_text())
    setup = next(c for c in notebook["cells"] if "utils.setup_notebook(" in "".join(c["source"]))
    printed = "".join("".join(o.get("text", "")) for o in setup["outputs"])
    assert f"backend {backend} " in printed, printed
    summary = json.loads((out / "summary.json").read_text())["notebooks"][0]
    assert summary["metrics"]["best_mlp_test_accuracy"] > 0.95, summary["metrics"]


def test_a_backend_keras_does_not_have_is_refused_with_the_choices(tmp_path):
    done = subprocess.run([sys.executable, "-m", "utils.runner", CHAPTER, "--out", str(tmp_path)],
                          capture_output=True, text=True, env={**os.environ,
                                                                "KERAS_BACKEND": "mxnet"})
    assert done.returncode == 2 and "expected one of tensorflow, jax, torch" in done.stderr
    assert not any(tmp_path.iterdir())


SCRIPTS = paths.NOTEBOOKS / "scripts"


def test_keras_distribution_trains_data_parallel_over_two_host_devices(tmp_path):
    """Chapter 07's third way, on JAX: one process, the CPU split into two XLA devices."""
    out = tmp_path / "dp.json"
    done = subprocess.run([sys.executable, str(SCRIPTS / "train_mnist_data_parallel.py"),
                           "--devices", "2", "--epochs", "1", "--train-samples", "1024",
                           "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["replicas"] == 2 and len(result["devices"]) == 2
    assert result["global_batch_size"] == 128 and result["images_per_second"] > 0
    assert result["test_accuracy"] > 0.3  # one short epoch, well above chance (0.1)


def test_keras_distribution_script_says_it_needs_jax(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPTS / "train_mnist_data_parallel.py"),
                           "--epochs", "1", "--out", str(tmp_path / "dp.json")],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert done.returncode != 0 and "runs on the JAX backend" in done.stderr
    assert not (tmp_path / "dp.json").exists()


# Steps over two host devices dispatched one after another, as model.fit does, each with a
# gradient all-reduce. argv: the scripts folder, then "script" to set up as the script does.
ASYNC_STEPS = """
import os, sys
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "script":
    from train_mnist_data_parallel import use_host_devices
    use_host_devices(2)
else:
    os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=2"
import jax
from jax.sharding import NamedSharding, PartitionSpec

mesh = jax.make_mesh((2,), ("d",))
w = jax.device_put(jax.numpy.zeros((64, 64)), NamedSharding(mesh, PartitionSpec()))
x = jax.device_put(jax.numpy.ones((256, 64)), NamedSharding(mesh, PartitionSpec("d")))
step = jax.jit(lambda w: w - 0.1 * jax.grad(lambda w: (jax.numpy.tanh(x @ w) ** 2).mean())(w))
for _ in range(500):
    w = step(w)
print("steps done", jax.block_until_ready(w).shape)
"""


def test_two_host_devices_on_one_core_do_not_starve_each_other():
    """What aborted chapter 07 in CI: host devices share XLA's thread pool, and with too few
    threads the device an all-reduce waits for never runs. On one core it always happens, unless
    the script sizes the pool."""
    one_core = {min(os.sched_getaffinity(0))}

    def steps(setup):
        return subprocess.run(
            [sys.executable, "-c", ASYNC_STEPS, str(SCRIPTS), setup], capture_output=True,
            text=True, timeout=120, preexec_fn=lambda: os.sched_setaffinity(0, one_core),
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "XLA_FLAGS":
                 "--xla_cpu_collective_call_warn_stuck_timeout_seconds=1 "
                 "--xla_cpu_collective_call_terminate_timeout_seconds=3"})

    starved = steps("plain")
    assert starved.returncode == -6 and "only 1 of them arrived" in starved.stderr, \
        starved.stdout + starved.stderr[-2000:]
    fed = steps("script")
    assert fed.returncode == 0 and "steps done (64, 64)" in fed.stdout, fed.stderr[-2000:]


GPU_CHECK = paths.ROOT / "tools" / "gpu_check.sh"


def test_the_gpu_check_carries_what_the_gpu_machine_lacks_within_its_64_mib(tmp_path):
    """tools/gpu_check.sh prepare: Keras and its needs as Python 3.12 wheels, MNIST compressed;
    with the repository they must fit the 64 MiB a call to the GPU machine carries."""
    folder = tmp_path / "gpu"
    done = subprocess.run(["bash", str(GPU_CHECK), "prepare", "3.12"], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "GPU_CHECK_DIR": str(folder),
                                                       "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr[-3000:]
    wheels = sorted(path.name for path in (folder / "wheels").iterdir())
    assert [name.split("-")[0] for name in wheels] == ["keras", "namex", "optree"], wheels
    assert "cp312" in wheels[2]
    carried = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    tracked = subprocess.run(["git", "-C", str(paths.ROOT), "ls-files", "-z"], capture_output=True,
                             check=True).stdout.decode().split("\0")
    carried += sum((paths.ROOT / name).stat().st_size for name in tracked
                   if name and (paths.ROOT / name).is_file())
    assert carried < 60 * 2**20, f"{carried / 2**20:.1f} MiB"
    from utils.data import load_mnist

    (x_train, _), (x_test, _) = load_mnist(folder / "data", verbose=False)  # verified arrays
    assert len(x_train) == 60_000 and len(x_test) == 10_000


def test_the_gpu_check_says_to_prepare_first(tmp_path):
    done = subprocess.run(["bash", str(GPU_CHECK), "run", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GPU_CHECK_DIR": str(tmp_path / "none")})
    assert done.returncode == 2 and "gpu_check.sh prepare" in done.stderr


def test_the_gpu_check_never_empties_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "thesis.tex").write_text("months of work")
    done = subprocess.run(["bash", str(GPU_CHECK), "prepare"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "GPU_CHECK_DIR": str(tmp_path)})
    assert done.returncode == 2 and "holds other files" in done.stderr
    assert (tmp_path / "thesis.tex").read_text() == "months of work"


GRADIENT_CHECK = """
import keras, numpy as np
from utils.training import gradients
rng = np.random.default_rng(0)
x, W1, W2 = (rng.normal(size=shape).astype("float32") for shape in [(5, 4), (4, 3), (3, 1)])
hidden = keras.layers.Dense(3, activation="tanh", use_bias=False)
out = keras.layers.Dense(1, use_bias=False)
net = keras.Sequential([keras.Input(shape=(4,)), hidden, out])
hidden.kernel.assign(W1)
out.kernel.assign(W2)
got = gradients(lambda: keras.ops.mean(net(x) ** 2), [hidden.kernel, out.kernel])
h = np.tanh(x @ W1)
d_y = 2 * (h @ W2) / len(x)
d_z = (d_y @ W2.T) * (1 - h ** 2)
for mine, want in zip(got, [x.T @ d_z, h.T @ d_y], strict=True):
    assert np.allclose(keras.ops.convert_to_numpy(mine), want, rtol=1e-4, atol=1e-6)
print("gradients match", keras.backend.backend())
"""


@pytest.mark.parametrize("backend", ["tensorflow", *BACKENDS])
def test_gradients_are_the_chain_rules_on_every_backend(backend):
    done = subprocess.run([sys.executable, "-c", GRADIENT_CHECK], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "KERAS_BACKEND": backend},
                          cwd=paths.ROOT)
    assert done.returncode == 0 and f"gradients match {backend}" in done.stdout, done.stderr[-2000:]
