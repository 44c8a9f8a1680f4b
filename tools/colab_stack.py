"""Build a venv with Colab's published package versions, as a Colab learner's runtime has them.

Colab's runtime (googlecolab/backend-info, 2026-08): TensorFlow 2.20.0, Keras 3.13.2, NumPy
2.1.3, Matplotlib 3.10.0, scikit-learn 1.6.1, ipywidgets 7.7.1, IPython 7.34. The venv gets those
pins on this machine's Python; the course helpers are installed the way the setup cell installs
them (pip from a git URL, here this checkout's, at its HEAD commit: commit first), and Horovod is
compiled by tools/build_horovod.sh, given a relative path, on a PATH without a system cmake and
with HOME elsewhere (the conditions of the Docker image's build). A Jupyter kernel named KERNEL
runs in it (JUPYTER_PATH must include `<folder>/jupyter/share/jupyter`).

pip's cache and the Horovod wheel are kept in CACHE between builds: only this builder fills it.
Used by tests/test_colab_stack.py (a fresh folder every run) and `make claims STACK=colab`
(build/colab-stack, reused).  Usage: python tools/colab_stack.py FOLDER
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COLAB_PINS = ["tensorflow-cpu==2.20.0", "keras==3.13.2", "numpy==2.1.3", "matplotlib==3.10.0",
              "scikit-learn==1.6.1", "ipywidgets==7.7.1", "ipython==7.34.0", "ipykernel==6.17.1"]
KERNEL = "colab-stack"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dl-course" \
    / "colab-stack"


def run(command: list[str], **kwargs: Any) -> str:
    """Run a command; its output, or an error with the end of what it printed."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def path_without_cmake(folder: Path) -> str:
    """A PATH folder with every system command but cmake (and its ctest, cpack)."""
    folder.mkdir(exist_ok=True)
    for directory in ["/usr/local/bin", "/usr/bin", "/bin"]:
        for tool in Path(directory).iterdir():
            if tool.name not in {"cmake", "ctest", "cpack"} and not (folder / tool.name).exists():
                (folder / tool.name).symlink_to(tool)
    return str(folder)


def setup_cell_requirement() -> str:
    """The requirement string every setup cell pip-installs (test_repository checks it)."""
    first = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))[0]
    setup = next(s for c in json.loads(first.read_text())["cells"]
                 if "utils.setup_notebook(" in (s := "".join(c["source"])))
    return re.search(r'"(dl-course-utils @ git\+[^"]+)"', setup).group(1)


def build(root: Path) -> dict[str, Any]:
    """Build the venv `root`/colab-venv (or reuse a finished one); returns its folder, the
    environment to run in, the Horovod build's output and the venv's python."""
    root.mkdir(parents=True, exist_ok=True)
    home = root / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "PATH": path_without_cmake(root / "bin"), "HOME": str(home),
           "XDG_CACHE_HOME": str(home / ".cache"), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "TF_CPP_MIN_LOG_LEVEL": "2", "PIP_CACHE_DIR": str(CACHE / "pip"),
           "HOROVOD_WHEEL_CACHE": str(CACHE / "wheels")}
    env.setdefault("COURSE_DATA_DIR", str(_data_dir()))
    env.pop("VIRTUAL_ENV", None)
    python = root / "colab-venv" / "bin" / "python"
    built, installed = root / "colab-venv" / ".built", root / "colab-venv" / ".course-commit"
    horovod = ""
    pip = ["colab-venv/bin/python", "-m", "pip", "install", "--quiet"]
    if not built.exists():
        run([sys._base_executable, "-m", "venv", "--clear", "colab-venv"], cwd=root, env=env)
        run([*pip, "--upgrade", "pip>=24"], cwd=root, env=env)  # Colab's pip is recent too
        run([*pip, *COLAB_PINS], cwd=root, env=env)
    if not installed.exists() or installed.read_text() != _head():
        requirement = setup_cell_requirement().replace(
            re.search(r"git\+(\S+)", setup_cell_requirement()).group(1), ROOT.as_uri())
        run([*pip, "--force-reinstall", "--no-deps", requirement], cwd=root, env=env)
        run([*pip, requirement], cwd=root, env=env)  # its dependencies, where missing
        installed.write_text(_head())
    if not built.exists():
        horovod = run(["bash", str(ROOT / "tools" / "build_horovod.sh"), "colab-venv"],
                      cwd=root, env=env, timeout=1200)
        run(["colab-venv/bin/python", "-m", "ipykernel", "install", "--prefix",
             str(root / "jupyter"), "--name", KERNEL], cwd=root, env=env)
        built.touch()
    return {"root": root, "env": env, "build": horovod, "python": str(python)}


def _head() -> str:
    return run(["git", "-C", str(ROOT), "rev-parse", "HEAD"]).strip()


def _data_dir() -> Path:
    sys.path.insert(0, str(ROOT))
    from utils.data import default_data_dir

    return default_data_dir()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.rsplit("Usage: ", 1)[1])
    print(build(Path(sys.argv[1]).resolve())["python"])
