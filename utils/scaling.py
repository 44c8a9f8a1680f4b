"""Measuring data-parallel training on a shared machine: launching the runs, summing them up, plots.

Chapter 07 times a CNN on one process and on several Horovod ranks. Other work on the machine
can only slow a measurement down; this module holds what copes with that (the fastest of
several timings, a baseline measured again when it is implausibly slow), so that the chapter's
cells show the lesson, not the bookkeeping.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Run = dict[str, Any]  # rank 0's JSON results of one training job (scripts/train_mnist_hvd.py)

# Timing noise tolerated before a speedup above the rank count counts as implausible.
NOISE_ALLOWANCE = 1.15
LEGEND_FONT_SIZE = 9  # points: the legends go below the axes, where they cover no data


def _legend_below(owner: Any, handles: Sequence[Any] | None = None, ncol: int = 2) -> None:
    """A legend under the axes (or under the figure, for a figure), out of the data's way."""
    import matplotlib.pyplot as plt

    if isinstance(owner, plt.Figure):
        owner.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                     ncol=ncol, fontsize=LEGEND_FONT_SIZE, frameon=False)
    else:
        owner.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol,
                     fontsize=LEGEND_FONT_SIZE, frameon=False)


@dataclass(frozen=True)
class ThroughputStudy:
    """The rows of a single-process throughput study that the chapter talks about."""

    best: Run  # the fastest CPU setting of all
    best_plain: Run  # the fastest without XLA
    best_xla: Run | None  # the fastest with XLA (None when XLA was not measured)
    one_thread: Run  # the fastest on one thread


def summarize_throughput(rows: Sequence[Run]) -> ThroughputStudy:
    """Pick the fastest CPU rows overall, without XLA, with XLA and on one thread."""
    cpu = [row for row in rows if row["device"] == "cpu"]
    if not cpu:
        raise ValueError(f"expected throughput rows with device 'cpu', got {len(rows)} row(s) "
                         "and none on the CPU")

    def fastest(selected: Sequence[Run]) -> Run | None:
        return max(selected, key=lambda row: row["images_per_second"], default=None)

    plain = fastest([row for row in cpu if not row["xla"]])
    single = fastest([row for row in cpu if row["threads"] == 1])
    if plain is None or single is None:
        raise ValueError("expected CPU rows without XLA and on one thread in the study")
    return ThroughputStudy(fastest(cpu), plain, fastest([row for row in cpu if row["xla"]]),
                           single)


def fastest_batch(rows: Sequence[Run], *, device: str, threads: int, max_batch: int) -> int:
    """The batch size of the fastest row without XLA on `device` with `threads`, at most
    `max_batch`."""
    candidates = [row for row in rows if row["device"] == device and not row["xla"]
                  and row["threads"] == threads and row["batch_size"] <= max_batch]
    if not candidates:
        raise ValueError(f"no throughput row on {device!r} with {threads} thread(s), without XLA "
                         f"and a batch of at most {max_batch}")
    return max(candidates, key=lambda row: row["images_per_second"])["batch_size"]


