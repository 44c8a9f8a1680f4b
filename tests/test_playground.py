"""Tests for utils.playground: the 2-D data sets, the plots and the headless-safe widget."""

from __future__ import annotations

import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from utils import playground  # noqa: E402


def nearest_centroid(X):
    """A stand-in model: P(class 1) from the sign of x1 + x2 (right for the blobs)."""
    return 1 / (1 + np.exp(-10 * (X[:, 0] + X[:, 1])))


@pytest.mark.parametrize("name", playground.DATASETS)
def test_every_data_set_has_balanced_labels_and_points_in_the_square(name):
    X, y = playground.make_dataset(name, n=301, noise=0.05, seed=3)
    assert X.shape == (301, 2) and X.dtype == np.float32
    assert y.shape == (301,) and set(np.unique(y)) == {0, 1}
    assert abs(int(y.sum()) - 150) <= 1
    assert np.abs(X).max() < 1.5


@pytest.mark.parametrize("name", playground.DATASETS)
def test_the_same_seed_gives_the_same_points_and_another_seed_does_not(name):
    a = playground.make_dataset(name, n=50, seed=7)
    b = playground.make_dataset(name, n=50, seed=7)
    c = playground.make_dataset(name, n=50, seed=8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_without_noise_the_circles_are_separated_by_a_gap():
    X, y = playground.circles(n=400, noise=0.0, seed=0)
    radius = np.hypot(X[:, 0], X[:, 1])
    assert radius[y == 1].max() < 0.5 + 1e-6 < 0.7 - 1e-6 < radius[y == 0].min()


def test_the_quadrants_label_is_the_sign_of_the_product_without_noise():
    X, y = playground.make_dataset("xor", n=400, noise=0.0, seed=0)
    assert np.array_equal(y, (X[:, 0] * X[:, 1] > 0).astype(int))


def test_the_two_spirals_are_mirror_images():
    X, y = playground.spirals(n=200, noise=0.0, seed=0)
    arm0 = X[y == 0][np.argsort(np.hypot(*X[y == 0].T))]
    arm1 = X[y == 1][np.argsort(np.hypot(*X[y == 1].T))]
    assert np.allclose(arm0, -arm1, atol=1e-6)


def test_aliases_name_the_same_data_set():
    assert playground.dataset_name("XOR") == "quadrants"
    assert playground.dataset_name("spiral") == "spirals"


@pytest.mark.parametrize("bad_n", [0, 3, -10])
def test_make_dataset_rejects_too_few_points(bad_n):
    with pytest.raises(ValueError, match="at least 4"):
        playground.make_dataset("blobs", n=bad_n)


@pytest.mark.parametrize("bad_n", [100.0, "100", True, None])
def test_make_dataset_rejects_a_number_of_points_that_is_not_an_int(bad_n):
    with pytest.raises(TypeError, match="must be an int"):
        playground.make_dataset("circles", n=bad_n)


@pytest.mark.parametrize("bad_noise", [-0.1, 1.5, float("nan"), float("inf")])
def test_make_dataset_rejects_noise_outside_zero_to_one(bad_noise):
    with pytest.raises(ValueError, match="noise must be between 0 and 1"):
        playground.make_dataset("spirals", noise=bad_noise)


@pytest.mark.parametrize("bad_noise", ["0.1", None, True])
def test_make_dataset_rejects_noise_that_is_not_a_number(bad_noise):
    with pytest.raises(TypeError, match="noise must be a number"):
        playground.make_dataset("quadrants", noise=bad_noise)


def test_make_dataset_names_the_choices_for_an_unknown_data_set():
    with pytest.raises(ValueError, match="blobs.*circles.*quadrants.*spirals"):
        playground.make_dataset("moons")


def test_make_dataset_rejects_a_negative_seed():
    with pytest.raises(ValueError, match="seed"):
        playground.make_dataset("blobs", seed=-1)


def test_accuracy_of_a_good_model_on_the_blobs_is_high():
    X, y = playground.blobs(n=400, noise=0.05, seed=1)
    assert playground.accuracy(nearest_centroid, X, y) > 0.97


def test_predict_proba_accepts_two_column_softmax_outputs():
    X = np.zeros((5, 2), dtype=np.float32)
    out = playground.predict_proba(lambda points: np.tile([0.2, 0.8], (len(points), 1)), X)
    assert np.allclose(out, 0.8)


def test_predict_proba_rejects_a_model_that_returns_the_wrong_number_of_values():
    with pytest.raises(ValueError, match="one probability per point"):
        playground.predict_proba(lambda points: np.ones(3), np.zeros((5, 2)))


def test_plot_decision_boundary_rejects_points_that_are_not_2d():
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        playground.plot_decision_boundary(nearest_centroid, np.zeros((5, 3)), np.zeros(5))


def test_plot_decision_boundary_rejects_labels_of_the_wrong_length():
    with pytest.raises(ValueError, match="5 points but y has 4 labels"):
        playground.plot_decision_boundary(nearest_centroid, np.zeros((5, 2)), np.zeros(4))


def test_plot_decision_boundary_draws_the_boundary_and_the_points():
    import matplotlib.pyplot as plt

    X, y = playground.blobs(n=100, seed=0)
    ax = playground.plot_decision_boundary(nearest_centroid, X, y, resolution=30, title="blobs")
    assert ax.get_title() == "blobs" and len(ax.collections) >= 2
    plt.close("all")


def test_plot_runs_draws_one_panel_per_run_and_loss_rows_on_request():
    import matplotlib.pyplot as plt

    X, y = playground.blobs(n=60, seed=0)
    run = playground.PlaygroundRun(nearest_centroid, X, y, X, y,
                                   {"loss": [0.7, 0.3], "val_loss": [0.7, 0.4]}, "blobs")
    fig = playground.plot_runs([run, run, run], columns=2, losses=True)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 8 and len(visible) == 6
    plt.close("all")


def test_plot_runs_draws_the_training_points_on_request():
    import matplotlib.pyplot as plt

    X_train, y_train = playground.blobs(n=40, seed=0)
    X_test, y_test = playground.blobs(n=100, seed=1)
    run = playground.PlaygroundRun(nearest_centroid, X_train, y_train, X_test, y_test)
    fig = playground.plot_runs([run], points="train")
    scatter = fig.axes[0].collections[-1]
    assert len(scatter.get_offsets()) == 40
    plt.close("all")


def test_plot_runs_rejects_an_unknown_choice_of_points():
    X, y = playground.blobs(n=40, seed=0)
    run = playground.PlaygroundRun(nearest_centroid, X, y, X, y)
    with pytest.raises(ValueError, match="'test' or 'train'"):
        playground.plot_runs([run], points="validation")


def test_plot_runs_rejects_an_empty_list():
    with pytest.raises(ValueError, match="non-empty"):
        playground.plot_runs([])


def test_a_plain_python_process_has_no_widget_frontend(monkeypatch):
    monkeypatch.delenv("DL_COURSE_INTERACTIVE", raising=False)
    assert playground.frontend_present() is False


def test_colabs_shell_a_subclass_named_shell_has_a_widget_frontend(monkeypatch):
    import types

    import IPython
    from ipykernel.zmqshell import ZMQInteractiveShell

    monkeypatch.delenv("DL_COURSE_INTERACTIVE", raising=False)
    colab_shell = type("Shell", (ZMQInteractiveShell,), {})  # google/colab/_shell.py's class
    monkeypatch.setattr(IPython, "get_ipython", lambda: colab_shell.__new__(colab_shell))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert playground.frontend_present() is True


def test_the_environment_variable_forces_the_frontend_detection(monkeypatch):
    monkeypatch.setenv("DL_COURSE_INTERACTIVE", "1")
    assert playground.frontend_present() is True
    monkeypatch.setenv("DL_COURSE_INTERACTIVE", "0")
    assert playground.frontend_present() is False


def test_the_interactive_playground_headless_returns_none_and_never_trains(capsys):
    calls = []
    assert playground.interactive_playground(lambda **kw: calls.append(kw), force=False) is None
    assert calls == [] and "headless" in capsys.readouterr().out


def test_the_interactive_playground_rejects_an_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation"):
        playground.interactive_playground(lambda **kw: None, force=False, activations=["swish"])


def test_pressing_train_calls_the_training_function_with_the_widget_values():
    pytest.importorskip("ipywidgets")
    import matplotlib.pyplot as plt

    X, y = playground.blobs(n=60, seed=0)
    calls = []

    def train(**settings):
        calls.append(settings)
        return playground.PlaygroundRun(nearest_centroid, X, y, X, y,
                                        {"loss": [0.5], "val_loss": [0.6]}, "blobs")

    box = playground.interactive_playground(train, force=True)
    buttons = [w for row in box.children[:3] for w in getattr(row, "children", ())
               if type(w).__name__ == "Button"]
    buttons[0].click()
    plt.close("all")
    assert calls == [{"dataset": "blobs", "hidden": (3,), "activation": "tanh",
                      "learning_rate": pytest.approx(0.03)}]


