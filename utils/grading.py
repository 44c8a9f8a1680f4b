"""Grade a folder of submitted notebooks headless: one fresh kernel each, grader-owned tests, a CSV.

`make grade SUBMISSIONS=folder [TESTS=folder]` runs `main`. Each file of the folder is copied into
a temporary working folder, its `parameters` cell gets the chapter's grading parameters
(papermill), and it runs cell by cell in a fresh kernel under time and memory limits and, where
the system allows it, without network access and with files read-only outside that folder; a
cell that fails does not stop the others. Then the chapter's grading tests (a Python file per
chapter, see `graded`) run in the same kernel. Output: `grades.csv` (one row per file, one
column per exercise) and one feedback file per submission.

This guards against accidents (endless loops, huge outputs, runaway memory, stray downloads or
writes); it is not a security sandbox. Grade inside the course container for more isolation.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import csv
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from utils import exercises

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TESTS = ROOT / "tests" / "grading"
DEFAULT_OUT = Path("build") / "grades"
GRADE_MIME = "application/vnd.dl-course.grade+json"
STATUSES = ("ok", "errors", "timeout", "unreadable")

DEFAULT_CELL_TIMEOUT = 120.0  # seconds; a chapter's test file may set CELL_TIMEOUT
DEFAULT_NOTEBOOK_TIMEOUT = 900.0  # seconds for all cells; NOTEBOOK_TIMEOUT in the test file
DEFAULT_TEST_TIMEOUT = 30.0  # seconds per grading test; TEST_TIMEOUT in the test file
DEFAULT_MEMORY = 4 * 1024**3  # bytes of data memory per kernel (RLIMIT_DATA)
MAX_OUTPUT_CHARS = 100_000  # per cell; the rest of a cell's output is dropped
HARD_KILL_GRACE = 10.0  # seconds a cell may ignore the interrupt before its kernel is killed
MAX_KERNEL_STARTS = 3  # a cell that kills the kernel is skipped and the notebook replayed

_CHAPTER_IN_NAME = re.compile(r"^(\d\d)_")

# Runs between the kernel manager (and `unshare`, when the kernel is isolated) and the kernel:
# sets the limits; when isolated, brings up the loopback interface of the new network namespace
# (so that programs talking to themselves over 127.0.0.1, like Horovod's launcher, still work)
# and, in the new mount namespace, makes every file system read-only except the submission's
# own temporary folder (mount_setattr, Linux >= 5.12) with a private /dev/shm; then it becomes
# the kernel. Python rather than `prlimit`, `ip` and `mount` so that it needs nothing else.
_LIMITS_SHIM = (
    "import ctypes, fcntl, os, resource, socket, struct, sys\n"
    "memory, isolated, writable = int(sys.argv[1]), sys.argv[2], sys.argv[3]\n"
    "if memory > 0:\n"
    "    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "if isolated != '-':  # SIOCSIFFLAGS on 'lo': IFF_UP | IFF_LOOPBACK | IFF_RUNNING\n"
    "    try:\n"
    "        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:\n"
    "            fcntl.ioctl(s, 0x8914, struct.pack('16sh22x', b'lo', 0x49))\n"
    "    except OSError:\n"
    "        pass  # the kernel runs anyway, without 127.0.0.1\n"
    "if isolated == 'files':\n"
    "    libc = ctypes.CDLL(None, use_errno=True)\n"
    "    def call(result, what):\n"
    "        if result != 0:\n"
    "            sys.exit(f'grader: cannot {what}: {os.strerror(ctypes.get_errno())}')\n"
    "    def read_only(path, on):  # mount_setattr(AT_FDCWD, path, AT_RECURSIVE, attr): RDONLY\n"
    "        attr = ctypes.create_string_buffer(struct.pack('4Q', on, 1 - on, 0, 0))\n"
    "        result = libc.syscall(442, -100, path.encode(), 0x8000, attr, 32)\n"
    "        call(result, f'make {path} read-only' if on else f'make {path} writable')\n"
    "    call(libc.mount(writable.encode(), writable.encode(), None, 4096 | 16384, None),\n"
    "         f'bind {writable}')  # MS_BIND | MS_REC: its own mount, made writable again below\n"
    "    read_only('/', 1)\n"
    "    read_only(writable, 0)\n"
    "    if os.path.isdir('/dev/shm'):\n"
    "        call(libc.mount(b'tmpfs', b'/dev/shm', b'tmpfs', 0, None), 'mount /dev/shm')\n"
    "os.execvp(sys.argv[4], sys.argv[4:])\n"
)


# ---------------------------------------------------------------------------------------------
# The test-file side: what a chapter's grading tests use (also imported inside the kernel).
# ---------------------------------------------------------------------------------------------

def graded(exercise_id: str, points: float) -> Callable[[Callable], Callable]:
    """Mark a function of a grading-test file as the test of one exercise, worth `points`."""
    if not exercises.is_exercise_id(exercise_id):
        raise ValueError(f"exercise id must look like '01.2', got {exercise_id!r}")
    if isinstance(points, bool) or not isinstance(points, int | float) or points <= 0:
        raise ValueError(f"points must be a positive number, got {points!r}")

    def mark(function: Callable) -> Callable:
        function.grading = {"exercise": exercise_id, "points": float(points)}
        return function

    return mark


class NotDefined(AssertionError):
    """A grading test asked for a name the submission does not define."""


class NotAnswered(AssertionError):
    """A grading test asked for a name that still holds the exercise's placeholder `...`."""


