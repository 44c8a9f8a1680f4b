"""Same seed, same results: chapters 01 and 03 run headless record the metrics stored in their
outputs (which come from an earlier run, `make outputs`).

Chapter 01 is NumPy and scikit-learn on one thread: its metrics must be identical. Chapter 03
trains Keras models with oneDNN, which does not promise bit-identical sums when threads are
scheduled differently, so its accuracies may differ by at most ACCURACY_TOLERANCE (20 of the
10,000 test images). On our 2-core machines the runs gave identical values. One run takes about
2 minutes on 2 cores (nbval executes both chapters again, but checks no metric).
"""

import json

import pytest

from utils import runner

NOTEBOOKS = ["01_sigmoid_neuron", "03_mnist_mlp"]
ACCURACY_TOLERANCE = 0.002


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The metrics of the stored outputs, then of a fresh headless run."""
    out = tmp_path_factory.mktemp("reproducibility")
    metrics = [{name: runner.metrics_of(json.loads((runner.NOTEBOOKS / f"{name}.ipynb")
                                                   .read_text())) for name in NOTEBOOKS}]
    summary = out / "summary.json"
    code = runner.main([*NOTEBOOKS, "--out", str(out / "executed"), "--summary", str(summary)])
    assert code == 0, f"the run failed: see {summary}"
    fresh = json.loads(summary.read_text())["notebooks"]
    metrics.append({notebook["name"]: notebook["metrics"] for notebook in fresh})
    return metrics


def test_chapter_01_records_identical_metrics_every_run(runs):
    stored, fresh = (run["01_sigmoid_neuron"] for run in runs)
    assert len(fresh) >= 3
    assert fresh == stored


def test_chapter_03_records_the_same_accuracies_every_run(runs):
    stored, fresh = (run["03_mnist_mlp"] for run in runs)
    assert set(fresh) == set(stored) >= {"first_model_test_accuracy", "best_mlp_test_accuracy"}
    for name in fresh:
        assert fresh[name] == pytest.approx(stored[name], abs=ACCURACY_TOLERANCE), (
            f"{name} differs from the stored outputs: re-run `make outputs NOTEBOOKS=03`?")
