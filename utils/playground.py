"""A notebook stand-in for the web TensorFlow Playground: 2-D data, decision boundaries, widgets."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np

DATASETS = ("blobs", "circles", "quadrants", "spirals")
ALIASES = {"xor": "quadrants", "gaussian": "blobs", "spiral": "spirals", "circle": "circles"}
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
_FRONTEND_VARIABLES = ("JPY_SESSION_NAME", "VSCODE_PID", "VSCODE_CWD", "VSCODE_IPC_HOOK_CLI")


# --------------------------------------------------------------------------- data sets
def _check_size(n: Any, minimum: int = 4) -> int:
    if isinstance(n, bool) or not isinstance(n, Integral):
        raise TypeError(f"n (the number of points) must be an int, got {type(n).__name__} {n!r}")
    if n < minimum:
        raise ValueError(f"n (the number of points) must be at least {minimum}, got {n}")
    return int(n)


def _check_noise(noise: Any) -> float:
    if isinstance(noise, bool) or not isinstance(noise, Real):
        raise TypeError(f"noise must be a number between 0 and 1, got {type(noise).__name__} "
                        f"{noise!r}")
    if not math.isfinite(noise) or not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be between 0 and 1 (the standard deviation of the jitter, "
                         f"in units of the [-1, 1] square), got {noise!r}")
    return float(noise)


def _rng(seed: Any) -> np.random.Generator:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    return np.random.default_rng(seed)


def _finish(points: np.ndarray, labels: np.ndarray, noise: float,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    points = points + rng.normal(scale=noise, size=points.shape) if noise else points
    order = rng.permutation(len(labels))
    return points[order].astype(np.float32), labels[order].astype(np.int64)


def _labels(n: int) -> np.ndarray:
    return np.repeat([0, 1], [n // 2, n - n // 2])


def blobs(n: int = 400, noise: float = 0.05, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two round Gaussian clouds, one per class, centred at (-0.5, -0.5) and (0.5, 0.5)."""
    n, noise, rng = _check_size(n), _check_noise(noise), _rng(seed)
    labels = _labels(n)
    centres = np.where(labels[:, None] == 1, 0.5, -0.5)
    return _finish(centres + rng.normal(scale=0.18, size=(n, 2)), labels, noise, rng)


def circles(n: int = 400, noise: float = 0.05, seed: int | None = 0,
            ) -> tuple[np.ndarray, np.ndarray]:
    """A disc (class 1, radius < 0.5) inside a ring (class 0, radius 0.7 to 1)."""
    n, noise, rng = _check_size(n), _check_noise(noise), _rng(seed)
    labels = _labels(n)
    radius = np.where(labels == 1, rng.uniform(0.0, 0.5, n), rng.uniform(0.7, 1.0, n))
    angle = rng.uniform(0.0, 2 * np.pi, n)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return _finish(points, labels, noise, rng)


