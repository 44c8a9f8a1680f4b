"""Helpers for the course notebooks. `import utils` is fast: nothing heavy is imported here."""

from utils.checks import check
from utils.claims import claim
from utils.notebook import record, setup_notebook

__all__ = ["check", "claim", "load_mnist", "record", "setup_notebook"]


def load_mnist(data_dir=None, *, verbose=True):
    """Shortcut for `utils.data.load_mnist` (imported on first use)."""
    from utils.data import load_mnist as _load_mnist

    return _load_mnist(data_dir, verbose=verbose)
