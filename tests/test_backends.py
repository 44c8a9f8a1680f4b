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