class Answers(Mapping):
    """The submission's variables, by name; a missing one fails the test with a clear message."""

    def __init__(self, namespace: Mapping[str, Any]):
        self._namespace = namespace

    def __getitem__(self, name: str) -> Any:
        if name not in self._namespace:
            raise NotDefined(f"`{name}` is not defined in your notebook: the exercise cell is "
                             "missing, or it stopped with an error before defining it")
        value = self._namespace[name]
        if value is Ellipsis or (isinstance(value, tuple | list)
                                 and any(part is Ellipsis for part in value)):
            raise NotAnswered(f"`{name}` is still `...`: the exercise is not answered yet")
        return value

    def __contains__(self, name: object) -> bool:
        return name in self._namespace

    def get(self, name: str, default: Any = None) -> Any:
        return self._namespace.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._namespace)

    def __len__(self) -> int:
        return len(self._namespace)


class TookTooLong(Exception):
    """Raised inside the kernel when a grading test runs past its time."""


_loaded_tests: dict[str, ModuleType] = {}


def load_module(path: Path | str) -> ModuleType:
    """Import a grading-test file (its name starts with a digit, so not with `import`)."""
    path = Path(path).resolve()
    key = str(path)
    if key not in _loaded_tests:
        name = "course_grading_" + hashlib.sha1(key.encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load grading tests from {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _loaded_tests[key] = module
    return _loaded_tests[key]


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise TookTooLong after `seconds` (main thread only; elsewhere no limit)."""

    def expire(signum: int, frame: Any) -> None:
        raise TookTooLong()

    try:
        previous = signal.signal(signal.SIGALRM, expire)
    except (ValueError, AttributeError):  # not the main thread, or no SIGALRM (Windows)
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _describe_failure(error: BaseException, seconds: float) -> str:
    if isinstance(error, TookTooLong | KeyboardInterrupt):
        return f"took longer than {seconds:g} s (an endless loop, or far too much work?)"
    if isinstance(error, NotImplementedError):
        return "not answered yet (the placeholder `raise NotImplementedError` is still there)"
    text = " ".join(str(error).split())[:500]  # one line, whatever the test wrote
    if isinstance(error, AssertionError):
        return text or "wrong answer"
    return f"raised {type(error).__name__}" + (f": {text}" if text else "")


def run_test_in_kernel(path: str, name: str, seconds: float) -> None:
    """Run one grading test inside the submission's kernel and display its result for the grader."""
    from IPython import get_ipython
    from IPython.display import display

    try:
        test = getattr(load_module(path), name)
        shell = get_ipython()
        answers = Answers(shell.user_ns if shell is not None else {})
        with _time_limit(seconds):
            test(answers)
        result = {"name": name, "passed": True, "message": ""}
    except BaseException as error:  # noqa: B036 - any failure (even SystemExit) scores zero
        result = {"name": name, "passed": False, "message": _describe_failure(error, seconds)}
    text = f"{name}: " + ("passed" if result["passed"] else f"failed: {result['message']}")
    display({GRADE_MIME: result, "text/plain": text}, raw=True)


# ---------------------------------------------------------------------------------------------
# The grader side.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GradingTest:
    """One function of a grading-test file: its name, its exercise and what it is worth."""

    name: str
    exercise: str
    points: float


@dataclass(frozen=True)
class ChapterTests:
    """A chapter's grading-test file: its tests, grading parameters and time limits."""

    chapter: str
    path: Path
    tests: tuple[GradingTest, ...]
    parameters: dict[str, Any]
    cell_timeout: float
    notebook_timeout: float
    test_timeout: float

    @property
    def exercises(self) -> dict[str, float]:
        """Exercise id -> the points it is worth, in the order of the file."""
        worth: dict[str, float] = {}
        for test in self.tests:
            worth[test.exercise] = worth.get(test.exercise, 0.0) + test.points
        return worth


def load_chapter_tests(path: Path) -> ChapterTests:
    """Read a grading-test file named `NN_anything.py` (it is trusted: the instructor wrote it)."""
    match = _CHAPTER_IN_NAME.match(path.name)
    if match is None or path.suffix != ".py":
        raise ValueError(f"grading-test files are named like 01_sigmoid_neuron.py, got {path.name}")
    module = load_module(path)
    tests = tuple(GradingTest(name, value.grading["exercise"], value.grading["points"])
                  for name, value in vars(module).items()
                  if callable(value) and isinstance(getattr(value, "grading", None), dict))
    if not tests:
        raise ValueError(f"{path} defines no grading tests (functions decorated with @graded)")
    other = [t.exercise for t in tests if not t.exercise.startswith(match.group(1) + ".")]
    if other:
        raise ValueError(f"{path.name} tests exercises of another chapter: {other}")
    parameters = getattr(module, "PARAMETERS", {})
    if not isinstance(parameters, dict):
        raise ValueError(f"PARAMETERS in {path.name} must be a dict, got {type(parameters)}")
    return ChapterTests(
        chapter=match.group(1), path=path.resolve(), tests=tests, parameters=dict(parameters),
        cell_timeout=float(getattr(module, "CELL_TIMEOUT", DEFAULT_CELL_TIMEOUT)),
        notebook_timeout=float(getattr(module, "NOTEBOOK_TIMEOUT", DEFAULT_NOTEBOOK_TIMEOUT)),
        test_timeout=float(getattr(module, "TEST_TIMEOUT", DEFAULT_TEST_TIMEOUT)),
    )


def find_chapter_tests(folder: Path) -> dict[str, ChapterTests]:
    """Every chapter's grading tests in `folder` (files `NN_*.py`), by chapter number."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no grading-test folder at {folder}; name one with --tests")
    found: dict[str, ChapterTests] = {}
    for path in sorted(folder.glob("[0-9][0-9]_*.py")):
        chapter = load_chapter_tests(path)
        if chapter.chapter in found:
            raise ValueError(f"two grading-test files for chapter {chapter.chapter}: "
                             f"{found[chapter.chapter].path.name} and {path.name}")
        found[chapter.chapter] = chapter
    if not found:
        raise FileNotFoundError(f"no grading-test files (NN_name.py) in {folder}")
    return found


@dataclass
class Limits:
    """What one submission may use. `cell_timeout` and friends override the chapter's values."""

    cell_timeout: float | None = None
    notebook_timeout: float | None = None
    test_timeout: float | None = None
    memory_bytes: int = DEFAULT_MEMORY  # 0: no limit
    isolate: bool = True
    threads_per_kernel: int = 1
    isolation_prefix: list[str] | None = None  # found by `kernel_isolation` when None


@dataclass
class Verdict:
    """Whether one grading test passed, and if not, why (the student's feedback)."""

    test: GradingTest
    passed: bool
    message: str


@dataclass
class Result:
    """The outcome of grading one file: the row of the CSV and the content of its feedback."""

    submission: str
    status: str
    chapter: str | None = None
    tests: list[Verdict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def points(self) -> dict[str, float]:
        earned: dict[str, float] = {}
        for result in self.tests:
            gained = result.test.points if result.passed else 0.0
            earned[result.test.exercise] = earned.get(result.test.exercise, 0.0) + gained
        return earned

    def maximum(self) -> dict[str, float]:
        worth: dict[str, float] = {}
        for result in self.tests:
            worth[result.test.exercise] = worth.get(result.test.exercise, 0.0) + result.test.points
        return worth

    @property
    def total(self) -> float:
        return sum(self.points().values())


def read_submission(path: Path) -> tuple[Any | None, str]:
    """The notebook in `path` (nbformat v4), or None and why it cannot be graded."""
    import nbformat

    if not path.is_file():
        return None, "it is not a regular file"
    data = path.read_bytes()
    if not data.strip():
        return None, "the file is empty"
    try:
        content = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "it is not a notebook (not text: a PDF, an archive, an image?)"
    except json.JSONDecodeError as error:
        return None, f"it is not valid JSON ({error.msg}, line {error.lineno}): damaged?"
    if not isinstance(content, dict) or not isinstance(content.get("cells"), list) \
            or content.get("nbformat") != 4:
        return None, "it is JSON but not a Jupyter notebook (format 4): no list of cells"
    try:  # nbformat.reader: no schema validation, which would only log noise from threads
        notebook = nbformat.reader.reads(json.dumps(content))
    except Exception as error:  # nbformat raises several kinds for broken structures
        return None, f"it is not a readable notebook ({type(error).__name__}: {error})"
    for cell in notebook.cells:
        if not isinstance(cell.get("source"), str) or cell.get("cell_type") not in (
                "code", "markdown", "raw"):
            return None, "it is not a readable notebook (a cell without text or type)"
        cell.setdefault("metadata", {}).setdefault("tags", [])  # papermill expects tags
    return notebook, ""


def exercise_ids(notebook: Any) -> list[str]:
    """The ids of a notebook's exercises, in order (see `utils.exercises`)."""
    return exercises.exercise_ids(notebook.cells)


def chapter_of(notebook: Any, filename: str) -> str | None:
    """The chapter a submission belongs to: from its exercise ids, else its file name `NN_...`."""
    chapters = Counter(exercises.chapter_of_id(exercise) for exercise in exercise_ids(notebook))
    if chapters:
        return chapters.most_common(1)[0][0]
    match = _CHAPTER_IN_NAME.match(filename)
    return match.group(1) if match else None


def kernel_isolation() -> tuple[list[str], str]:
    """The command prefix that isolates a kernel here, and what it does, in words.

    Best: new network and mount namespaces (no network; files read-only outside the
    submission's temporary folder). Else a new network namespace only. Else nothing.
    """
    if shutil.which("unshare") is None:
        return [], "off (no `unshare` command on this system)"
    reason = ""
    for command, what in [
            (["unshare", "--net", "--mount", "--map-root-user"],
             "on (each kernel runs in its own empty network namespace; files outside the "
             "submission's temporary folder are read-only)"),
            (["unshare", "--net", "--map-root-user"],
             "network on (each kernel runs in its own empty network namespace); files: off")]:
        mode = "files" if "--mount" in command else "network"
        with tempfile.TemporaryDirectory() as writable:
            try:
                probe = subprocess.run([*command, sys.executable, "-I", "-S", "-c", _LIMITS_SHIM,
                                        "0", mode, writable, "true"],
                                       capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired) as error:
                return [], f"off (`unshare` failed: {error})"
        if probe.returncode == 0:
            return command, what
        reason = reason or (probe.stderr.strip().splitlines()[-1:]
                            or [f"exit code {probe.returncode}"])[0]
    return [], f"off (`unshare --net` is not allowed here: {reason})"


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
    })
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        env[name] = str(threads)
    return env


def _output_size(msg: dict[str, Any]) -> int:
    content = msg.get("content", {})
    if "text" in content:
        return len(content["text"])
    return sum(len(str(value)) for value in content.get("data", {}).values())


def _make_client(notebook: Any, kernel_prefix: list[str], memory_bytes: int, workdir: Path,
                 max_output: int) -> Any:
    """A NotebookClient whose kernel starts behind the limits shim and `kernel_prefix`."""
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    class LimitedKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            command = super().format_kernel_cmd(extra_arguments)
            isolated = "-"
            if kernel_prefix:
                isolated = "files" if "--mount" in kernel_prefix else "network"
            return [*kernel_prefix, sys.executable, "-I", "-S", "-c", _LIMITS_SHIM,
                    str(memory_bytes), isolated, str(workdir.parent), *command]

    class GradingClient(NotebookClient):
        """Records which cells ran out of time, and drops output beyond `max_output` per cell."""

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.timed_out: set[int] = set()
            self.truncated: set[int] = set()
            self.output_used: dict[int, int] = {}
            self.current_cell: int | None = None

        async def _async_handle_timeout(self, timeout: int, cell: Any = None) -> Any:
            if self.current_cell is not None:
                self.timed_out.add(self.current_cell)
            return await super()._async_handle_timeout(timeout, cell)

        def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> Any:
            keep = msg["msg_type"] == "error" or GRADE_MIME in msg["content"].get("data", {})
            if not keep:
                used = self.output_used.get(cell_index, 0) + _output_size(msg)
                self.output_used[cell_index] = used
                if used > max_output:
                    self.truncated.add(cell_index)
                    return None
            return super().output(outs, msg, display_id, cell_index)

    manager = LimitedKernelManager(kernel_name="python3", transport="ipc",
                                   ip=str(workdir.parent / "kernel" / "ipc"))
    return GradingClient(notebook, km=manager, allow_errors=True, interrupt_on_timeout=True,
                         shutdown_kernel="immediate", startup_timeout=120, iopub_timeout=10,
                         resources={"metadata": {"path": str(workdir)}})


@dataclass
class _Step:
    """One cell to execute: the student's (with its code-cell number) or a grading test's."""

    cell: Any
    number: int | None = None  # the student's code-cell number; None for injected or test cells
    exercise: str | None = None
    test: GradingTest | None = None


def _steps(notebook: Any, chapter: ChapterTests, test_timeout: float) -> list[_Step]:
    import nbformat

    steps, number = [], 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        injected = exercises.is_injected_parameters(cell)
        if not injected:
            number += 1
        steps.append(_Step(cell, None if injected else number, exercises.exercise_of(cell)))
    for test in chapter.tests:
        source = (f'__import__("utils.grading", fromlist=["_"]).run_test_in_kernel('
                  f'{str(chapter.path)!r}, {test.name!r}, {test_timeout!r})')
        steps.append(_Step(nbformat.v4.new_code_cell(source), test=test))
    return steps


def _where(step: _Step) -> str:
    if step.test is not None:
        return f"the grading test of exercise {step.test.exercise}"
    if step.number is None:
        return "the grading parameters cell"
    return f"code cell {step.number}" + (f" (exercise {step.exercise})" if step.exercise else "")


def _kernel_end(client: Any) -> str:
    """How the kernel process ended, in words."""
    process = getattr(getattr(client.km, "provisioner", None), "process", None)
    code = process.poll() if process is not None else None
    if code is None:
        return "it stopped"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"it was killed by {signal.Signals(-code).name}"
    return f"it exited with code {code}"


_STOP = threading.Event()  # set on Ctrl-C: every running submission stops at once


class GradingInterrupted(Exception):
    """The instructor interrupted the grading."""


async def _execute(client: Any, cell: Any, index: int, hard_limit: float) -> None:
    """Run one cell; TimeoutError past `hard_limit` seconds, GradingInterrupted on Ctrl-C."""
    task = asyncio.ensure_future(client.async_execute_cell(cell, index))
    end = time.monotonic() + hard_limit
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.5)
        if done:
            task.result()
            return
        if _STOP.is_set() or time.monotonic() >= end:
            task.cancel()
            with contextlib.suppress(BaseException):  # it ends as cancelled or "dead kernel"
                await task
            raise GradingInterrupted() if _STOP.is_set() else TimeoutError()


