"""Same seed, same results: chapters 01 and 03 run twice headless record the same metrics.

Chapter 01 is NumPy and scikit-learn on one thread: its metrics must be identical. Chapter 03
trains Keras models with oneDNN, which does not promise bit-identical sums when threads are
scheduled differently, so its accuracies may differ by at most ACCURACY_TOLERANCE (20 of the
10,000 test images). On our 2-core machines both runs gave identical values (0.8512 and 0.981).
Two runs take about 4.5 minutes on 2 cores.
"""

import json

import pytest

from utils import runner

NOTEBOOKS = ["01_sigmoid_neuron", "03_mnist_mlp"]
ACCURACY_TOLERANCE = 0.002


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The metrics of the stored outputs, then of two fresh headless runs."""
    out = tmp_path_factory.mktemp("reproducibility")
    metrics = [{name: runner.metrics_of(json.loads((runner.NOTEBOOKS / f"{name}.ipynb")
                                                   .read_text())) for name in NOTEBOOKS}]
    for run in ("first", "second"):
        summary = out / f"{run}.json"
        code = runner.main([*NOTEBOOKS, "--out", str(out / run), "--summary", str(summary)])
        assert code == 0, f"the {run} run failed: see {summary}"
        metrics.append({nb["name"]: nb["metrics"]
                        for nb in json.loads(summary.read_text())["notebooks"]})
    return metrics


def test_chapter_01_records_identical_metrics_every_run(runs):
    stored, first, second = (run["01_sigmoid_neuron"] for run in runs)
    assert len(first) >= 3
    assert first == second == stored


def test_chapter_03_records_the_same_accuracies_every_run(runs):
    stored, first, second = (run["03_mnist_mlp"] for run in runs)
    assert set(first) == set(second) == set(stored) >= {"first_model_test_accuracy",
                                                         "best_mlp_test_accuracy"}
    for name in first:
        assert first[name] == pytest.approx(second[name], abs=ACCURACY_TOLERANCE), name
        assert first[name] == pytest.approx(stored[name], abs=ACCURACY_TOLERANCE), (
            f"{name} differs from the stored outputs: re-run `make outputs NOTEBOOKS=03`?")
