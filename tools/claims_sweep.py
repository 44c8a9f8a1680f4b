"""`make claims`: run chapters under several seeds and report, for every claim of the text, in how
many runs it held and its smallest margin. Not part of CI: it takes the course's time per seed.

Each run executes a notebook at its learner defaults with `SEED=k`, claims as notices (as a
learner sees them, so that one claim that does not hold hides none after it), and keeps what
`utils.claim` recorded. Results go to docs/claims.json, keyed by stack, notebook and seed, with
the notebook's content hash: a later sweep of other chapters adds to it, and a changed notebook's
old results are dropped. docs/claims.md is the table, written from all current results.

    make claims                                     every chapter, seeds 0 1 2, on .venv
    make claims NOTEBOOKS="04 05" CLAIMS_ARGS="--seeds 7"
    make claims CLAIMS_ARGS="--stack colab --seeds 0 1"   on Colab's versions (tools/colab_stack.py)
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils import runner  # noqa: E402
from utils.claims import Mode  # noqa: E402

RESULTS = ROOT / "docs" / "claims.json"
TABLE = ROOT / "docs" / "claims.md"
STACKS = ("venv", "colab")


def notebook_hash(path: Path) -> str:
    """The hash of a notebook's cells' sources: outputs and metadata do not change a claim."""
    cells = json.loads(path.read_text())["cells"]
    text = "\x00".join("".join(c["source"]) for c in cells)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                  .splitlines() if line.startswith("model name")), platform.processor())
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def commit() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip() or "unknown"


def kernel_for(stack: str) -> str:
    """The Jupyter kernel of a stack: this venv's python3, or the Colab-version venv's."""
    if stack == "venv":
        return "python3"
    sys.path.insert(0, str(ROOT / "tools"))
    import colab_stack

    built = colab_stack.build(ROOT / "build" / "colab-stack")
    os.environ["JUPYTER_PATH"] = str(built["root"] / "jupyter" / "share" / "jupyter")
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # ipykernel 6.17's debugger warning
    return colab_stack.KERNEL


def sweep(notebooks: list[Path], seeds: list[int], stack: str) -> list[dict[str, Any]]:
    kernel = kernel_for(stack)
    runs = []
    with tempfile.TemporaryDirectory(prefix="claims-") as out:
        for seed in seeds:
            for path in notebooks:
                print(f"[{stack}] {path.stem} seed {seed} ...", flush=True)
                source_hash = notebook_hash(path)  # before the run: the notebook it ran
                result = runner.execute(path, Path(out) / f"{seed}" / path.name, {"SEED": seed},
                                        1800, Mode.NOTICE, kernel_name=kernel)
                missed = sum(not c["holds"] for c in result["claims"])
                error = f" -- {result['error']}" if "error" in result else ""
                print(f"[{stack}] {path.stem} seed {seed}: {result['status']} in "
                      f"{result['seconds']:.0f} s, {len(result['claims'])} claims, "
                      f"{missed} did not hold{error}", flush=True)
                runs.append({"stack": stack, "notebook": path.stem, "seed": seed,
                             "hash": source_hash, "status": result["status"],
                             "seconds": result["seconds"], "error": result.get("error"),
                             "claims": [{k: c[k] for k in ("sentence", "holds", "margin")}
                                        for c in result["claims"]]})
    return runs


def merge(old: dict[str, Any], runs: list[dict[str, Any]], stack: str) -> dict[str, Any]:
    """Old results of notebooks that are unchanged and not re-run, plus the new runs."""
    current = {p.stem: notebook_hash(p) for p in runner.find_notebooks()}
    fresh = {(r["stack"], r["notebook"], r["seed"]) for r in runs}
    kept = [r for r in old.get("runs", []) + runs if current.get(r["notebook"]) == r["hash"]
            and (r in runs or (r["stack"], r["notebook"], r["seed"]) not in fresh)]
    stacks = dict(old.get("stacks", {}))
    stacks[stack] = {"date": datetime.date.today().isoformat(), "commit": commit(),
                     "machine": machine()}
    return {"stacks": stacks, "runs": sorted(kept, key=lambda r: (
        STACKS.index(r["stack"]), r["notebook"], r["seed"]))}


def table(results: dict[str, Any]) -> str:
    lines = ["# Claims sweep", "",
             "Written by `make claims` (tools/claims_sweep.py): every chapter at its learner "
             "defaults under several seeds, claims as notices. *Held* counts the runs in which a "
             "claim held; *smallest margin* is how far its values stayed from the bound, relative "
             "to their size, in its worst run (exact claims have none). Every claim must hold in "
             "every run.", ""]
    for stack, info in results["stacks"].items():
        lines.append(f"- stack `{stack}`: {info['date']}, commit {info['commit']}, "
                     f"{info['machine']}")
    for stack in STACKS:
        runs = [r for r in results["runs"] if r["stack"] == stack]
        if not runs:
            continue
        lines += ["", f"## Stack `{stack}`", "",
                  "| notebook | seeds | status | seconds (min-max) |", "|---|---|---|---|"]
        by_notebook = defaultdict(list)
        for r in runs:
            by_notebook[r["notebook"]].append(r)
        for name, group in by_notebook.items():
            statuses = sorted({r["status"] for r in group})
            seconds = [r["seconds"] for r in group]
            lines.append(f"| {name} | {' '.join(str(r['seed']) for r in group)} | "
                         f"{', '.join(statuses)} | {min(seconds):.0f}-{max(seconds):.0f} |")
        lines += ["", "| notebook | claim | held | smallest margin |", "|---|---|---|---|"]
        for name, group in by_notebook.items():
            outcomes = defaultdict(list)
            for r in group:
                seen = defaultdict(int)
                for c in r["claims"]:
                    seen[c["sentence"]] += 1
                    key = c["sentence"] + ("" if seen[c["sentence"]] == 1
                                           else f" (#{seen[c['sentence']]})")
                    outcomes[key].append(c)
            for sentence, found in outcomes.items():
                margins = [c["margin"] for c in found if c["margin"] is not None]
                smallest = f"{min(margins):+.1%}" if margins else "exact"
                held = sum(c["holds"] for c in found)
                flag = "" if held == len(group) else " **not in every run**"
                lines.append(f"| {name} | {sentence.replace('|', '/')} | {held}/{len(group)}"
                             f"{flag} | {smallest} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="names or number prefixes (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--stack", choices=STACKS, default="venv")
    args = parser.parse_args(argv)
    runs = sweep(runner.find_notebooks(args.notebooks), args.seeds, args.stack)
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results = merge(old, runs, args.stack)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    TABLE.write_text(table(results))
    print(f"results in {RESULTS.relative_to(ROOT)}, table in {TABLE.relative_to(ROOT)}")
    failed = [r for r in runs if r["status"] != "ok" or not all(c["holds"] for c in r["claims"])]
    for r in failed:
        print(f"NOT HELD: {r['notebook']} seed {r['seed']} on {r['stack']}: "
              + "; ".join(c["sentence"] for c in r["claims"] if not c["holds"])
              + (f" ({r['error']})" if r["error"] else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