async def _stop_kernel(client: Any) -> None:
    """Kill the kernel and what it started (its process group), free its channels and files.

    nbclient leaves alone a kernel manager it was handed, so this is the grader's job. A kernel
    that failed to start leaves nbclient's exit hook behind (it would fail at exit): removed.
    """
    atexit.unregister(client._cleanup_kernel)
    with contextlib.suppress(Exception):
        if client.kc is not None:
            client.kc.stop_channels()
    with contextlib.suppress(Exception):
        if client.km is not None and client.km.has_kernel:
            await client.km.shutdown_kernel(now=True)


class _Run:
    """Runs one submission's steps in fresh kernels and keeps what happened.

    A cell that stops the kernel (a crash, memory, an endless loop deaf to interrupts) is
    skipped in a fresh kernel that replays the others, up to MAX_KERNEL_STARTS kernels.
    """

    def __init__(self, steps: list[_Step], chapter: ChapterTests, limits: Limits,
                 workdir: Path, kernel_prefix: list[str]):
        self.steps, self.limits, self.workdir, self.prefix = steps, limits, workdir, kernel_prefix
        self.cell_timeout = limits.cell_timeout or chapter.cell_timeout
        self.notebook_timeout = limits.notebook_timeout or chapter.notebook_timeout
        self.test_timeout = limits.test_timeout or chapter.test_timeout
        self.deadline: float | None = None  # set once the first kernel is up
        self.skip: dict[int, str] = {}  # steps not to run again, and why
        self.results: dict[str, Verdict] = {}
        self.truncated: set[int] = set()
        self.timed_out = self.out_of_time = False
        self.problems: list[str] = []

    async def run(self) -> None:
        import nbformat

        notebook = nbformat.v4.new_notebook(cells=[step.cell for step in self.steps])
        env = kernel_environment(self.workdir, self.limits.threads_per_kernel)
        for start in range(1, MAX_KERNEL_STARTS + 1):
            client = _make_client(notebook, self.prefix, self.limits.memory_bytes, self.workdir,
                                  MAX_OUTPUT_CHARS)
            started = False
            with (self.workdir.parent / "kernel" / f"log-{start}.txt").open("w") as log:
                try:
                    async with client.async_setup_kernel(env=env, stdout=log, stderr=log):
                        started = True
                        self.deadline = self.deadline or time.monotonic() + self.notebook_timeout
                        lost = await self._run_in(client)
                except Exception as error:
                    if started:  # cells are handled inside: this is the grader's own failure
                        raise
                    again = " again after it stopped; later cells did not run" if start > 1 else ""
                    self.problems.append(f"the kernel did not start{again} "
                                         f"({type(error).__name__}: {error})"
                                         + ("" if again else "; is the memory limit too low?"))
                    return  # what earlier kernels found (their test verdicts) is kept
                finally:
                    await _stop_kernel(client)
            if lost is None:
                return
            if time.monotonic() >= self.deadline or start == MAX_KERNEL_STARTS:
                self.problems.append("grading gave up after the kernel stopped; later cells "
                                     "did not run")
                return
            self.skip[lost] += "; the other cells ran again in a fresh kernel, without it"

    async def _run_in(self, client: Any) -> int | None:
        """Run every step not done yet; return the one that stopped the kernel, if one did."""
        from nbclient.exceptions import DeadKernelError

        for index, step in enumerate(self.steps):
            if index in self.skip or (step.test is not None and step.test.name in self.results):
                continue
            if step.test is None:
                timeout = min(self.cell_timeout, self.deadline - time.monotonic())
                if timeout <= 0:
                    self.out_of_time = self.timed_out = True
                    continue
            else:
                timeout = self.test_timeout + 2  # the test's own alarm should come first
            client.current_cell, client.timeout = index, max(1, round(timeout))
            started = time.monotonic()
            try:
                await _execute(client, step.cell, index, timeout + HARD_KILL_GRACE)
            except (TimeoutError, DeadKernelError):
                self._kernel_lost(step, index, time.monotonic() - started >= timeout, client)
                return index
            finally:
                self.truncated |= client.truncated
            if index in client.timed_out and step.test is None:
                ran_out = timeout < self.cell_timeout
                self.timed_out, self.out_of_time = True, self.out_of_time or ran_out
                self.skip[index] = f"{_where(step)} was stopped after {timeout:.0f} s" + (
                    " (the time left for the whole notebook)" if ran_out else "")
            if step.test is not None:
                self.results[step.test.name] = _test_result(step, self.test_timeout)
        return None

    def _kernel_lost(self, step: _Step, index: int, too_long: bool, client: Any) -> None:
        what = ("ran out of time and ignored the interrupt, so its kernel was stopped"
                if too_long else f"stopped the kernel ({_kernel_end(client)})")
        self.skip[index] = f"{_where(step)} {what}"
        if step.test is None:
            self.timed_out |= too_long
        else:
            why = (f"took longer than {self.test_timeout:g} s" if too_long
                   else "the kernel stopped while testing this exercise")
            self.results[step.test.name] = Verdict(step.test, False, why)

    def outcome(self) -> tuple[list[Verdict], list[str], str]:
        """The test results (in the steps' order), the problems met, and the status."""
        problems = [*self.skip.values(), *self.problems]
        if self.out_of_time:
            problems.append(f"the notebook used up its {self.notebook_timeout:.0f} s in all, so "
                            "some cells were stopped or did not run")
        errors = bool(self.problems) or any(self.steps[i].test is None for i in self.skip)
        for index, step in enumerate(self.steps):
            if index in self.truncated:
                problems.append(f"the output of {_where(step)} was cut at "
                                f"{MAX_OUTPUT_CHARS:,} characters")
            if step.test is None and index not in self.skip:
                error = exercises.first_error(step.cell)
                if error is not None:
                    errors = True
                    problems.append(f"{_where(step)} raised {exercises.describe_error(error)}")
        results = [self.results.get(step.test.name) or Verdict(
            step.test, False, "not graded: the kernel stopped, or time ran out, before this test")
            for step in self.steps if step.test is not None]
        status = "timeout" if self.timed_out else "errors" if errors else "ok"
        return results, problems, status


