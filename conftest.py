"""pytest's configuration for `make test`'s notebook run (nbval).

Cells tagged `nbval-check-output` must print what the committed notebook shows. A claim's line
is compared as printed (its values to 4 significant digits); its machine-readable copy
(CLAIM_MIME, every value in full) is not: the last digits of a float sum differ between CPUs
(oneDNN and BLAS pick other kernels), and the claim itself is checked strictly in the run.
"""

from utils.claims import CLAIM_MIME


def pytest_collection_modifyitems(items):
    for notebook in {item.parent for item in items}:
        if hasattr(notebook, "skip_compare") and CLAIM_MIME not in notebook.skip_compare:
            notebook.skip_compare = (*notebook.skip_compare, CLAIM_MIME)
