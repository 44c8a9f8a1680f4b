"""pytest's configuration for `make test`: the unit tests' order, and the notebook run (nbval).

Cells tagged `nbval-check-output` must print what the committed notebook shows. A claim's line
is compared as printed (its values to 4 significant digits); its machine-readable copy
(CLAIM_MIME, every value in full) is not: the last digits of a float sum differ between CPUs
(oneDNN and BLAS pick other kernels), and the claim itself is checked strictly in the run.
"""

from utils.claims import CLAIM_MIME

# `make test` runs the unit tests on two workers (pytest-xdist), one file per worker at a time,
# in collection order: the longest files go first, so that neither is left to run alone at the end.
SLOW_FIRST = ["test_colab_stack.py", "test_grading.py", "test_backends.py",
              "test_reproducibility.py", "test_horovod_keras.py", "test_horovod_upstream.py"]


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: SLOW_FIRST.index(item.path.name) if item.path.name in SLOW_FIRST
               else len(SLOW_FIRST))  # stable: every other file keeps its order
    for notebook in {item.parent for item in items}:
        if hasattr(notebook, "skip_compare") and CLAIM_MIME not in notebook.skip_compare:
            notebook.skip_compare = (*notebook.skip_compare, CLAIM_MIME)