def _test_result(step: _Step, seconds: float) -> Verdict:
    assert step.test is not None
    for output in step.cell.get("outputs", []):
        found = output.get("data", {}).get(GRADE_MIME)
        if found:
            return Verdict(step.test, bool(found["passed"]), str(found["message"]))
    error = exercises.first_error(step.cell)
    if error is not None and error.get("ename") == "KeyboardInterrupt":
        return Verdict(step.test, False, f"took longer than {seconds:g} s")
    why = f"{error.get('ename')}: {error.get('evalue')}" if error else "no result came back"
    return Verdict(step.test, False, f"the test could not run ({why})")


def grade_file(path: Path, name: str, chapters: dict[str, ChapterTests], limits: Limits,
               kernel_prefix: list[str], chapter: str | None = None,
               fallback_chapter: str | None = None) -> Result:
    """Grade one file (never modified: it runs from a copy in a temporary folder)."""
    import logging

    from papermill.parameterize import parameterize_notebook

    logging.getLogger("papermill").setLevel(logging.ERROR)  # the feedback says it, plainer

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="grade-") as temporary:
        workdir = Path(temporary) / "work"
        (Path(temporary) / "kernel").mkdir()
        workdir.mkdir()
        copy = workdir / Path(name).name
        try:
            shutil.copyfile(path, copy)
        except OSError as error:
            return Result(name, "unreadable", problems=[f"the file cannot be read ({error})"])
        notebook, why = read_submission(copy)
        if notebook is None:
            return Result(name, "unreadable", problems=[f"this file cannot be graded: {why}"],
                          seconds=time.perf_counter() - started)
        chapter = chapter or chapter_of(notebook, Path(name).name) or fallback_chapter
        if chapter not in chapters:
            known = ", ".join(sorted(chapters))
            why = (f"it is for chapter {chapter}, which has no grading tests (known: {known})"
                   if chapter else "no exercise ids found, so its chapter is unknown "
                   "(use --chapter)")
            return Result(name, "errors", chapter, problems=[f"not graded: {why}"],
                          seconds=time.perf_counter() - started)
        tests = chapters[chapter]
        notes = []
        kept = exercises.without_appendix(notebook.cells)
        if len(kept) < len(notebook.cells):  # only the learner's own exercise cells count
            notes.append("the notebook still has its Solutions appendix: it was not run, and "
                         "only the exercise cells were graded")
            notebook.cells = kept
        if tests.parameters:
            if not any("parameters" in c.metadata["tags"] for c in notebook.cells):
                notes.append("no cell is tagged `parameters`: the grading parameters were set "
                             "at the top instead")
            notebook.metadata.setdefault("papermill", {})
            notebook = parameterize_notebook(notebook, tests.parameters, kernel_name="python3",
                                             language="python")
        run = _Run(_steps(notebook, tests, limits.test_timeout or tests.test_timeout), tests,
                   limits, workdir, kernel_prefix)
        asyncio.run(run.run())
    results, problems, status = run.outcome()
    return Result(name, status, chapter, results, notes + problems, time.perf_counter() - started)


