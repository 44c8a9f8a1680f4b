"""The GPU check's measurements, run by tools/gpu_check.sh on a machine with JAX and a GPU.

    KERAS_BACKEND=jax python tools/gpu_check.py --out results.json [--quick]

1. Chapter 06 (the CNN), every code cell (the solutions too, as `make run`), at learner
   defaults, claims strict: a claim that does not hold stops the check. No Jupyter is needed:
   the cells run in this process, with the parameters set after the parameters cell, as
   papermill does (`--quick`: at the grader's size, claims as notices, for a test on a CPU).
2. Chapter 07's third way, keras.distribution.DataParallel (scripts/train_mnist_data_parallel.py),
   over the devices JAX sees.
3. The seeds' CNN, one training step of 256 images, in float32 and in mixed bfloat16.
4. A large matrix product's TFLOP/s in float32 and bfloat16 (utils.training.matmul_rate).
The results, with the devices and versions, go to --out as JSON.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")


def run_chapter(path: Path, parameters: dict, strict: bool) -> dict:
    """Execute a chapter's code cells in order in one namespace; the setup cell's Colab branch
    is skipped by itself. Returns the seconds, the claims and the metrics it recorded."""
    from utils import exercises
    from utils.claims import MODE_VARIABLE, Mode

    os.environ[MODE_VARIABLE] = (Mode.STRICT if strict else Mode.NOTICE).value
    sys.modules["IPython"] = None  # claims and metrics print their line, as without Jupyter
    cells = json.loads(path.read_text())["cells"]  # the solutions appendix too, as make run
    namespace: dict = {"__name__": "__main__"}
    output = io.StringIO()
    start = time.perf_counter()
    for number, cell in enumerate(c for c in cells if c["cell_type"] == "code"):
        source = exercises.source_of(cell)
        with contextlib.redirect_stdout(output):
            exec(compile(source, f"{path.stem}, code cell {number}", "exec"), namespace)
        if source.lstrip().startswith("# Parameters"):
            namespace.update(parameters)  # what papermill's injected cell does
    lines = output.getvalue().splitlines()
    return {"seconds": time.perf_counter() - start, "parameters": parameters,
            "claims held": sum(line.startswith("✓") for line in lines),
            "claims not held": [line for line in lines if line.startswith("⚠")],
            "metrics": {name: float(value) for name, value in (line.split(" = ") for line in lines
                        if " = " in line and line.split(" = ")[0].isidentifier())}}


def grading_parameters(chapter: str) -> dict:
    """The grader's smaller sizes for a chapter, read from its grading file (not imported: the
    grader's own needs are not installed on the GPU machine)."""
    from utils.paths import GRADING_TESTS

    path, = GRADING_TESTS.glob(f"{chapter}_*.py")
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["PARAMETERS"]:
            return ast.literal_eval(node.value)
    raise ValueError(f"{path} has no PARAMETERS")


def data_parallel(epochs: int, train_samples: int) -> dict:
    script = ROOT / "notebooks" / "scripts" / "train_mnist_data_parallel.py"
    out = Path(os.environ.get("TMPDIR", "/tmp")) / "gpu_check_data_parallel.json"
    subprocess.run([sys.executable, str(script), "--epochs", str(epochs), "--train-samples",
                    str(train_samples), "--out", str(out)], check=True)
    return json.loads(out.read_text())


def step_seconds(policy: str, steps: int, batch: int = 256) -> float:
    """Seconds per training step of the seeds' CNN under a dtype policy, after a warm-up."""
    import keras
    import numpy as np

    from utils.training import seeds_cnn

    keras.utils.set_random_seed(0)
    model = seeds_cnn(dtype=policy, name=f"cnn_{policy}")
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).random((batch, 28, 28, 1), dtype=np.float32)
    y = np.arange(batch) % 10
    model.train_on_batch(x, y)  # compiles the step
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(x, y)
    float(loss)  # waits for the last step
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and claims as notices: a test of the check on a CPU")
    args = parser.parse_args(argv)
    if os.environ.get("KERAS_BACKEND") != "jax":
        parser.error("run with KERAS_BACKEND=jax (tools/gpu_check.sh sets it)")

    import jax
    import keras

    from utils.training import matmul_rate

    quick = grading_parameters("06") if args.quick else {}
    results = {"date": time.strftime("%Y-%m-%d"), "python": platform.python_version(),
               "jax": jax.__version__, "keras": keras.__version__,
               "devices": [str(device) for device in jax.devices()]}
    results["chapter_06"] = run_chapter(ROOT / "notebooks" / "06_cnn.ipynb", quick,
                                        strict=not args.quick)
    results["data_parallel"] = data_parallel(1 if args.quick else 3,
                                             2048 if args.quick else 60_000)
    steps = 3 if args.quick else 50
    results["cnn_step_seconds"] = {policy: step_seconds(policy, steps)
                                   for policy in ("float32", "mixed_bfloat16")}
    n = 1024 if args.quick else 8192
    results["matmul_tflops"] = {dtype: matmul_rate(n, repeats=5, dtype=dtype) / 1e12
                                for dtype in ("float32", "bfloat16")}
    results["matmul_size"] = n
    args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    chapter = results["chapter_06"]
    print(f"chapter 06: {chapter['seconds']:.0f} s, {chapter['claims held']} claims held",
          *chapter["claims not held"], sep="\n")
    print(json.dumps({key: results[key] for key in ("devices", "cnn_step_seconds",
                                                    "matmul_tflops")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
