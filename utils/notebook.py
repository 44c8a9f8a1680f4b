"""Notebook set-up (seed, plotting defaults, versions) and metric recording for the runner."""

from __future__ import annotations

import math
import os
import random
import re
import sys
from numbers import Real

METRIC_MIME = "application/vnd.dl-course.metric+json"
MIN_PYTHON = (3, 10)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def in_colab() -> bool:
    return "google.colab" in sys.modules


def setup_notebook(seed: int = 42, *, keras: bool = True) -> None:
    """Seed every generator, set plotting defaults and print the versions in use.

    With ``keras=False`` (NumPy-only chapters) TensorFlow is not imported, which saves seconds.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if sys.version_info[:2] < MIN_PYTHON:
        raise RuntimeError(
            f"this course needs Python >= {'.'.join(map(str, MIN_PYTHON))}, "
            f"found {sys.version.split()[0]}; run `make setup` and use the .venv kernel"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import matplotlib
    import matplotlib.pyplot as plt
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    plt.rcParams.update({
        "figure.figsize": (6.4, 4.0), "figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "image.cmap": "gray",
    })
    versions = {"python": sys.version.split()[0], "numpy": np.__version__,
                "matplotlib": matplotlib.__version__}
    if keras:
        import keras as keras_module
        import tensorflow as tf

        keras_module.utils.set_random_seed(seed)
        versions["tensorflow"] = tf.__version__
        versions["keras"] = keras_module.__version__
        if int(keras_module.__version__.split(".")[0]) < 3:
            raise RuntimeError(f"this course needs Keras 3, found {keras_module.__version__}")
        gpus = tf.config.list_physical_devices("GPU")
        versions["device"] = f"{len(gpus)} GPU(s)" if gpus else f"CPU ({os.cpu_count()} cores)"
    print(" | ".join(f"{k} {v}" for k, v in versions.items()) + f" | seed {seed}")


def record(name: str, value: float) -> float:
    """Show a key result and store it in the notebook's output, where `make run` reads it back."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"metric name must be snake_case text like 'test_accuracy', got {name!r}")
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"metric {name!r} must be a finite number, got {value!r}")
    value = float(value)
    text = f"{name} = {value:.4g}"
    try:
        from IPython.display import display

        display({METRIC_MIME: {"name": name, "value": value}, "text/plain": text}, raw=True)
    except ImportError:
        print(text)
    return value