def _number(value: float) -> str:
    return f"{value:g}"


def feedback_text(result: Result) -> str:
    """The short feedback file of one submission: which exercises passed, why the others failed."""
    maximum = sum(result.maximum().values())
    chapter = f" (chapter {result.chapter})" if result.chapter else ""
    if not result.tests:
        return "\n".join([f"{result.submission}{chapter}: not graded, status {result.status}",
                          "", *result.problems]) + "\n"
    lines = [f"{result.submission}{chapter}: {_number(result.total)}/{_number(maximum)} points, "
             f"status {result.status}", ""]
    earned, worth = result.points(), result.maximum()
    for exercise in worth:
        failures = [r for r in result.tests if r.test.exercise == exercise and not r.passed]
        verdict = "passed" if not failures else "failed: " + "; ".join(
            r.message for r in failures)
        lines.append(f"Exercise {exercise}: {_number(earned[exercise])}/"
                     f"{_number(worth[exercise])}, {verdict}")
    if result.problems:
        lines += ["", "While running the notebook:", *(f"- {p}" for p in result.problems)]
    return "\n".join(lines) + "\n"


def write_report(results: list[Result], out: Path) -> Path:
    """Write `grades.csv` and the feedback files in `out`; return the CSV's path."""
    exercises: dict[str, None] = {}
    for result in results:
        exercises.update(dict.fromkeys(result.maximum()))
    out.mkdir(parents=True, exist_ok=True)
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    for old in feedback.glob("*.txt"):
        old.unlink()
    csv_path = out / "grades.csv"
    with csv_path.open("w", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["submission", "chapter", *exercises, "total", "status"])
        for result in sorted(results, key=lambda r: r.submission):
            points = result.points()
            cells = [_number(points[e]) if e in points else ("0" if not result.tests else "")
                     for e in exercises]
            writer.writerow([result.submission, result.chapter or "", *cells,
                             _number(result.total), result.status])
    used: set[str] = set()
    for result in results:
        stem = result.submission.replace("/", "__")
        name, number = f"{stem}.txt", 1
        while name in used:
            number += 1
            name = f"{stem}.{number}.txt"
        used.add(name)
        (feedback / name).write_text(feedback_text(result))
    return csv_path