def quadrants(n: int = 400, noise: float = 0.05, seed: int | None = 0,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Points in the four quadrants of [-1, 1]^2; class 1 where x1 and x2 share a sign (XOR)."""
    n, noise, rng = _check_size(n), _check_noise(noise), _rng(seed)
    labels = _labels(n)
    # |x1|, |x2| uniform in [0.05, 1]: a thin empty margin along the axes, as in the web tool
    points = rng.uniform(0.05, 1.0, size=(n, 2))
    first_sign = rng.choice([-1.0, 1.0], size=n)
    # class 1: both coordinates of the same sign; class 0: opposite signs. Noise moves points
    # later, it does not relabel them.
    second_sign = np.where(labels == 1, first_sign, -first_sign)
    points *= np.stack([first_sign, second_sign], axis=1)
    return _finish(points, labels, noise, rng)


def spirals(n: int = 400, noise: float = 0.05, seed: int | None = 0,
            ) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals of 1.75 turns each, reaching radius 1."""
    n, noise, rng = _check_size(n), _check_noise(noise), _rng(seed)
    labels = _labels(n)
    position = np.concatenate([np.linspace(0.0, 1.0, n // 2, endpoint=False),
                               np.linspace(0.0, 1.0, n - n // 2, endpoint=False)])
    angle = 1.75 * 2 * np.pi * position + np.pi * labels
    points = np.stack([position * np.sin(angle), position * np.cos(angle)], axis=1)
    return _finish(points, labels, noise, rng)


_GENERATORS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "blobs": blobs, "circles": circles, "quadrants": quadrants, "spirals": spirals}


def dataset_name(name: Any) -> str:
    """The canonical name of a data set ('xor' -> 'quadrants'), or a clear error."""
    if not isinstance(name, str):
        raise TypeError(f"data set name must be a string, one of {DATASETS}, got {name!r}")
    canonical = ALIASES.get(name.lower(), name.lower())
    if canonical not in _GENERATORS:
        raise ValueError(f"unknown data set {name!r}; choose one of {DATASETS} "
                         f"(or an alias: {sorted(ALIASES)})")
    return canonical


def make_dataset(name: str, n: int = 400, noise: float = 0.05, seed: int | None = 0,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Points `X` (n, 2) float32 in about [-1, 1]^2 and labels `y` (n,) in {0, 1}, balanced.

    `noise` is the standard deviation of a Gaussian jitter added to every coordinate.
    """
    return _GENERATORS[dataset_name(name)](n, noise, seed)


# --------------------------------------------------------------------------- predictions, plots
def _check_points(X: Any, y: Any | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must hold numbers (2-D points, shape (n, 2)), got dtype {X.dtype}")
    X = X.astype(np.float32, copy=False)
    if X.ndim != 2 or X.shape[1] != 2 or len(X) == 0:
        raise ValueError(f"X must be an array of 2-D points, shape (n, 2); got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must hold finite coordinates (as float32), got NaN or inf values")
    if y is None:
        return X, None
    y = np.asarray(y).reshape(-1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} points but y has {y.shape[0]} labels")
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y must hold the class labels 0 and 1, got dtype {y.dtype}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"y must hold the class labels 0 and 1 only, got the values "
                         f"{np.unique(y)[:10].tolist()}")
    return X, y


def predict_proba(model: Any, X: Any) -> np.ndarray:
    """P(class 1) for each point, from a Keras model (anything with `.predict`) or a function."""
    X, _ = _check_points(X)
    if hasattr(model, "predict_proba"):  # scikit-learn classifiers
        out = model.predict_proba(X)
    elif callable(model):  # Keras models (a direct call: no per-shape retracing) and functions
        out = model(X)
        if hasattr(model, "layers"):  # a Keras model answers in its backend's tensors
            import keras

            out = keras.ops.convert_to_numpy(out)
    elif hasattr(model, "predict"):
        out = model.predict(X)
    else:
        raise TypeError(f"model must be a Keras model or a function of the points, got "
                        f"{type(model).__name__}")
    out = np.asarray(out, dtype=np.float64)
    if out.ndim == 2 and out.shape[1] == 2:  # softmax over two classes
        out = out[:, 1]
    out = out.reshape(-1)
    if out.shape[0] != X.shape[0]:
        raise ValueError(f"the model returned {out.shape[0]} values for {X.shape[0]} points; "
                         "it must give one probability per point")
    return out


def accuracy(model: Any, X: Any, y: Any) -> float:
    """Fraction of points whose predicted class (probability >= 0.5) equals the label."""
    X, y = _check_points(X, y)
    return float(np.mean((predict_proba(model, X) >= 0.5) == (y == 1)))


def plot_decision_boundary(model: Any, X: Any, y: Any, ax: Any = None, *, resolution: int = 100,
                           title: str | None = None, limit: float = 1.3) -> Any:
    """Colour the plane by the model's P(class 1), draw the 0.5 contour and the points."""
    X, y = _check_points(X, y)
    if isinstance(resolution, bool) or not isinstance(resolution, Integral) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    if isinstance(limit, bool) or not isinstance(limit, Real):
        raise TypeError(f"limit must be a positive number, got {type(limit).__name__} {limit!r}")
    if not math.isfinite(limit) or limit <= 0:
        raise ValueError(f"limit (half the width of the plotted square) must be a positive "
                         f"finite number, got {limit!r}")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    axis = np.linspace(-limit, limit, resolution)
    gx, gy = np.meshgrid(axis, axis)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    proba = predict_proba(model, grid).reshape(gx.shape)
    ax.contourf(gx, gy, proba, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.45)
    if proba.min() < 0.5 < proba.max():
        ax.contour(gx, gy, proba, levels=[0.5], colors="k", linewidths=1)
    ax.scatter(X[:, 0], X[:, 1], c=np.where(y == 1, "tab:blue", "tab:orange"), s=10,
               edgecolors="white", linewidths=0.3)
    ax.set(xlim=(-limit, limit), ylim=(-limit, limit), aspect="equal", xticks=[], yticks=[])
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


# --------------------------------------------------------------------------- runs and the grid
@dataclass
class PlaygroundRun:
    """One trained network and what it was trained and tested on."""

    model: Any
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    history: Mapping[str, Sequence[float]] = field(default_factory=dict)
    label: str = ""

    @property
    def train_accuracy(self) -> float:
        return accuracy(self.model, self.X_train, self.y_train)

    @property
    def test_accuracy(self) -> float:
        return accuracy(self.model, self.X_test, self.y_test)


def plot_runs(runs: Sequence[PlaygroundRun], columns: int = 4, *, losses: bool = False,
              points: str = "test") -> Any:
    """The static playground: one decision-boundary panel per run, in a grid.

    `points` chooses which points are drawn ("test" or "train"); the title always gives the test
    accuracy. With `losses=True` a second row per run shows its training and validation loss
    curves (Keras's `val_loss`: whatever the run passed as `validation_data`).
    """
    runs = list(runs)
    if not runs or not all(isinstance(run, PlaygroundRun) for run in runs):
        raise ValueError("runs must be a non-empty list of PlaygroundRun")
    if isinstance(columns, bool) or not isinstance(columns, Integral) or columns < 1:
        raise ValueError(f"columns must be a positive int, got {columns!r}")
    if points not in ("test", "train"):
        raise ValueError(f"points must be 'test' or 'train', got {points!r}")
    import matplotlib.pyplot as plt

    columns = min(columns, len(runs))
    rows = math.ceil(len(runs) / columns) * (2 if losses else 1)
    fig, axes = plt.subplots(rows, columns, figsize=(2.8 * columns, 2.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for index, run in enumerate(runs):
        row, column = divmod(index, columns)
        ax = axes[row * (2 if losses else 1), column]
        ax.set_visible(True)
        X, y = (run.X_test, run.y_test) if points == "test" else (run.X_train, run.y_train)
        plot_decision_boundary(run.model, X, y, ax,
                               title=f"{run.label}\ntest accuracy {run.test_accuracy:.2f}")
        if losses:
            plot_losses(run, axes[row * 2 + 1, column])
            axes[row * 2 + 1, column].set_visible(True)
    fig.tight_layout()
    return fig


def plot_losses(run: PlaygroundRun, ax: Any = None) -> Any:
    """Training and validation loss curves of a run (Keras history keys 'loss', 'val_loss')."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3))
    for key, name in (("loss", "training"), ("val_loss", "validation")):
        if key in run.history:
            ax.plot(np.arange(1, len(run.history[key]) + 1), run.history[key], label=name)
    ax.set(xlabel="epoch", ylabel="loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    return ax


# --------------------------------------------------------------------------- interactive
def frontend_present() -> bool:
    """True when a notebook front-end that can draw widgets is attached (not headless).

    Headless runs (papermill, nbval, `python script.py`) say False. Override with the
    environment variable DL_COURSE_INTERACTIVE=1 (force on) or 0 (force off).
    """
    forced = os.environ.get("DL_COURSE_INTERACTIVE", "").strip()
    if forced in {"0", "1"}:
        return forced == "1"
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    try:
        from ipykernel.zmqshell import ZMQInteractiveShell
    except ImportError:
        return False
    # A kernel's shell (Colab's is a subclass named `Shell`); not plain Python or terminal IPython.
    if not isinstance(get_ipython(), ZMQInteractiveShell):
        return False
    if "google.colab" in sys.modules:
        return True
    # jupyter_server (JupyterLab, Notebook 7) and VS Code set these for kernels they start;
    # papermill and nbval start kernels without them.
    return any(os.environ.get(name) for name in _FRONTEND_VARIABLES)


def interactive_playground(train: Callable[..., PlaygroundRun], *, force: bool | None = None,
                           datasets: Sequence[str] = DATASETS,
                           activations: Sequence[str] = ACTIVATIONS) -> Any:
    """Widgets (data set, layers, neurons, activation, learning rate) and a Train button.

    `train(dataset=..., hidden=(neurons,) * layers, activation=..., learning_rate=...)` must return
    a PlaygroundRun; it is called on each click, never at display time, so nothing blocks.
    Headless (see `frontend_present`, or `force=False`) it returns None and builds nothing.
    """
    if not callable(train):
        raise TypeError(f"train must be a function returning a PlaygroundRun, got {train!r}")
    for name in datasets:
        dataset_name(name)
    unknown = [a for a in activations if a not in ACTIVATIONS]
    if unknown:
        raise ValueError(f"unknown activation(s) {unknown}; choose from {ACTIVATIONS}")
    show = frontend_present() if force is None else bool(force)
    if not show:
        print("No widget front-end detected (a headless run): the static grid above shows the "
              "same experiments. In Jupyter or Colab the widgets appear here; if they do not, "
              "call interactive_playground(..., force=True).")
        return None
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    dataset = widgets.Dropdown(options=list(datasets), value=datasets[0], description="data set")
    layers = widgets.IntSlider(value=1, min=1, max=6, description="layers")
    neurons = widgets.IntSlider(value=3, min=1, max=8, description="neurons")
    activation = widgets.Dropdown(options=list(activations), value=activations[0],
                                  description="activation")
    learning_rate = widgets.FloatLogSlider(value=0.03, base=10, min=-4, max=0, step=0.25,
                                           description="learning rate", readout_format=".4f")
    button = widgets.Button(description="Train", button_style="primary")
    output = widgets.Output()

    def on_click(_: Any) -> None:
        output.clear_output(wait=True)
        with output:
            button.disabled = True
            try:
                run = train(dataset=dataset.value, hidden=(neurons.value,) * layers.value,
                            activation=activation.value, learning_rate=learning_rate.value)
                fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.6))
                plot_decision_boundary(run.model, run.X_test, run.y_test, left,
                                       title=f"{run.label} test accuracy "
                                             f"{run.test_accuracy:.2f}")
                plot_losses(run, right)
                fig.tight_layout()
                plt.show()
            finally:
                button.disabled = False

    button.on_click(on_click)
    return widgets.VBox([widgets.HBox([dataset, activation]), widgets.HBox([layers, neurons]),
                         widgets.HBox([learning_rate, button]), output])
