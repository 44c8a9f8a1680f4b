"""Plotting helpers that would distract from a lesson: digit grids and probability bar charts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # matplotlib is imported inside the functions, so `import utils` stays fast
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CORRECT_COLOUR = "tab:blue"
WRONG_COLOUR = "tab:red"
_REAL_KINDS = "biuf"  # NumPy dtype kinds of real numbers: bool, signed, unsigned, float


def _as_images(images: Any) -> np.ndarray:
    """(n, h, w) images from (n, h, w) or flattened (n, h*w) square images."""
    array = np.asarray(images)
    if array.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"images must hold numbers (pixel intensities), got dtype {array.dtype}")
    if array.ndim == 2:
        side = int(round(np.sqrt(array.shape[1])))
        if side * side != array.shape[1]:
            raise ValueError(f"flattened images must have a square number of pixels (784 for "
                             f"28x28), got {array.shape[1]} per image")
        array = array.reshape(len(array), side, side)
    if array.ndim != 3:
        raise ValueError(f"images must have shape (n, height, width) or (n, pixels), "
                         f"got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"no images to plot (got an empty array of shape {array.shape})")
    if not np.all(np.isfinite(array)):
        raise ValueError("images must hold finite pixel intensities, got NaN or inf values")
    return array


def _as_labels(values: Any, count: int, what: str) -> np.ndarray | None:
    if values is None:
        return None
    array = np.asarray(values)
    if array.shape != (count,):
        raise ValueError(f"{what} must hold one integer per image, shape ({count},), "
                         f"got shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold one integer per image, got dtype {array.dtype}")
    return array


def plot_digits(images: Any, labels: Sequence[int] | np.ndarray | None = None,
                predictions: Sequence[int] | np.ndarray | None = None, *, ncols: int = 10,
                title: str | None = None, size: float = 1.1) -> Figure:
    """Draw digits in a grid, each titled by its label, or by "true→predicted" when given both.

    Titles of wrong predictions are red. `images` is (n, 28, 28) or flattened (n, 784).
    """
    import matplotlib.pyplot as plt

    images = _as_images(images)
    labels = _as_labels(labels, len(images), "labels")
    predictions = _as_labels(predictions, len(images), "predictions")
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    ncols = min(ncols, len(images))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.15),
                             squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= len(images):
            continue
        ax.imshow(images[index], cmap="gray_r")
        if labels is not None and predictions is not None:
            wrong = labels[index] != predictions[index]
            ax.set_title(f"{labels[index]}→{predictions[index]}", fontsize=9,
                         color=WRONG_COLOUR if wrong else CORRECT_COLOUR)
        elif labels is not None or predictions is not None:
            shown = labels if labels is not None else predictions
            ax.set_title(str(shown[index]), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_probabilities(probabilities: Any, *, true_label: int | None = None,
                       ax: Axes | None = None, title: str | None = None) -> Axes:
    """Bar chart of one probability vector over the classes; the true class is outlined."""
    import matplotlib.pyplot as plt

    p = np.asarray(probabilities)
    if p.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"probabilities must be numbers, got dtype {p.dtype}")
    p = p.astype(float)
    if p.ndim != 1 or len(p) < 2:
        raise ValueError(f"probabilities must be one vector with a value per class, "
                         f"got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.isclose(p.sum(), 1.0, atol=1e-3):
        raise ValueError(f"probabilities must be finite, non-negative and sum to 1; "
                         f"got sum {p.sum():.4g}, min {p.min():.4g}")
    is_index = isinstance(true_label, int | np.integer) and not isinstance(true_label, bool)
    if true_label is not None and not (is_index and 0 <= true_label < len(p)):
        raise ValueError(f"true_label must be a class index in 0..{len(p) - 1}, "
                         f"got {true_label!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 2.6))
    classes = np.arange(len(p))
    colours = [CORRECT_COLOUR if k == p.argmax() else "lightgray" for k in classes]
    bars = ax.bar(classes, p, color=colours)
    if true_label is not None:
        bars[int(true_label)].set_edgecolor("black")
        bars[int(true_label)].set_linewidth(2)
    for k in classes:
        if p[k] >= 0.01:
            ax.text(k, p[k] + 0.02, f"{p[k]:.2f}", ha="center", fontsize=8)
    ax.set(xticks=classes, ylim=(0, 1.12), xlabel="class", ylabel="probability")
    if title:
        ax.set_title(title)
    return ax
