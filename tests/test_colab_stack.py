"""The course as a Colab learner meets it, and Horovod built as the Docker image builds it.

tools/colab_stack.py builds a second venv with Colab's published versions (TensorFlow 2.20.0,
Keras 3.13.2, NumPy 2.1.3, ...) on this machine's Python, installs the helpers the way the setup
cell does (pip from a git URL, here of this checkout, at its HEAD commit: commit before running
this locally) and compiles Horovod for it on a PATH without cmake, with HOME elsewhere. Every
committed notebook then runs alone from an empty working folder, as Colab opens one from
GitHub, at its grading size (the PARAMETERS of tests/grading/NN_name.py, which shrink its
experiments): every cell runs. Claims run as notices there: they are about the learner sizes,
which `make claims STACK=colab` runs on this stack.
"""

import importlib.util
import runpy
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
_spec = importlib.util.spec_from_file_location("colab_stack", ROOT / "tools" / "colab_stack.py")
colab_stack = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colab_stack)
run = colab_stack.run


def grading_size(notebook: Path) -> dict:
    """The chapter's grading PARAMETERS (tests/grading/NN_name.py): its experiments shrunk to
    what a grader runs, every cell still executed, so that six chapters take minutes."""
    return runpy.run_path(str(ROOT / "tests" / "grading" / f"{notebook.stem}.py")).get(
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
                    for p in committed.split() if p.endswith(".py"))
    listing = run([colab["python"], "-c", """
import importlib, pkgutil, utils
names = ["utils"] + [m.name for m in pkgutil.walk_packages(utils.__path__, "utils.")]
for name in names:
    importlib.import_module(name)
print(utils.__file__)
print(" ".join(sorted(names)))"""], cwd=colab["root"], env=colab["env"]).splitlines()
    assert "site-packages" in listing[0], "not an installed copy: " + listing[0]
    assert listing[1].split() == source


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_each_notebook_runs_alone_from_an_empty_folder_on_colabs_stack(colab, notebook,
                                                                       monkeypatch):
    import papermill

    empty = colab["root"] / "content" / notebook.stem
    empty.mkdir(parents=True)
    for name in ["HOME", "XDG_CACHE_HOME", "COURSE_DATA_DIR", "TF_CPP_MIN_LOG_LEVEL"]:
        monkeypatch.setenv(name, colab["env"][name])
    monkeypatch.setenv("JUPYTER_PATH", str(colab["root"] / "jupyter" / "share" / "jupyter"))
    monkeypatch.setenv("DL_COURSE_CLAIMS", "notice")  # grading size: the text's numbers differ
    # The notebook as GitHub serves it to Colab: the committed one, like the installed helpers.
    opened = colab["root"] / notebook.name
    opened.write_text(run(["git", "-C", str(ROOT), "show", f"HEAD:notebooks/{notebook.name}"]))
    output = colab["root"] / f"{notebook.stem}.executed.ipynb"
    papermill.execute_notebook(str(opened), str(output), cwd=str(empty),
                               kernel_name=colab_stack.KERNEL,
                               parameters=grading_size(notebook), progress_bar=False)
    executed = nbformat.read(output, as_version=4)
    setup = next(c for c in executed.cells if "utils.setup_notebook(" in c.source)
    printed = "".join(o.get("text", "") for o in setup.outputs)
    assert "numpy 2.1.3" in printed and "matplotlib 3.10.0" in printed, printed
    if "tensorflow" in printed:
        assert "tensorflow 2.20.0" in printed and "keras 3.13.2" in printed, printed