def plot_throughput(rows: Sequence[Run], bound: float, batch_sizes: Sequence[int]) -> None:
    """Training images/s against the batch size, one line per (device, threads, XLA) setting,
    and the bound the matrix-multiply rate sets (`bound`, images/s)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    for device, threads, xla in sorted({(r["device"], r["threads"], r["xla"]) for r in rows}):
        setting = [r for r in rows
                   if (r["device"], r["threads"], r["xla"]) == (device, threads, xla)]
        label = f"{device.upper()}, {threads} thread(s)" + (", XLA" if xla else "")
        ax.plot([r["batch_size"] for r in setting], [r["images_per_second"] for r in setting],
                "s--" if xla else "o-", label=label)
    ax.axhline(bound, color="gray", ls=":", label="CPU bound from the matmul rate")
    ax.set(xscale="log", xlabel="batch size", ylabel="training images / s",
           title="One process, chapter 06's CNN")
    ax.set_xticks(list(batch_sizes), [str(b) for b in batch_sizes])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    _legend_below(ax)
    plt.show()


def launch(script: str | Path, n_ranks: int, *args: Any, out: str | Path,
           env: Mapping[str, str] | None = None, timeout: float = 900) -> Run:
    """`horovodrun -np n_ranks python script ARGS --out OUT` on this machine: print the command,
    each rank's first line (who is who) and what rank 0 printed; return rank 0's JSON results."""
    from utils import distributed

    command = [sys.executable, str(script), *map(str, args), "--out", str(out)]
    print(f"$ horovodrun -np {n_ranks} -H localhost:{n_ranks} python scripts/{Path(script).name} "
          + " ".join(map(str, args)))
    job = distributed.horovodrun(command, n_ranks, env=env, timeout=timeout)
    lines = [distributed.rank_lines(job.stdout, rank=r) for r in range(n_ranks)]
    print("\n".join([rank[0] for rank in lines if rank] + lines[0][1:]))  # no [rank] prefixes
    print(f"(the job took {job.seconds:.0f} s, start-up included)\n")
    return json.loads(Path(out).read_text())


def remeasure_slow_baselines(runs: dict[Any, Run], baselines: Sequence[Any],
                             again: Callable[[Any], Run], *, ranks: int = 2) -> None:
    """Measure a one-rank baseline again when `ranks` ranks look more than `ranks` times faster
    (with NOISE_ALLOWANCE): other work slowed the baseline down while it ran. In place."""
    for key in baselines:
        if key in runs and (runs[ranks]["images_per_second"]
                            > ranks * NOISE_ALLOWANCE * runs[key]["images_per_second"]):
            print(f"baseline {key!r}: under 1/{ranks} of the rate of {ranks} ranks, so other work "
                  "slowed it down; measuring it again")
            runs[key] = again(key)


def speedup_note(speedup: float, ranks: int) -> str | None:
    """A line for a speedup above the rank count (with NOISE_ALLOWANCE); None when plausible."""
    if speedup > ranks * NOISE_ALLOWANCE:
        return (f"(a speedup of {speedup:.2f} on {ranks} ranks is more than they can do: the "
                "baseline was slowed down by other work on the machine; run section 8 again)")
    return None


def efficiency_note(efficiency: float) -> str | None:
    """A line for a share of the matrix-multiply rate above 1; None for a plausible one."""
    if efficiency >= 1:
        return (f"(a share of {efficiency:.2f} is more than the hardware can do: other work "
                "slowed the matrix-multiply yardstick down; run the study again when the "
                "machine is quiet)")
    return None


def plot_scaling(baselines: Mapping[str, Mapping[int, float]], ranks: Sequence[int],
                 published: Mapping[str, Mapping[int, float]]) -> None:
    """Speedup (left) and efficiency (right) of each baseline here, beside published ones."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    handles = left.plot(ranks, ranks, "k:", label="ideal")
    right.axhline(1.0, color="k", ls=":")
    for name, speedup in baselines.items():
        counts = sorted(speedup)
        handles += left.plot(counts, [speedup[n] for n in counts], "o-", label=f"here, {name}")
        right.plot(counts, [speedup[n] / n for n in counts], "o-",
                   color=handles[-1].get_color())
    left.set(xlabel="ranks", ylabel="speedup (images/s)", title="Speedup", xticks=list(ranks))
    for i, ((name, points), marker) in enumerate(zip(published.items(), "^v<sDpP*",
                                                     strict=False)):
        handles += right.plot(list(points), list(points.values()), marker + "--", label=name,
                              color=f"C{(len(baselines) + i) % 10}")  # not the colours here
    right.set(xscale="log", xlabel="workers", ylabel="efficiency", ylim=(0, 1.1),
              title="Efficiency, here and published")
    ticks = [1, 2, 4, 8, 16, 32, 64, 128, 512]
    right.set_xticks(ticks, [str(t) for t in ticks])
    right.xaxis.set_minor_locator(plt.NullLocator())
    _legend_below(fig, handles)  # one legend for both panels, under them
    plt.show()


def plot_time_to_accuracy(runs: Sequence[Run], target: float) -> None:
    """Validation accuracy against training seconds, one line per run, and the target."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots()
    for run in runs:
        curve = np.array(run["validation_curve"])
        ax.plot(curve[:, 0], curve[:, 2], "o-", ms=3,
                label=f"{run['np']} rank(s), {run['threads_per_rank']} thread(s) each, "
                      f"{run['device'][:3]}")
    ax.axhline(target, color="gray", ls=":", label=f"target {target:.0%}")
    ax.set(xlabel="training seconds", ylabel="validation accuracy", ylim=(0.9, 1.0),
           title="Time-to-accuracy")
    _legend_below(ax)
    plt.show()


def code_lines(function: Callable) -> list[str]:
    """The statements of a function's body, one per line as `ast.unparse` writes them: no
    signature, docstring, imports, final `return`, comments or blank lines; a call split over
    several lines counts once."""
    import ast
    import inspect
    import textwrap

    body = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if body and isinstance(body[-1], ast.Return):
        body = body[:-1]  # what a function hands back is its caller's business
    return [line for statement in body if not isinstance(statement, ast.Import | ast.ImportFrom)
            for line in ast.unparse(statement).splitlines()]


def changed_lines(before: Callable, after: Callable) -> int:
    """How many statement lines (`code_lines`) `after` adds to, removes from or rewrites in
    `before`, counted by difflib; a rewritten block counts its longer side."""
    import difflib

    matcher = difflib.SequenceMatcher(a=code_lines(before), b=code_lines(after), autojunk=False)
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes()
               if tag != "equal")
