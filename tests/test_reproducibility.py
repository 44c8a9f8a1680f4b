"""Same seed, same results: chapters 01 and 03, run twice headless at their grading size (the
PARAMETERS of utils/grading/chapter_tests/NN_name.py), record the same metrics both times.

Chapter 01 is NumPy and scikit-learn on one thread: its metrics must be identical. Chapter 03
trains Keras models with oneDNN, which does not promise bit-identical sums when threads are
scheduled differently, so its accuracies may differ by at most ACCURACY_TOLERANCE. The runs at
learner size are nbval's (make test) and `make claims`, which shows how far other seeds move
each claim; here the point is that one seed gives one answer, which the small size shows as
well as the large one, in seconds.
"""

import pytest

from utils import grading, runner
from utils.claims import Mode

NOTEBOOKS = ["01_sigmoid_neuron", "03_mnist_mlp"]
ACCURACY_TOLERANCE = 0.002


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """For each chapter, the metrics of two fresh headless runs at its grading size."""
    out = tmp_path_factory.mktemp("reproducibility")
    chapters = grading.find_chapter_tests(grading.DEFAULT_TESTS)
    metrics = {}
    for name in NOTEBOOKS:
        parameters = chapters[name[:2]].parameters
        results = [runner.execute(runner.NOTEBOOKS / f"{name}.ipynb", out / f"{name}.{run}.ipynb",
                                  parameters, 600, Mode.NOTICE) for run in (1, 2)]
        assert [r["status"] for r in results] == ["ok", "ok"], results
        metrics[name] = [r["metrics"] for r in results]
    return metrics


def test_chapter_01_records_identical_metrics_every_run(runs):
    first, again = runs["01_sigmoid_neuron"]
    assert len(first) >= 3
    assert first == again


def test_chapter_03_records_the_same_accuracies_every_run(runs):
    first, again = runs["03_mnist_mlp"]
    assert set(first) == set(again) >= {"first_model_test_accuracy", "best_mlp_test_accuracy"}
    for name in first:
        assert again[name] == pytest.approx(first[name], abs=ACCURACY_TOLERANCE), name
