"""Run the course headless: execute notebooks with papermill into build/, summarise metrics."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from utils.claims import CLAIM_MIME, MODE_VARIABLE, Mode
from utils.exercises import code_cells, describe_error, first_error, strip_volatile
from utils.machine import BACKENDS
from utils.notebook import METRIC_MIME
from utils.paths import BUILD, NOTEBOOKS


def find_notebooks(selection: list[str] | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """All course notebooks in reading order, or those named (by path, name or number prefix)."""
    available = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        return available
    chosen = []
    for item in selection:
        path = Path(item)
        if path.suffix == ".ipynb" and path.exists():
            chosen.append(path.resolve())
            continue
        matches = [nb for nb in available if nb.stem == path.stem or nb.stem.startswith(item)]
        if len(matches) != 1:
            names = ", ".join(nb.stem for nb in available)
            raise SystemExit(f"no single notebook matches {item!r}; choose from: {names}")
        chosen.append(matches[0])
    return chosen


def metrics_of(notebook: dict[str, Any]) -> dict[str, float]:
    """The metrics a notebook recorded with `utils.record`, read from its outputs."""
    found = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            metric = output.get("data", {}).get(METRIC_MIME)
            if metric:
                found[metric["name"]] = metric["value"]
    return found


def claims_of(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    """The claims a notebook checked with `utils.claim`, in order, read from its outputs."""
    return [output["data"][CLAIM_MIME] for cell in notebook.get("cells", [])
            for output in cell.get("outputs", []) if CLAIM_MIME in output.get("data", {})]


def failure_of(notebook: dict[str, Any]) -> str | None:
    """'code cell N: ErrorName: message' for the first cell that raised (N counts the source
    notebook's code cells, not papermill's injected one), else None."""
    for number, cell in code_cells(notebook.get("cells", [])):
        error = first_error(cell)
        if error is not None:
            return f"code cell {number}: {describe_error(error, limit=10_000)}"
    return None


def local_kernel_manager(folder: Path) -> type:
    """A kernel manager whose kernel listens on Unix sockets in `folder`, not on TCP ports: no
    port to collide with and no "Kernel is running over TCP without encryption" warning."""
    from jupyter_client.manager import KernelManager

    class LocalKernelManager(KernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport, self.ip = "ipc", str(folder / "kernel")

    return LocalKernelManager


def execute(source: Path, target: Path, parameters: dict[str, Any], cell_timeout: int | None,
            mode: Mode = Mode.STRICT, kernel_name: str = "python3") -> dict[str, Any]:
    """Execute one notebook into `target` and describe the outcome. In `mode` STRICT a claim of
    the text that does not hold fails the notebook; in NOTICE it is shown, as a learner sees it."""
    import papermill

    target.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        with (tempfile.TemporaryDirectory(prefix="course-kernel-") as sockets,
              environment(**{MODE_VARIABLE: mode.value})):  # the kernel inherits it
            papermill.execute_notebook(
                str(source), str(target), parameters=parameters, cwd=str(source.parent),
                kernel_name=kernel_name, progress_bar=False, execution_timeout=cell_timeout,
                kernel_manager_class=local_kernel_manager(Path(sockets)),
            )
        status, error = "ok", None
    except papermill.PapermillExecutionError as exc:
        status, error = "failed", f"execution count {exc.exec_count}: {exc.ename}: {exc.evalue}"
    except Exception as exc:  # a kernel that dies, a timeout, an unreadable notebook
        lines = str(exc).strip().splitlines()
        status, error = "failed", f"{type(exc).__name__}: {lines[-1] if lines else 'no message'}"
    seconds = round(time.perf_counter() - start, 1)
    executed = json.loads(target.read_text()) if target.exists() else {}
    if status == "failed":
        error = failure_of(executed) or error
    return {"name": source.stem, "status": status, "seconds": seconds,
            "metrics": metrics_of(executed), "claims": claims_of(executed),
            **({"error": error} if error else {})}


@contextlib.contextmanager
def environment(**variables: str) -> Iterator[None]:
    """Set environment variables for the kernels started inside the `with` block."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def print_table(results: list[dict[str, Any]]) -> None:
    rows = [("notebook", "status", "seconds", "metrics")]
    for r in results:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in r["metrics"].items())
        rows.append((r["name"], r["status"], f"{r['seconds']:.1f}", metrics or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=False)), row[3])
        if i == 0:
            print("  ".join("-" * w for w in widths), "-" * 7)
    total = sum(r["seconds"] for r in results)
    print(f"{len(results)} notebook(s), {total:.0f} s in all")


def parse_parameter(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"parameters look like NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute the course notebooks headless.")
    parser.add_argument("notebooks", nargs="*", help="names or number prefixes (default: all)")
    parser.add_argument("-p", "--parameter", action="append", type=parse_parameter, default=[],
                        metavar="NAME=VALUE", help="papermill parameter for every notebook")
    parser.add_argument("--out", type=Path, help="default: build/executed (build/executed-jax "
                        "or -torch on another backend)")
    parser.add_argument("--summary", type=Path, help="default: build/summary.json (or "
                        "summary-jax.json, summary-torch.json)")
    parser.add_argument("--cell-timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--claims", type=Mode, choices=list(Mode), default=Mode.STRICT,
                        help="strict (default): a claim of the text that does not hold fails the "
                             "notebook; notice: it is shown, as in a learner's run")
    parser.add_argument("--update-sources", action="store_true",
                        help="after a clean run, store the outputs in notebooks/ (maintainers)")
    args = parser.parse_args(argv)
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend not in BACKENDS:
        parser.error(f"KERAS_BACKEND={backend!r}: expected one of {', '.join(BACKENDS)}")
    if args.update_sources and backend != "tensorflow":
        parser.error("the stored outputs come from TensorFlow, the default backend: run "
                     "--update-sources without KERAS_BACKEND")
    suffix = "" if backend == "tensorflow" else f"-{backend}"
    args.out = args.out or BUILD / f"executed{suffix}"
    args.summary = args.summary or BUILD / f"summary{suffix}.json"

    notebooks = find_notebooks(args.notebooks)
    if not notebooks:
        print(f"no notebooks found in {NOTEBOOKS}", file=sys.stderr)
        return 2
    out = args.out.resolve()
    if out == NOTEBOOKS.resolve():
        parser.error("--out must not be the source folder; executed copies never overwrite it")
    results = []
    for number, source in enumerate(notebooks, start=1):
        print(f"[{number}/{len(notebooks)}] {source.stem} ...", flush=True)
        result = execute(source, out / source.name, dict(args.parameter), args.cell_timeout,
                         args.claims)
        results.append(result)
        error = f" -- {result['error']}" if "error" in result else ""
        missed = [c for c in result["claims"] if not c["holds"]]
        if missed:
            error += f" -- {len(missed)} claim(s) did not hold: " + "; ".join(
                c["sentence"] for c in missed)
        print(f"[{number}/{len(notebooks)}] {source.stem}: {result['status']} in "
              f"{result['seconds']:.1f} s{error}", flush=True)
        if args.update_sources and result["status"] == "ok":
            executed = json.loads((out / source.name).read_text())
            source.write_text(json.dumps(strip_volatile(executed), indent=1, ensure_ascii=False)
                              + "\n")
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(json.dumps({"notebooks": results}, indent=2) + "\n")
    print()
    print_table(results)
    print(f"summary written to {args.summary}")
    failed = [r for r in results if r["status"] != "ok"]
    for r in failed:
        print(f"FAILED: {r['name']} ({r.get('error', 'unknown error')})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
