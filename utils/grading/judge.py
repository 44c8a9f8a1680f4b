"""The judge: a chapter's grading tests, run in a process that never runs the submission's code.

`python -m utils.grading.judge TESTS CONNECTION PID FOLDER VERDICTS SECONDS NAME...` is started
by the grader (behind the same guard as the kernel) once the submission's cells have run. It imports
the chapter's grading-test file and runs the tests NAME... one by one. Their `answers` come from
the submission's kernel as data (`bridge`): a variable's value, a function's results on
arguments the test chose, a Keras model's layers and weights. Every assert, every check
function and every verdict runs here, so nothing the submission did to its own kernel
(rebinding functions, patching builtins, tracing, printing results) reaches them.

Each verdict is one JSON line of the file VERDICTS, in a folder the kernel cannot write, which
the judge creates once it is out of reach of the kernel (`sandbox.undumpable`): {"name",
"passed", "message"}, or {"name", "lost": true} when the kernel stopped while a test used it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from utils.grading import bridge
from utils.grading.api import (
    Answers,
    TookTooLong,
    describe_failure,
    load_module,
    time_limit,
)
from utils.grading.sandbox import undumpable

INTERRUPT_GRACE = 10.0  # seconds the kernel may take to stop a call it was interrupted in


class KernelLost(Exception):
    """The submission's kernel stopped (or would not stop a call) while a test used it."""


class AnswerRaised(Exception):
    """The submission's code raised an error in its kernel; subclassed with the error's name."""


def raised(type_name: str, message: str) -> Exception:
    """The error the submission raised, re-made here with its type's name and message."""
    from utils import exercises

    if type_name == "NotImplementedError" and exercises.UNANSWERED_WORDS.fullmatch(message):
        return NotImplementedError(message)  # the placeholder's own: "not answered yet"
    name = type_name if type_name.isidentifier() else "Error"
    return type(name, (AnswerRaised,), {})(message)


class Kernel:
    """The submission's running kernel, asked for data through `bridge.serve`."""

    def __init__(self, connection_file: str, pid: int, folder: Path):
        from jupyter_client import BlockingKernelClient

        self.pid, self.folder, self.requests = pid, folder, 0
        self.client = BlockingKernelClient(connection_file=connection_file)
        self.client.load_connection_file()
        self.client.start_channels(iopub=False, stdin=False, hb=False, control=False)

    def request(self, request: dict[str, Any], args: tuple = ()) -> tuple[dict[str, Any], Path]:
        """Send a request; the reply's spec and its folder."""
        self.requests += 1
        folder = self.folder / f"request-{self.requests}"
        (folder / "args").mkdir(parents=True)
        (folder / "request.json").write_text(json.dumps(request))
        packer = bridge.Packer(folder / "args")
        packer.write(packer.pack(list(args)))
        message = self.client.execute(f'__import__("utils.grading.bridge", fromlist=["_"]).serve('
                                      f'{str(folder)!r})', silent=True, store_history=False)
        try:
            self._wait(message, None)
        except TookTooLong:
            self._stop_call(message)
            raise
        try:
            return json.loads((folder / "reply" / bridge.SPEC).read_text()), folder / "reply"
        except (OSError, ValueError):
            raise AssertionError("no answer came back from the notebook's kernel (did the "
                                 "notebook replace Python's own functions?)") from None

    def _wait(self, message: str, seconds: float | None) -> None:
        """Wait for the kernel's reply to `message` (at most `seconds`, if given)."""
        end = None if seconds is None else time.monotonic() + seconds
        while end is None or time.monotonic() < end:
            with contextlib.suppress(queue.Empty):  # nothing yet
                reply = self.client.get_shell_msg(timeout=0.5)
                if reply.get("parent_header", {}).get("msg_id") == message:
                    return
            if not self._alive():
                raise KernelLost()
        raise KernelLost()

    def _stop_call(self, message: str) -> None:
        """Interrupt a call that ran out of time, so that the next test finds the kernel free."""
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGINT)
        self._wait(message, INTERRUPT_GRACE)

    def _alive(self) -> bool:
        """Whether the kernel runs (a dead one the grader has not yet reaped counts as dead)."""
        try:
            os.kill(self.pid, 0)
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except ProcessLookupError:
            return False
        except (OSError, IndexError):  # no /proc here: it exists, so it runs
            return True
        return state not in ("Z", "X")

    def value(self, spec: dict[str, Any], folder: Path) -> Any:
        return bridge.unpack(folder, spec, lambda handle, name, source: RemoteFunction(
            self, handle, name, source))


class RemoteFunction:
    """A function of the submission: called here, run in its kernel on the arguments sent."""

    def __init__(self, kernel: Kernel, handle: str, name: str, source: str | None):
        self.kernel, self.handle, self.__name__, self.source = kernel, handle, name, source

    def __call__(self, *args: Any) -> Any:
        try:
            spec, folder = self.kernel.request({"call": self.handle}, args)
        except bridge.Unsupported as error:
            raise TypeError(f"cannot send {error} to the notebook") from None
        if spec["t"] == "raised":
            raise raised(spec["type"], spec["v"])
        if spec["t"] == "unsupported":
            raise AssertionError(f"{self.__name__} returned {spec['v']}, which cannot be graded "
                                 "(return numbers, arrays, lists, dicts or a Keras model)")
        return self.kernel.value(spec["v"], folder)

    def __repr__(self) -> str:
        return f"<the notebook's function {self.__name__}>"


class KernelNamespace(Mapping):
    """The notebook's variables, by name, fetched from its kernel as data once each. Wrapped in
    `api.Answers`, as a namespace at hand is: the same errors for a missing name or a `...`."""

    def __init__(self, kernel: Kernel):
        self.kernel, self.cache = kernel, {}

    def _fetch(self, name: str) -> tuple[str, Any]:
        if name not in self.cache:
            spec, folder = self.kernel.request({"get": name})
            if spec["t"] == "raised":
                raise raised(spec["type"], spec["v"])
            self.cache[name] = ((spec["t"], spec.get("v")) if spec["t"] in ("missing",
                                                                              "unsupported")
                                else ("value", self.kernel.value(spec, folder)))
        return self.cache[name]

    def __getitem__(self, name: str) -> Any:
        kind, value = self._fetch(name)
        if kind == "missing":
            raise KeyError(name)
        if kind == "unsupported":
            raise AssertionError(f"`{name}` is {value}, which cannot be graded")
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._fetch(name)[0] != "missing"

    def __iter__(self) -> Iterator[str]:
        return iter(())  # the notebook's names are asked for one by one

    def __len__(self) -> int:
        return 0


def main(argv: list[str]) -> int:
    tests_path, connection, pid, folder, verdicts_path, seconds, *names = argv
    undumpable()  # first: a file it opens from here on is out of the kernel's reach
    verdicts = open(verdicts_path, "x", buffering=1)  # noqa: SIM115 - open for the whole run
    module = load_module(tests_path)
    kernel = Kernel(connection, int(pid), Path(folder))
    answers = Answers(KernelNamespace(kernel))
    for name in names:
        try:
            with time_limit(float(seconds)):
                getattr(module, name)(answers)
            verdict = {"name": name, "passed": True, "message": ""}
        except KernelLost:
            verdicts.write(json.dumps({"name": name, "lost": True}) + "\n")
            return 0
        except BaseException as error:  # noqa: B036 - any failure (even SystemExit) scores zero
            verdict = {"name": name, "passed": False,
                       "message": describe_failure(error, float(seconds))}
        verdicts.write(json.dumps(verdict) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
