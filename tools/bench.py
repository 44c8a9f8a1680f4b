"""`make bench`: measure the course on this machine, each timing repeated, in one run.

Writes build/bench.json and prints a table (median and min-max spread of the repeats):
notebook wall times under the runner, training throughput of chapter 03's best MLP and
chapter 06's CNN with plain `model.fit`, the CNN's FLOP/s against this machine's fp32 matmul
rate, Horovod images/s on 1 and 2 CPU ranks, grading time per chapter, and `make setup` time
with and without the cached Horovod wheel. Every measurement runs in a fresh process.

    python tools/bench.py [--repeat 3] [--only notebooks throughput horovod grading setup]
                          [--grading-copies 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "notebooks" / "scripts"
PYTHON = sys.executable
SECTIONS = ["notebooks", "throughput", "horovod", "grading", "setup"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

# Timed in a fresh process: the fp32 matmul rate and plain `fit` throughput of a model.
MATMUL = """
import json, time, tensorflow as tf
a = tf.random.normal((2048, 2048)); b = tf.random.normal((2048, 2048))
(a @ b).numpy()
start = time.perf_counter(); runs = 20
for _ in range(runs): c = a @ b
c.numpy()
print(json.dumps(2 * 2048 ** 3 * runs / (time.perf_counter() - start)))
"""
MLP_FIT = """
import json, time, keras, utils
(x, y), _ = utils.load_mnist(verbose=False)
x, y = x.reshape(-1, 784).astype("float32") / 255, y.astype("int64")
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(512, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])  # chapter 03's best MLP
model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
model.fit(x[:512], y[:512], batch_size=128, epochs=1, verbose=0)  # trace once
start = time.perf_counter()
model.fit(x, y, batch_size=128, epochs=1, verbose=0)
print(json.dumps(len(x) / (time.perf_counter() - start)))
"""
# Chapter 06's CNN timed by the chapters' own code (notebooks/scripts/mnist_cnn.py): one epoch
# of the 60,000 training images at batch 100, as the chapter trains it with SGD.
CNN_FIT = """
import json, sys
sys.path.insert(0, {scripts!r})
from mnist_cnn import load_data, training_images_per_second
(x, y), _ = load_data()
print(json.dumps(training_images_per_second(x, y, batch_size=100, images=len(x))))
"""
# Per training image: 7.5 MFLOP forward (conv1 0.92, conv2 6.55, dense 0.02), x3 with backward.
CNN_TRAINING_FLOP = 22.5e6


def run(command: list[str], timeout: int = 3600, **kwargs) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ENV,
                            cwd=ROOT, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])}... failed:\n{result.stderr[-3000:]}")
    return result.stdout


def python_value(code: str) -> float:
    return json.loads(run([PYTHON, "-c", code]).strip().splitlines()[-1])


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def bench_notebooks(repeat: int, out: Path) -> dict:
    per_notebook: dict[str, list[float]] = {}
    totals = []
    for i in range(repeat):
        summary = out / f"summary-{i}.json"
        total = timed(lambda i=i, summary=summary: run(
            [PYTHON, "-m", "utils.runner", "--out", str(out / f"executed-{i}"),
             "--summary", str(summary)], timeout=7200))
        totals.append(total)
        for notebook in json.loads(summary.read_text())["notebooks"]:
            per_notebook.setdefault(notebook["name"], []).append(notebook["seconds"])
        print(f"  course run {i + 1}/{repeat}: {total:.0f} s", flush=True)
    return {"seconds": {name: stats(v) for name, v in per_notebook.items()},
            "course_seconds": stats(totals)}


def bench_throughput(repeat: int) -> dict:
    matmul = [python_value(MATMUL) for _ in range(repeat)]
    mlp = [python_value(MLP_FIT) for _ in range(repeat)]
    cnn = [python_value(CNN_FIT.format(scripts=str(SCRIPTS))) for _ in range(repeat)]
    matmul_rate = statistics.median(matmul)
    return {
        "matmul_flop_per_second": stats(matmul),
        "mlp_images_per_second": stats(mlp),
        "cnn_images_per_second": stats(cnn),
        "cnn_flop_efficiency": stats([c * CNN_TRAINING_FLOP / matmul_rate for c in cnn]),
    }


def bench_horovod(repeat: int, out: Path) -> dict:
    from utils.distributed import horovodrun

    rates: dict[int, list[float]] = {1: [], 2: []}
    for i in range(repeat):
        for ranks in rates:
            result = out / f"hvd-np{ranks}-{i}.json"
            horovodrun([PYTHON, str(SCRIPTS / "train_mnist_hvd.py"), "--epochs", "2",
                        "--out", str(result)], np=ranks, timeout=1800)
            rates[ranks].append(json.loads(result.read_text())["images_per_second"])
    speedups = [two / one for one, two in zip(rates[1], rates[2], strict=True)]
    return {"images_per_second_np1": stats(rates[1]), "images_per_second_np2": stats(rates[2]),
            "speedup_np2": stats(speedups), "efficiency_np2": stats([s / 2 for s in speedups])}


def bench_grading(repeat: int, out: Path, copies: int = 2) -> dict:
    """Per chapter: `copies` solved copies graded two at a time (`-j 2`), as on a 2-core machine.

    With two copies, the folder's wall time is the time of one submission; `seconds_per_submission`
    is the folder's wall time divided by copies / 2.
    """
    from utils import exercises

    results = {}
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        submissions = out / "submissions" / notebook.stem
        shutil.rmtree(submissions, ignore_errors=True)
        submissions.mkdir(parents=True)
        solved = json.dumps(exercises.solved(json.loads(notebook.read_text())))
        for k in range(copies):
            (submissions / f"student_{k:02}.ipynb").write_text(solved)
        seconds = [timed(lambda s=submissions: run(
            [PYTHON, "-m", "utils.grading", str(s), "--out", str(out / "grades"), "-j", "2",
             "--no-progress"], timeout=3600)) for _ in range(repeat)]
        results[notebook.stem] = {
            "copies": copies,
            "seconds_per_submission": stats([t / (copies / 2) for t in seconds]),
            "submissions_per_minute": stats([copies * 60 / t for t in seconds])}
        print(f"  grading {notebook.stem}: {statistics.median(seconds):.0f} s for {copies}",
              flush=True)
    return results


def bench_setup(repeat: int, out: Path) -> dict:
    results = {}
    cached = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dl-course/wheels"
    for label, wheel_cache in [("cached_wheel", cached), ("no_cached_wheel", None)]:
        seconds = []
        for _ in range(repeat):
            venv = out / "venv"
            shutil.rmtree(venv, ignore_errors=True)
            with tempfile.TemporaryDirectory() as empty:
                env = {**ENV, "HOROVOD_WHEEL_CACHE": str(wheel_cache or empty)}
                start = time.perf_counter()
                subprocess.run([str(ROOT / "tools" / "setup_env.sh"), str(venv)], env=env,
                               check=True, capture_output=True, timeout=3600)
                seconds.append(time.perf_counter() - start)
        shutil.rmtree(out / "venv", ignore_errors=True)
        results[label] = stats(seconds)
    return results


def print_table(report: dict) -> None:
    """The results as a Markdown table, ready for the README."""
    print(f"\nmachine: {report['machine']}; {report['repeat']} runs of each timing\n")
    print("| measurement | median | spread (min - max) |\n|---|---:|---:|")
    for section, values in report["results"].items():
        for name, value in _flatten(values):
            if isinstance(value, dict) and "median" in value:
                low, median, high = (_number(value[k]) for k in ("min", "median", "max"))
                print(f"| {section}: {name} | {median} | {low} - {high} |")


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _flatten(values: dict, prefix: str = ""):
    for name, value in values.items():
        if isinstance(value, dict) and "median" not in value:
            yield from _flatten(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the course on this machine.")
    parser.add_argument("--repeat", type=int, default=3, help="repeats of each timing (>= 1)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS)
    parser.add_argument("--grading-copies", type=int, default=2,
                        help="solved copies of each chapter graded per repeat, two at a time "
                        "(>= 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench.json")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.grading_copies < 1:
        parser.error("--repeat and --grading-copies must be at least 1")
    work = args.out.parent / "bench"
    work.mkdir(parents=True, exist_ok=True)
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"Python {platform.python_version()}, {platform.system()}",
              "repeat": args.repeat, "results": {}}
    benches = {"notebooks": lambda: bench_notebooks(args.repeat, work),
               "throughput": lambda: bench_throughput(args.repeat),
               "horovod": lambda: bench_horovod(args.repeat, work),
               "grading": lambda: bench_grading(args.repeat, work, args.grading_copies),
               "setup": lambda: bench_setup(args.repeat, work)}
    for section in args.only:
        print(f"bench: {section} ...", flush=True)
        report["results"][section] = benches[section]()
        args.out.write_text(json.dumps(report, indent=2) + "\n")  # keep what is done so far
    print_table(report)
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
