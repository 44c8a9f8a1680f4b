"""horovodrun's command line, with its Gloo check answered by Horovod's compiled library.

`utils.distributed.horovodrun` starts jobs through this script, by the Python horovodrun is
installed for (so it needs nothing from the course). horovodrun asks whether Horovod was built
with Gloo by forking a process that imports horovod.tensorflow, and so TensorFlow: some 7 s of
CPU before any rank starts, on every job. The library answers the same question in half a
second, loaded with the TensorFlow libraries it links against; where that fails, horovodrun's
own check runs as before.
"""

import ctypes
import glob
import importlib.util
import os
import sys

TENSORFLOW_LIBRARIES = ("libtensorflow_framework.so.2", "libtensorflow_cc.so.2")


def library_says_gloo_built() -> bool:
    """Whether Horovod's TensorFlow library says it was built with Gloo (False if it cannot be
    asked)."""
    try:
        tensorflow = os.path.dirname(importlib.util.find_spec("tensorflow").origin)
        horovod = os.path.dirname(importlib.util.find_spec("horovod").origin)
        for name in TENSORFLOW_LIBRARIES:
            ctypes.CDLL(os.path.join(tensorflow, name), mode=ctypes.RTLD_GLOBAL)
        (library,) = glob.glob(os.path.join(horovod, "tensorflow", "mpi_lib*.so"))
        return bool(ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL).horovod_gloo_built())
    except Exception:  # any failure: horovodrun asks the slow way
        return False


def main() -> int:
    from horovod.runner import launch

    slow_check = launch.gloo_built
    launch.gloo_built = lambda verbose=False: library_says_gloo_built() or slow_check(
        verbose=verbose)
    sys.argv[0] = "horovodrun"
    return launch.run_commandline()


if __name__ == "__main__":
    sys.exit(main())
