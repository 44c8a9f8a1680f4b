"""Horovod's upstream Keras tests (ported): they run only on Horovod ranks.

tests/test_horovod_upstream.py starts them as Horovod's CI does, `horovodrun -np 2 --gloo python
-m pytest FILE`. A plain `pytest tests` must not collect them in its own process: they call
`hvd.init()` there. Files named on the command line are collected whatever this list says.
"""

import pytest

collect_ignore_glob = ["test_*.py"]

KERAS_2_ONLY = {
    "test_legacy_optimizer": "Keras 3 has no keras.optimizers.legacy (Keras 2 only): exempt",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.name in KERAS_2_ONLY:
            item.add_marker(pytest.mark.skip(reason=KERAS_2_ONLY[item.name]))
