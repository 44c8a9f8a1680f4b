"""The course as a Colab learner meets it, and Horovod built as the Docker image builds it.

Colab's runtime as published in googlecolab/backend-info (2026-08): Python 3.13, TensorFlow
2.20.0, Keras 3.13.2, NumPy 2.1.3, Matplotlib 3.10.0, scikit-learn 1.6.1, ipywidgets 7.7.1,
IPython 7.34. A second venv gets those versions on this machine's Python (3.11 here: TensorFlow
2.20 and these pins install on it); the helpers are installed the way the setup cell does it
(pip from a git URL, here of this checkout, at its HEAD commit: commit before running this
locally), and every committed notebook runs alone from an empty working folder, as Colab
opens one from GitHub.
Each chapter runs at its grading size (the PARAMETERS of tests/grading/NN_name.py, which shrink
its experiments); every cell runs and every assertion in it must hold.

Horovod is compiled for that venv by tools/build_horovod.sh, given a relative path, on a PATH
with no system cmake and with HOME elsewhere: the conditions of the Docker image's build.
What the test downloads and compiles is kept between runs in CACHE (pip's cache, and the Horovod
wheel keyed on its source, the patch and the TensorFlow version): only this test fills it, so a
cached wheel was built under the same conditions, once, on this machine.
"""

import json
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from utils.data import default_data_dir

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
COLAB_PINS = ["tensorflow-cpu==2.20.0", "keras==3.13.2", "numpy==2.1.3", "matplotlib==3.10.0",
              "scikit-learn==1.6.1", "ipywidgets==7.7.1", "ipython==7.34.0", "ipykernel==6.17.1"]
KERNEL = "colab-stack"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dl-course" \
    / "colab-stack"


def grading_size(notebook: Path) -> dict:
    """The chapter's grading PARAMETERS (tests/grading/NN_name.py): its experiments shrunk to
    what a grader runs, every cell still executed, so that six chapters take minutes."""
    return runpy.run_path(str(ROOT / "tests" / "grading" / f"{notebook.stem}.py")).get(
        "PARAMETERS", {})


pytestmark = pytest.mark.skipif(not (ROOT / ".git").exists(),
                                reason="installs the course from this checkout's git history")


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n" \
                                   f"{result.stderr[-3000:]}"
    return result.stdout


def path_without_cmake(folder: Path) -> str:
    """A PATH folder with every system command but cmake (and its ctest, cpack)."""
    folder.mkdir()
    for directory in ["/usr/local/bin", "/usr/bin", "/bin"]:
        for tool in Path(directory).iterdir():
            if tool.name not in {"cmake", "ctest", "cpack"} and not (folder / tool.name).exists():
                (folder / tool.name).symlink_to(tool)
    return str(folder)


def setup_cell_requirement() -> str:
    """The requirement string every setup cell pip-installs (test_repository checks it)."""
    setup = next(s for c in json.loads(NOTEBOOKS[0].read_text())["cells"]
                 if "utils.setup_notebook(" in (s := "".join(c["source"])))
    return re.search(r'"(dl-course-utils @ git\+[^"]+)"', setup).group(1)


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A Colab-like venv (relative path colab-venv in a fresh folder) with the course installed
    from git and Horovod compiled for it; yields the folder and the environment to run in."""
    root = tmp_path_factory.mktemp("colab")
    home = root / "home"
    home.mkdir()
    env = {**os.environ, "PATH": path_without_cmake(root / "bin"), "HOME": str(home),
           "XDG_CACHE_HOME": str(home / ".cache"), "COURSE_DATA_DIR": str(default_data_dir()),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.update(PIP_CACHE_DIR=str(CACHE / "pip"), HOROVOD_WHEEL_CACHE=str(CACHE / "wheels"))
    env.pop("VIRTUAL_ENV", None)
    run([sys._base_executable, "-m", "venv", "colab-venv"], cwd=root, env=env)
    pip = ["colab-venv/bin/python", "-m", "pip", "install", "--quiet"]
    run([*pip, "--upgrade", "pip>=24"], cwd=root, env=env)  # Colab's pip is recent too
    run([*pip, *COLAB_PINS], cwd=root, env=env)
    requirement = setup_cell_requirement().replace(
        re.search(r"git\+(\S+)", setup_cell_requirement()).group(1), ROOT.as_uri())
    run([*pip, requirement], cwd=root, env=env)
    build = run(["bash", str(ROOT / "tools" / "build_horovod.sh"), "colab-venv"],
                cwd=root, env=env, timeout=1200)
    run(["colab-venv/bin/python", "-m", "ipykernel", "install", "--prefix", str(root / "jupyter"),
         "--name", KERNEL], cwd=root, env=env)
    yield {"root": root, "env": env, "build": build,
           "python": str(root / "colab-venv" / "bin" / "python")}


def test_horovod_builds_without_a_system_cmake_from_a_relative_venv_path(colab):
    assert shutil.which("cmake", path=colab["env"]["PATH"]) is None
    assert ("horovod: compiling (TensorFlow 2.20.0" in colab["build"]
            or f"horovod: using the cached wheel {CACHE / 'wheels'}" in colab["build"])
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
    # The notebook as GitHub serves it to Colab: the committed one, like the installed helpers.
    opened = colab["root"] / notebook.name
    opened.write_text(run(["git", "-C", str(ROOT), "show", f"HEAD:notebooks/{notebook.name}"]))
    output = colab["root"] / f"{notebook.stem}.executed.ipynb"
    papermill.execute_notebook(str(opened), str(output), cwd=str(empty), kernel_name=KERNEL,
                               parameters=grading_size(notebook), progress_bar=False)
    executed = nbformat.read(output, as_version=4)
    setup = next(c for c in executed.cells if "utils.setup_notebook(" in c.source)
    printed = "".join(o.get("text", "") for o in setup.outputs)
    assert "numpy 2.1.3" in printed and "matplotlib 3.10.0" in printed, printed
    if "tensorflow" in printed:
        assert "tensorflow 2.20.0" in printed and "keras 3.13.2" in printed, printed
