"""The course as a Colab learner meets it, and Horovod built as the Docker image builds it.

tools/colab_stack.py builds a second venv with Colab's published versions (TensorFlow 2.20.0,
Keras 3.13.2, NumPy 2.1.3, ...) on this machine's Python, installs the helpers the way the setup
cell does (pip from a git URL, here of this checkout, at its HEAD commit: commit before running
this locally) and compiles Horovod for it on a PATH without cmake, with HOME elsewhere. Every
committed notebook then runs alone from an empty working folder, as Colab opens one from
GitHub, at its grading size (the PARAMETERS of
utils/grading/chapter_tests/NN_name.py, which shrink its
experiments): every cell runs (two chapters at a time). Claims run as notices there: they are
about the learner sizes, which `make claims CLAIMS_ARGS="--stack colab"` runs on this stack.
"""

import importlib.util
import json
import os
import runpy
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
GRADING_TESTS = ROOT / "utils" / "grading" / "chapter_tests"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
_spec = importlib.util.spec_from_file_location("colab_stack", ROOT / "tools" / "colab_stack.py")
colab_stack = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colab_stack)
run = colab_stack.run


def grading_size(notebook: Path) -> dict:
    """The chapter's grading PARAMETERS (utils/grading/chapter_tests/NN_name.py): its
    experiments shrunk to what a grader runs, every cell still executed, so that six chapters
    take minutes."""
    return runpy.run_path(str(GRADING_TESTS / f"{notebook.stem}.py")).get(
        "PARAMETERS", {})


pytestmark = pytest.mark.skipif(not (ROOT / ".git").exists(),
                                reason="installs the course from this checkout's git history")


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A Colab-like venv (relative path colab-venv in a fresh folder) with the course installed
    from git and Horovod compiled for it; yields the folder and the environment to run in."""
    return colab_stack.build(tmp_path_factory.mktemp("colab"))


def test_horovod_builds_without_a_system_cmake_from_a_relative_venv_path(colab):
    assert shutil.which("cmake", path=colab["env"]["PATH"]) is None
    assert ("horovod: compiling (TensorFlow 2.20.0" in colab["build"]
            or f"horovod: using the cached wheel {colab_stack.CACHE / 'wheels'}" in colab["build"])
    assert "horovod: 0.28.1 installed" in colab["build"]
    report = run([str(colab["root"] / "colab-venv" / "bin" / "horovodrun"), "--check-build"],
                 env=colab["env"])
    assert "[X] TensorFlow" in report and "[X] Gloo" in report


def test_the_installed_helpers_are_a_plain_wheel_with_every_module(colab):
    committed = run(["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", "HEAD", "utils"])
    source = sorted(".".join(Path(p).with_suffix("").parts).removesuffix(".__init__")
                    for p in committed.split() if p.endswith(".py") and "chapter_tests" not in p)
    listing = run([colab["python"], "-c", """
import importlib, pkgutil, utils
names = ["utils"] + [m.name for m in pkgutil.walk_packages(utils.__path__, "utils.")]
for name in names:
    importlib.import_module(name)
print(utils.__file__)
print(" ".join(sorted(names)))
from utils.grading import DEFAULT_TESTS, find_chapter_tests  # what course-grade grades with
print(" ".join(find_chapter_tests(DEFAULT_TESTS)))"""], cwd=colab["root"],
                  env=colab["env"]).splitlines()
    assert "site-packages" in listing[0], "not an installed copy: " + listing[0]
    assert listing[1].split() == source
    assert listing[2].split() == [f"{n:02d}" for n in range(1, 8)], "grading tests missing"


def open_and_run(colab: dict, notebook: Path) -> subprocess.CompletedProcess:
    """Open the committed notebook (as GitHub serves it to Colab) alone from an empty folder and
    run it at grading size on the Colab stack's kernel, in a process of its own."""
    empty = colab["root"] / "content" / notebook.stem
    empty.mkdir(parents=True)
    opened = colab["root"] / notebook.name
    opened.write_text(run(["git", "-C", str(ROOT), "show", f"HEAD:notebooks/{notebook.name}"]))
    env = {**os.environ, **{name: colab["env"][name] for name in
                            ["HOME", "XDG_CACHE_HOME", "COURSE_DATA_DIR", "TF_CPP_MIN_LOG_LEVEL"]},
           "JUPYTER_PATH": str(colab["root"] / "jupyter" / "share" / "jupyter"),
           "DL_COURSE_CLAIMS": "notice"}  # grading size: the text's numbers differ
    command = [sys.executable, "-m", "papermill", str(opened),
               str(colab["root"] / f"{notebook.stem}.executed.ipynb"), "--cwd", str(empty),
               "-k", colab_stack.KERNEL, "-y", json.dumps(grading_size(notebook)),
               "--no-progress-bar", "--log-level", "WARNING"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def colab_runs(colab):
    """Every chapter's run, two at a time: most of a run at grading size is one core's work
    (imports, tracing, small fits), so two share the machine well."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(NOTEBOOKS, pool.map(lambda nb: open_and_run(colab, nb), NOTEBOOKS),
                        strict=True))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_each_notebook_runs_alone_from_an_empty_folder_on_colabs_stack(colab, colab_runs,
                                                                       notebook):
    done = colab_runs[notebook]
    assert done.returncode == 0, done.stderr[-3000:]
    executed = nbformat.read(colab["root"] / f"{notebook.stem}.executed.ipynb", as_version=4)
    setup = next(c for c in executed.cells if "utils.setup_notebook(" in c.source)
    printed = "".join(o.get("text", "") for o in setup.outputs)
    assert "numpy 2.1.3" in printed and "matplotlib 3.10.0" in printed, printed
    if "tensorflow" in printed:
        assert "tensorflow 2.20.0" in printed and "keras 3.13.2" in printed, printed
