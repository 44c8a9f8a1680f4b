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
        done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "KERAS_BACKEND": backend})
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


# Host device 1 reaches the all-reduce `late` seconds after device 0 (XLA warns after 1 s).
LATE_DEVICE = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from train_mnist_data_parallel import host_device_flags
os.environ["XLA_FLAGS"] = " ".join([*host_device_flags(2), *sys.argv[3:],
                                    "--xla_cpu_collective_call_warn_stuck_timeout_seconds=1"])
import jax
from jax.sharding import NamedSharding, PartitionSpec

def arrive(x, device):
    time.sleep(float(sys.argv[2]) if device == 1 else 0)
    return x

def step(x):
    x = jax.pure_callback(arrive, jax.ShapeDtypeStruct(x.shape, x.dtype), x,
                          jax.lax.axis_index("d"))
    return jax.lax.psum(x, "d")

mesh = jax.make_mesh((2,), ("d",))
x = jax.device_put(jax.numpy.ones(2), NamedSharding(mesh, PartitionSpec("d")))
print("sum", jax.jit(jax.shard_map(step, mesh=mesh, in_specs=PartitionSpec("d"),
                                   out_specs=PartitionSpec()))(x))
"""


def test_a_host_device_late_at_the_all_reduce_is_waited_for_not_killed():
    """XLA:CPU aborts the process when a host device keeps the others waiting at a collective
    (what a busy CI machine did to chapter 07); the script's flags allow minutes. The device
    sleeps rather than computes: the other test worker keeps the cores."""
    def late(seconds, *flags):
        return subprocess.run([sys.executable, "-c", LATE_DEVICE, str(SCRIPTS), str(seconds),
                               *flags], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"})

    killed = late(3, "--xla_cpu_collective_call_terminate_timeout_seconds=1")
    assert killed.returncode == -6 and "Termination timeout" in killed.stderr, killed.stderr[-2000:]
    waited = late(44)  # XLA's own limit would end it at 1 + 40 s
    assert waited.returncode == 0 and "sum [2.]" in waited.stdout, waited.stderr[-2000:]


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
