"""The course's side of multi-process training: cores, threads, GPU pinning, shards, a launcher.

Horovod's own API (init, rank, DistributedOptimizer, the callbacks) is in `utils.horovod_keras`,
a drop-in for `horovod.tensorflow.keras` on Keras 3. This module holds what Horovod leaves to
the user, and the launcher the course and its tests use:

    import utils.horovod_keras as hvd                  # Horovod's API
    from utils import distributed                       # the course's helpers

    hvd.init()
    distributed.set_threads(distributed.threads_per_rank())  # before TensorFlow does any work
    distributed.pin_gpu()                                     # one GPU per process; no-op on CPU
    x_rank, y_rank = distributed.shard(x, y)                  # this rank's share of the data

    job = distributed.horovodrun([sys.executable, "train.py"], np=2, timeout=600)

Importing this module is cheap and needs neither Horovod nor TensorFlow: both are imported on
first use, so notebooks (and Colab, where Horovod is absent) can import it freely.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


# --------------------------------------------------------------------------------------------
# Horovod itself, imported on demand
# --------------------------------------------------------------------------------------------
def horovod_installed() -> bool:
    """True when the `horovod` package is installed (it may still lack TensorFlow support)."""
    return importlib.util.find_spec("horovod") is not None


def _hvd():
    """`horovod.tensorflow`, or an ImportError that says how to get it."""
    try:
        import horovod.tensorflow as hvd
    except ImportError as error:
        raise ImportError(
            "Horovod with TensorFlow support is not installed in this Python "
            f"({sys.executable}): {error}. In the course environment `make setup` builds it "
            "(tools/build_horovod.sh); Colab has no Horovod, so skip the multi-process cells "
            "there."
        ) from error
    return hvd


def _hvd_if_initialized():
    """`horovod.tensorflow` when this process already imported and initialised it, else None."""
    hvd = sys.modules.get("horovod.tensorflow")
    if hvd is not None and hvd.is_initialized():
        return hvd
    return None


# --------------------------------------------------------------------------------------------
# One process per device: cores, threads, GPU pinning, data shards, printing
# --------------------------------------------------------------------------------------------
def usable_cores() -> int:
    """CPU cores this process may run on (respects taskset, cpusets and SLURM's CPU binding)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def threads_per_rank(ranks_per_node: int | None = None, cores: int | None = None) -> int:
    """Cores per process when `ranks_per_node` processes share this node: `cores // ranks`.

    Defaults: the node's rank count from Horovod (`hvd.local_size()`, 1 without Horovod) and
    the cores this process may use. Never less than 1.
    """
    if ranks_per_node is None:
        hvd = _hvd_if_initialized()
        ranks_per_node = hvd.local_size() if hvd else 1
    ranks_per_node = _positive_int(ranks_per_node, "ranks_per_node")
    cores = usable_cores() if cores is None else _positive_int(cores, "cores")
    return max(1, cores // ranks_per_node)


def set_threads(intra_op: int, inter_op: int | None = None) -> None:
    """Size TensorFlow's thread pools. Call it before TensorFlow runs any operation.

    `intra_op` threads work inside one operation (a matrix product); `inter_op` threads run
    independent operations side by side (default: the same number).
    """
    intra_op = _positive_int(intra_op, "intra_op")
    inter_op = intra_op if inter_op is None else _positive_int(inter_op, "inter_op")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as error:
        raise RuntimeError(
            "TensorFlow has already started its runtime, so its thread pools can no longer be "
            "resized: call set_threads() right after hvd.init(), before building a model or "
            f"running any TensorFlow operation ({error})"
        ) from None


def pin_gpu(local_rank: int | None = None) -> str | None:
    """Make this process see one GPU only: the one matching its local rank.

    Returns the GPU's name, or None on a machine without GPUs (then it does nothing). If the
    scheduler already gave the process a single GPU (e.g. `srun --gpus-per-task=1`), that one is
    used whatever the local rank.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    if local_rank is None:
        local_rank = _hvd().local_rank()
    if isinstance(local_rank, bool) or not isinstance(local_rank, int) or local_rank < 0:
        raise ValueError(f"local_rank must be a non-negative int, got {local_rank!r}")
    if len(gpus) == 1:
        gpu = gpus[0]
    elif local_rank < len(gpus):
        gpu = gpus[local_rank]
    else:
        raise ValueError(
            f"local rank {local_rank} has no GPU of its own: this node shows {len(gpus)} GPUs. "
            f"Start at most {len(gpus)} ranks per node (horovodrun -H host:{len(gpus)})."
        )
    try:
        tf.config.experimental.set_memory_growth(gpu, True)
        tf.config.set_visible_devices(gpu, "GPU")
    except RuntimeError as error:
        raise RuntimeError(
            "pin_gpu() must run before TensorFlow touches the GPU: call it right after "
            f"hvd.init() ({error})"
        ) from None
    return gpu.name


def shard(*arrays: np.ndarray, rank: int | None = None, size: int | None = None):
    """This rank's share of a data set: every `size`-th example, starting at `rank`.

    All ranks get the same number of examples (`len // size`; the remainder is dropped), so
    they run the same number of steps and meet at every allreduce. With unshuffled batches,
    batch i of all ranks together is exactly batch i of a single process with `size` times the
    batch size. Returns one array, or a tuple when given several.
    """
    if not arrays:
        raise ValueError("shard() needs at least one array")
    if rank is None or size is None:
        hvd = _hvd_if_initialized()
        if hvd is None:
            raise ValueError("pass rank= and size=, or call hvd.init() first")
        rank = hvd.rank() if rank is None else rank
        size = hvd.size() if size is None else size
    size = _positive_int(size, "size")
    if isinstance(rank, bool) or not isinstance(rank, int | np.integer) or not 0 <= rank < size:
        raise ValueError(f"rank must be an int in [0, {size}), got {rank!r}")
    arrays = tuple(np.asarray(a) for a in arrays)
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"arrays must have the same length, got {[len(a) for a in arrays]}")
    n = lengths.pop()
    per_rank = n // size
    if per_rank == 0:
        raise ValueError(
            f"cannot shard {n} examples over {size} ranks: every rank needs at least one "
            "example. Use fewer ranks (-np) or more data."
        )
    parts = tuple(np.ascontiguousarray(a[rank:per_rank * size:size]) for a in arrays)
    return parts[0] if len(parts) == 1 else parts


def rank0_print(*args: Any, **kwargs: Any) -> None:
    """print() on rank 0 only, so N processes do not print N copies of every line."""
    hvd = _hvd_if_initialized()
    rank = hvd.rank() if hvd else int(os.environ.get("HOROVOD_RANK", "0"))
    if rank == 0:
        kwargs.setdefault("flush", True)
        print(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# The learning-rate warm-up of the linear scaling rule
# --------------------------------------------------------------------------------------------
def warmup_learning_rate(epoch: float, initial_lr: float, size: int,
                         warmup_epochs: float) -> float:
    """Learning rate at (fractional) `epoch` of a linear warm-up (Goyal et al., 2017).

    `initial_lr` is the already scaled rate (one-rank rate × size). Training starts at
    `initial_lr / size`, the one-rank rate, and climbs linearly to `initial_lr` at
    `warmup_epochs`; after that it stays at `initial_lr`. Horovod's LearningRateWarmupCallback
    (`utils.horovod_keras.callbacks`) uses this formula, evaluated at the end of each batch:
    epoch + (batch + 1) / steps_per_epoch.
    """
    size = _positive_int(size, "size")
    if not initial_lr > 0:
        raise ValueError(f"initial_lr must be positive, got {initial_lr!r}")
    if warmup_epochs < 0 or epoch < 0:
        raise ValueError(f"epoch and warmup_epochs must be >= 0, got {epoch!r}, {warmup_epochs!r}")
    if warmup_epochs == 0 or epoch >= warmup_epochs:
        return float(initial_lr)
    return float(initial_lr / size * (1 + epoch * (size - 1) / warmup_epochs))


# --------------------------------------------------------------------------------------------
# Launching a job: horovodrun with a timeout that also kills the ranks
# --------------------------------------------------------------------------------------------
class HorovodJobError(RuntimeError):
    """A horovodrun job failed or ran out of time; `output` holds what the ranks printed."""

    def __init__(self, message: str, output: str = "", returncode: int | None = None):
        super().__init__(message)
        self.output = output
        self.returncode = returncode


def _horovodrun_executable() -> str:
    here = Path(sys.executable).parent
    found = shutil.which("horovodrun", path=os.pathsep.join([str(here),
                                                               os.environ.get("PATH", "")]))
    if found is None:
        raise FileNotFoundError(
            "horovodrun not found next to this Python or on PATH: Horovod is not installed "
            "(in the course environment, `make setup` builds it)"
        )
    return found




def _horovodrun_command(executable: str) -> list[str]:
    """How to start horovodrun: through `horovodrun_launcher.py` (horovodrun's command line with a
    faster Gloo check, see there), by the Python its script runs with; the script itself where
    it is not a Python script."""
    try:
        with open(executable, "rb") as script:
            first = script.readline(4096).decode().strip()
    except (OSError, UnicodeDecodeError):
        return [executable]
    python = first[2:].strip() if first.startswith("#!") else ""
    if " " in python or "python" not in Path(python).name or not os.access(python, os.X_OK):
        return [executable]
    return [python, str(Path(__file__).with_name("horovodrun_launcher.py"))]


_RANK_LINE = re.compile(r"^\[(\d+)\]<(stdout|stderr)>:(.*)$")
_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*|.*: error: .*)$")
# absl's fatal log lines (XLA's, TensorFlow's) begin F<month><day>; they, or the C++ runtime's
# and Python's last words, come before a long stack trace
_FATAL_LINE_STARTS = ("F0", "F1", "terminate called", "Fatal Python error")
_RANK_END = re.compile(r"^Process (\d+) exit with status code (\d+)\.$")  # horovodrun's
_NOISE = ("WARNING: All log messages before absl::InitializeLog()", "To enable the following "
          "instructions", "oneDNN custom operations are on", "cpu_feature_guard.cc")


def is_noise(line: str) -> bool:
    """TensorFlow's start-up banners, which every rank prints on stderr."""
    return any(marker in line for marker in _NOISE)


def rank_lines(output: str, rank: int | None = 0, *, streams: Sequence[str] = ("stdout",),
               ) -> list[str]:
    """What `rank` printed (all ranks with None) in a horovodrun log, prefixes and noise removed.

    horovodrun prefixes every line of a rank with `[rank]<stdout>:` or `[rank]<stderr>:`.
    """
    lines = []
    for line in output.splitlines():
        match = _RANK_LINE.match(line)
        if (match and (rank is None or int(match.group(1)) == rank)
                and match.group(2) in streams and not is_noise(match.group(3))):
            lines.append(match.group(3) if rank is not None else line)
    return lines


def first_rank_error(output: str) -> str | None:
    """The first error a rank reported, like '[rank 1] RuntimeError: ...', or None.

    When one rank fails, the others fail next ("Horovod has been shut down"); the first real
    error is the one that explains the failure. A rank that dies in C++ (Gloo, XLA) prints no
    Python error: then its fatal line ('terminate called ...', its 'what(): ...'), and failing
    that, how horovodrun saw it end ('[rank 1] ended with signal SIGKILL').
    """
    errors, fatal, ends = [], [], []
    for line in output.splitlines():
        match = _RANK_LINE.match(line)
        text = match.group(3).strip() if match else ""
        if match and _ERROR_LINE.match(text):
            errors.append(f"[rank {match.group(1)}] {text}")
        elif match and (text.startswith(_FATAL_LINE_STARTS) or text.startswith("what():")):
            fatal.append(f"[rank {match.group(1)}] {text}")
        elif ended := _RANK_END.match(line.strip()):
            code = int(ended.group(2))  # a shell's status: 128 + N for signal N
            ends.append(f"[rank {ended.group(1)}] ended with "
                        f"{how_it_ended(128 - code if code > 128 else code)}")
    causes = [e for e in errors if "Horovod has been shut down" not in e]
    what = [line for line in fatal if "] what():" in line]
    return (causes or what or fatal or errors or ends or [None])[0]


def rank_raised(output: str) -> bool:
    """Whether a rank printed a Python error (rather than dying in C++ or being killed)."""
    return any((match := _RANK_LINE.match(line)) and _ERROR_LINE.match(match.group(3).strip())
               for line in output.splitlines())


def _tail(text: str, lines: int = 25) -> str:
    kept = [line for line in text.strip().splitlines() if not is_noise(line)]
    return "\n".join(kept[-lines:])


def how_it_ended(returncode: int) -> str:
    """'exit code 1', or the signal that ended the process: 'signal SIGABRT' for -6."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"signal {signal.Signals(-returncode).name}"
    except ValueError:  # a number no signal has
        return f"signal {-returncode}"


def script_failure(script: str, returncode: int, output: str) -> str:
    """Why a script run in a subprocess failed: how it ended, its first fatal log lines, its
    last lines (start-up banners left out)."""
    fatal = [line for line in output.splitlines() if line.startswith(_FATAL_LINE_STARTS)]
    return (f"{script} failed with {how_it_ended(returncode)}; its last words:\n"
            + "\n".join([*fatal[:2], _tail(output, 6)]))


def _failure_message(np: int, what: str, output: str) -> str:
    cause = first_rank_error(output)
    return (f"horovodrun -np {np} {what}." + (f"\nFirst error: {cause}" if cause else "")
            + f"\nLast lines of output:\n{_tail(output)}")


def _kill_job(process: subprocess.Popen) -> None:
    """SIGKILL horovodrun and everything it started.

    horovodrun runs each rank under a helper in a session of its own, so killing the process
    group is not enough: the descendants are collected first (psutil), then all are killed.
    """
    import psutil

    descendants = []
    if process.poll() is None:
        try:
            descendants = psutil.Process(process.pid).children(recursive=True)
        except psutil.Error:  # the job just ended
            descendants = []
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for child in descendants:
        try:
            child.kill()
        except psutil.Error:  # already gone
            pass


def horovodrun(command: Sequence[str], np: int, *, hosts: str | None = None,
               env: Mapping[str, str] | None = None, timeout: float = 600,
               cwd: str | os.PathLike | None = None, check: bool = True,
               extra_args: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run `horovodrun -np N -H localhost:N --gloo COMMAND` and return what it printed.

    On timeout, horovodrun and every process it started are killed, ranks included (a stuck
    allreduce can never hang the caller). With `check` (default), a failed or timed-out job
    raises HorovodJobError carrying the last lines the ranks printed. stdout and stderr are
    merged in `.stdout`.
    """
    np = _positive_int(np, "np")
    if isinstance(command, str) or not command:
        raise ValueError("command must be a non-empty list of arguments, e.g. "
                         "[sys.executable, 'train.py', '--epochs', '1']")
    args = [*_horovodrun_command(_horovodrun_executable()), "-np", str(np),
            "-H", hosts or f"localhost:{np}", "--gloo", *extra_args, *map(str, command)]
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=full_env, cwd=cwd, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_job(process)
        output, _ = process.communicate()
        raise HorovodJobError(_failure_message(
            np, f"did not finish within {timeout:.0f} s and was killed, ranks included",
            output or ""), output or "", None) from None
    finally:
        _kill_job(process)  # leave no stray process behind, whatever happened
    result = subprocess.CompletedProcess(args, process.returncode, output, None)
    result.seconds = time.perf_counter() - start
    if check and process.returncode != 0:
        what = f"failed with {how_it_ended(process.returncode)}"
        raise HorovodJobError(_failure_message(np, what, output), output, process.returncode)
    return result
