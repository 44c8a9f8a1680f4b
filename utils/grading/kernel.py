"""One grading kernel: started behind the guard, a cell run under a hard time limit, stopped."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import signal
import threading
import time
from pathlib import Path
from typing import Any

from utils.grading.sandbox import Isolation, guarded

MAX_OUTPUT_CHARS = 100_000  # per cell; the rest of a cell's output is dropped
HARD_KILL_GRACE = 10.0  # seconds a cell may ignore the interrupt before its kernel is killed

STOP = threading.Event()  # set on Ctrl-C: every running submission stops at once


class GradingInterrupted(Exception):
    """The instructor interrupted the grading."""


def _output_size(msg: dict[str, Any]) -> int:
    content = msg.get("content", {})
    if "text" in content:
        return len(content["text"])
    return sum(len(str(value)) for value in content.get("data", {}).values())


def make_client(notebook: Any, isolation: Isolation, memory_bytes: int, workdir: Path,
                max_output: int = MAX_OUTPUT_CHARS) -> Any:
    """A NotebookClient for `notebook`, whose kernel starts behind guard.py and `isolation`."""
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    class GuardedKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            command = super().format_kernel_cmd(extra_arguments)
            return guarded(command, isolation, memory_bytes, workdir.parent)

    class GradingClient(NotebookClient):
        """Drops a cell's output beyond `max_output` characters (errors are kept)."""

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, on_cell_execute=self._new_cell, **kwargs)
            self.output_chars, self.output_cut = 0, False

        def _new_cell(self, cell: Any, cell_index: int) -> None:
            self.output_chars, self.output_cut = 0, False

        # nbclient has no hook that sees each output message as it comes (on_cell_executed comes
        # after the whole cell, too late for a cell that prints gigabytes): `output` is the
        # public method every one of them goes through.
        def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> Any:
            if msg["msg_type"] != "error":
                self.output_chars += _output_size(msg)
                if self.output_chars > max_output:
                    self.output_cut = True
                    return None
            return super().output(outs, msg, display_id, cell_index)

    manager = GuardedKernelManager(kernel_name="python3", transport="ipc",
                                   ip=str(workdir.parent / "kernel" / "ipc"))
    return GradingClient(notebook, km=manager, allow_errors=True, interrupt_on_timeout=True,
                         shutdown_kernel="immediate", startup_timeout=120, iopub_timeout=10,
                         resources={"metadata": {"path": str(workdir)}})


async def start_kernel(stack: contextlib.AsyncExitStack, client: Any, env: dict[str, str],
                       log: Path) -> None:
    """Start the client's kernel (its output into `log`); `stack`, closed, stops it."""
    stream = stack.enter_context(log.open("w"))
    stack.push_async_callback(stop_kernel, client)
    await stack.enter_async_context(client.async_setup_kernel(env=env, stdout=stream,
                                                              stderr=stream))


async def stop_kernel(client: Any) -> None:
    """Kill the kernel and what it started (its process group), free its channels and files.

    nbclient leaves alone a kernel manager it was handed, so this is the grader's job.
    """
    # A kernel that failed to start leaves nbclient's exit hook behind (it would fail at exit).
    # That hook is private (`_cleanup_kernel`), but it is the very object nbclient registered:
    # only it can be unregistered.
    atexit.unregister(client._cleanup_kernel)
    with contextlib.suppress(Exception):
        if client.kc is not None:
            client.kc.stop_channels()
    with contextlib.suppress(Exception):
        if client.km is not None and client.km.has_kernel:
            await client.km.shutdown_kernel(now=True)


async def execute_cell(client: Any, cell: Any, index: int, seconds: int) -> tuple[bool, bool]:
    """Run one cell, interrupted after `seconds`: (did it run that long, did it lose the kernel).

    nbclient interrupts the kernel at `seconds` (its `timeout`, `interrupt_on_timeout`), so a
    cell that ran that long is one it interrupted: no need to hook its timeout handler. A cell
    deaf to the interrupt is cancelled HARD_KILL_GRACE seconds later, its kernel counted lost.
    GradingInterrupted on Ctrl-C.
    """
    from nbclient.exceptions import DeadKernelError

    client.timeout = seconds
    started = time.monotonic()
    task = asyncio.ensure_future(client.async_execute_cell(cell, index))
    lost = False
    try:
        while not (await asyncio.wait({task}, timeout=0.5))[0]:
            if STOP.is_set() or time.monotonic() >= started + seconds + HARD_KILL_GRACE:
                task.cancel()
                with contextlib.suppress(BaseException):  # it ends as cancelled or "dead kernel"
                    await task
                if STOP.is_set():
                    raise GradingInterrupted()
                lost = True
                break
        else:
            task.result()
    except DeadKernelError:
        lost = True
    return time.monotonic() - started >= seconds, lost


def kernel_end(client: Any) -> str:
    """How the kernel process ended, in words."""
    process = getattr(getattr(client.km, "provisioner", None), "process", None)
    code = process.poll() if process is not None else None
    if code is None:
        return "it stopped"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"it was killed by {signal.Signals(-code).name}"
    return f"it exited with code {code}"
