"""What fences a grading kernel in: its limits, its isolation (`unshare` + guard.py), its env."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from utils.checks import GRADER_VARIABLE
from utils.claims import MODE_VARIABLE, Mode
from utils.grading import guard

DEFAULT_MEMORY = 4 * 1024**3  # bytes of data memory per kernel (RLIMIT_DATA)
GUARD = Path(guard.__file__).resolve()


@dataclass(frozen=True)
class Isolation:
    """How kernels are isolated here: guard.py's mode, the `unshare` prefix, in words."""

    mode: str  # one of guard.MODES: "off", "network" (no network) or "files" (and read-only)
    prefix: tuple[str, ...] = ()
    description: str = "off"

    def __post_init__(self) -> None:
        if self.mode not in guard.MODES:
            raise ValueError(f"isolation mode is one of {guard.MODES}, got {self.mode!r}")


# Best first: new network and mount namespaces, else a new network namespace only.
_CANDIDATES = (
    Isolation("files", ("unshare", "--net", "--mount", "--map-root-user"),
              "on (each kernel runs in its own empty network namespace; files outside the "
              "submission's temporary folder are read-only)"),
    Isolation("network", ("unshare", "--net", "--map-root-user"),
              "network on (each kernel runs in its own empty network namespace); files: off"),
)


@dataclass
class Limits:
    """What one submission may use. `cell_timeout` and friends override the chapter's values."""

    cell_timeout: float | None = None
    notebook_timeout: float | None = None
    test_timeout: float | None = None
    memory_bytes: int = DEFAULT_MEMORY  # 0: no limit
    isolate: bool = True
    threads_per_kernel: int = 1
    isolation: Isolation | None = None  # found by `kernel_isolation` when None and `isolate`


def guarded(command: list[str], isolation: Isolation, memory_bytes: int,
            writable: Path | str) -> list[str]:
    """`command` started behind `isolation`'s prefix and guard.py."""
    return [*isolation.prefix, sys.executable, "-I", "-S", str(GUARD), str(memory_bytes),
            isolation.mode, str(writable), *command]


PR_SET_DUMPABLE = 4  # <linux/prctl.h>: whether others of this user may inspect this process


def undumpable() -> None:
    """Put this process's memory, files and pipes out of reach of a submission's code.

    Any process of the same user may otherwise open /proc/PID/fd/N or /proc/PID/mem, or ptrace
    it: a kernel could write a verdict into the pipe the grader reads the judge's verdicts from.
    Not dumpable, only a process privileged in this process's user namespace may (an isolated
    kernel is privileged in its own only). Linux only; elsewhere nothing changes.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def kernel_isolation() -> Isolation:
    """The best isolation this system allows a kernel, tried for real; mode "off" if none."""
    if shutil.which("unshare") is None:
        return Isolation("off", description="off (no `unshare` command on this system)")
    reason = ""
    for candidate in _CANDIDATES:
        with tempfile.TemporaryDirectory() as writable:
            try:
                probe = subprocess.run(guarded(["true"], candidate, 0, writable),
                                       capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired) as error:
                return Isolation("off", description=f"off (`unshare` failed: {error})")
        if probe.returncode == 0:
            return candidate
        reason = reason or (probe.stderr.strip().splitlines()[-1:]
                            or [f"exit code {probe.returncode}"])[0]
    return Isolation("off", description=f"off (`unshare --net` is not allowed here: {reason})")


def kernel_environment(workdir: Path, threads: int) -> dict[str, str]:
    """A grading kernel's environment: quiet TensorFlow, no figures drawn, threads shared."""
    env = dict(os.environ)
    env.update({
        "MPLBACKEND": "agg",  # plt.show() draws nothing: figures are not graded, and it is faster
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONFAULTHANDLER": "1",  # a crashing kernel leaves a traceback in its log
        "TMPDIR": str(workdir),
        # Inside the submission's temporary folder, the one place an isolated kernel may write.
        "IPYTHONDIR": str(workdir.parent / "home" / "ipython"),
        "MPLCONFIGDIR": str(workdir.parent / "home" / "matplotlib"),
        # The grader runs chapters shrunk, where the text's numbers are not expected: a claim
        # that does not hold shows its notice, as in a learner's run, and fails no cell.
        MODE_VARIABLE: Mode.NOTICE.value,
        # The judge reruns the heavy checks (a fresh training, a two-rank job): the exercise
        # cells' self-checks skip them.
        GRADER_VARIABLE: "1",
    })
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        env[name] = str(threads)
    return env
