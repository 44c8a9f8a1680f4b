"""Notebook set-up (seed, plotting defaults, versions), the course's files, metric recording."""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys
from importlib import metadata
from numbers import Real
from pathlib import Path

from utils import machine
from utils.paths import NOTEBOOKS

METRIC_MIME = "application/vnd.dl-course.metric+json"
DISTRIBUTION = "dl-course-utils"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def in_colab() -> bool:
    return "google.colab" in sys.modules


def course_folder() -> Path:
    """The course's `notebooks/` folder, with the scripts and SLURM files some chapters launch.

    Found next to the notebook (JupyterLab, `make run`), next to `utils` (an editable install),
    or else cloned once into ~/.cache/dl-course: from the git URL and commit pip installed
    `utils` from (Colab's setup cell), so the files always match the installed helpers.
    """
    for folder in (Path.cwd(), NOTEBOOKS):
        if (folder / "scripts").is_dir() and (folder / "slurm").is_dir():
            return folder.resolve()
    url, commit = installed_from()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dl-course"
    clone = cache / f"source-{commit[:12] if commit else 'latest'}"
    if not (clone / "notebooks" / "scripts").is_dir():  # cloned already: a re-run reuses it
        partial = clone.with_name(clone.name + ".partial")
        subprocess.run(["rm", "-rf", str(partial)], check=True)
        subprocess.run(["git", "clone", "--quiet", url, str(partial)], check=True)
        if commit:
            subprocess.run(["git", "-C", str(partial), "checkout", "--quiet", commit], check=True)
        partial.rename(clone)
    return clone / "notebooks"


def installed_from() -> tuple[str, str | None]:
    """(git URL, commit) that pip installed the course helpers from; the repository's URL and
    None when pip recorded no git source (a wheel from an index)."""
    try:
        distribution = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise RuntimeError(f"the course helpers are not installed ({DISTRIBUTION}); run the "
                           "setup cell, or `make setup` in a clone of the course") from None
    direct = json.loads(distribution.read_text("direct_url.json") or "{}")  # PEP 610
    if direct.get("vcs_info", {}).get("vcs") == "git":
        return direct["url"], direct["vcs_info"].get("commit_id")
    for entry in distribution.metadata.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip() == "Repository":
            return url.strip(), None
    raise RuntimeError(f"{DISTRIBUTION} records no repository URL to fetch the course files from")


def setup_notebook(seed: int = 42, *, keras: bool = True) -> None:
    """Seed every generator, set plotting defaults and print the versions in use.

    With ``keras=False`` (NumPy-only chapters) no framework is imported, which saves seconds.
    Keras' backend is the one KERAS_BACKEND names (TensorFlow unless set), and it is printed.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import matplotlib
    import matplotlib.pyplot as plt
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    plt.rcParams.update({
        "figure.figsize": (6.4, 4.0), "figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "image.cmap": "gray_r",
    })
    versions = {"python": sys.version.split()[0], "numpy": np.__version__,
                "matplotlib": matplotlib.__version__}
    if keras:
        import keras as keras_module

        if int(keras_module.__version__.split(".")[0]) < 3:
            raise RuntimeError(f"this course needs Keras 3, found {keras_module.__version__}")
        keras_module.utils.set_random_seed(seed)
        versions["keras"] = keras_module.__version__
        name, module = machine.backend()
        gpus = machine.gpu_count()
        versions["backend"] = f"{name} {module.__version__}"
        versions["device"] = f"{gpus} GPU(s)" if gpus else f"CPU ({os.cpu_count()} cores)"
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