def list_submissions(folder: Path) -> list[tuple[Path, str]]:
    """Every file under `folder` (subfolders too, e.g. one per student), with its relative name."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() or (path.is_symlink() and not path.is_dir()):
            found.append((path, path.relative_to(folder).as_posix()))
    return found


def grade_folder(folder: Path, tests_folder: Path = DEFAULT_TESTS, out: Path = DEFAULT_OUT, *,
                 jobs: int | None = None, chapter: str | None = None,
                 limits: Limits | None = None, progress: bool = True) -> list[Result]:
    """Grade every file in `folder` in parallel; write the CSV and feedback files into `out`."""
    from tqdm import tqdm

    if not folder.is_dir():
        raise FileNotFoundError(f"no submissions folder at {folder}")
    chapters = find_chapter_tests(tests_folder)
    if chapter is not None and chapter not in chapters:
        raise ValueError(f"no grading tests for chapter {chapter} in {tests_folder}")
    submissions = list_submissions(folder)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    jobs = max(1, jobs or cores or 1)
    limits = replace(limits or Limits(), threads_per_kernel=max(1, (cores or 1) // jobs))
    prefix = limits.isolation_prefix
    if prefix is None:
        prefix = kernel_isolation()[0] if limits.isolate else []
    fallback = _majority_chapter(submissions)
    _STOP.clear()
    pool = ThreadPoolExecutor(max_workers=jobs)
    with tqdm(total=len(submissions), unit="file", disable=not progress) as bar:
        futures = {pool.submit(grade_file, path, name, chapters, limits, prefix, chapter,
                               fallback): name for path, name in submissions}
        try:
            finished = list(_collect(futures, bar))
        except KeyboardInterrupt:  # Ctrl-C: stop the kernels now rather than grade on
            _STOP.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    pool.shutdown()
    write_report(finished, out)
    return sorted(finished, key=lambda r: r.submission)


def _collect(futures: dict[Any, str], bar: Any) -> Iterator[Result]:
    """The results of the futures as they finish, with the progress bar kept up to date."""
    for future in as_completed(futures):
        name = futures[future]
        try:
            result = future.result()
        except Exception as error:  # a bug of the grader must not lose a submission
            result = Result(name, "errors", problems=[
                f"the grader itself failed on this file ({type(error).__name__}: {error}); "
                "please tell the course maintainers"])
            print(f"grader error on {name}: {error!r}", file=sys.stderr)
        bar.set_postfix_str(f"{name}: {result.status}", refresh=False)
        bar.update()
        yield result


def _majority_chapter(submissions: list[tuple[Path, str]]) -> str | None:
    """The chapter most readable submissions belong to (for files whose own is not clear)."""
    chapters = Counter()
    for path, name in submissions:
        with contextlib.suppress(OSError):
            notebook, _ = read_submission(path)
            found = chapter_of(notebook, Path(name).name) if notebook is not None else None
            if found:
                chapters[found] += 1
    return chapters.most_common(1)[0][0] if chapters else None


def parse_memory(text: str) -> int:
    """'4G', '512M', '2.5G' or 'none' -> bytes (0 for no limit)."""
    text = text.strip().upper()
    if text in ("NONE", "0", "OFF"):
        return 0
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)I?B?", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"memory looks like 4G, 512M or none, got {text!r}")
    scale = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}[match.group(2)]
    return int(float(match.group(1)) * scale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Grade every file of a folder of submitted notebooks headless.",
        epilog="A guard against accidents, not a security sandbox: for untrusted code, grade "
               "inside the course container.")
    parser.add_argument("submissions", type=Path, help="folder of submitted files")
    parser.add_argument("--tests", type=Path, default=DEFAULT_TESTS,
                        help="folder of grading-test files NN_name.py (default: tests/grading)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where grades.csv and feedback/ go (default: build/grades)")
    parser.add_argument("--chapter", help="grade every file as this chapter (e.g. 01) instead "
                        "of reading it from the notebook's exercise ids")
    parser.add_argument("-j", "--jobs", type=int, help="submissions graded at once "
                        "(default: one per CPU core)")
    parser.add_argument("--cell-timeout", type=float, help="seconds per cell "
                        "(default: the chapter's CELL_TIMEOUT)")
    parser.add_argument("--notebook-timeout", type=float, help="seconds for all cells "
                        "(default: the chapter's NOTEBOOK_TIMEOUT)")
    parser.add_argument("--test-timeout", type=float, help="seconds per grading test "
                        "(default: the chapter's TEST_TIMEOUT)")
    parser.add_argument("--memory", type=parse_memory, default=DEFAULT_MEMORY,
                        help="data memory per kernel, e.g. 4G, 8G or none (default: 4G)")
    parser.add_argument("--allow-network", action="store_true",
                        help="no isolation: the notebooks may reach the network "
                        "and write outside their temporary folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.chapter is not None and not re.fullmatch(r"\d\d", args.chapter):
        parser.error(f"--chapter looks like 01, got {args.chapter!r}")

    prefix, isolation = [], "off (--allow-network)"
    if not args.allow_network:
        prefix, isolation = kernel_isolation()
    memory = f"{args.memory / 1024**3:g} GiB" if args.memory else "none"
    print(f"isolation: {isolation}; memory limit per kernel: {memory}", flush=True)
    limits = Limits(args.cell_timeout, args.notebook_timeout, args.test_timeout, args.memory,
                    not args.allow_network, isolation_prefix=prefix)
    started = time.perf_counter()
    try:
        results = grade_folder(args.submissions, args.tests, args.out, jobs=args.jobs,
                               chapter=args.chapter, limits=limits,
                               progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the kernels were stopped and nothing was written", file=sys.stderr)
        return 130
    seconds = time.perf_counter() - started
    counts = Counter(r.status for r in results)
    print(f"graded {len(results)} file(s) in {seconds:.1f} s: "
          + ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s]))
    print(f"wrote {args.out / 'grades.csv'} and {len(results)} feedback file(s) in "
          f"{args.out / 'feedback'}")
    if not results:
        print(f"warning: {args.submissions} holds no files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
