"""A learner's Run All in real JupyterLab: `jupyter lab` from the course venv, driven in headless
Chromium (Debian's `chromium`, which .ci/run installs) by Playwright, on a fresh copy of a
notebook in an empty folder with its own HOME. Run All must execute every code cell without an
error, the unanswered exercises included. The two NumPy chapters keep this test short (about a
minute); the Keras chapters run the same cells headless under nbval.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utils import runner

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOKS = ["01_sigmoid_neuron", "02_softmax"]
RUN_ALL_TIMEOUT = 600  # seconds for one notebook's Run All
TOKEN = "course-test-token"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def lab(tmp_path):
    """JupyterLab serving the empty folder tmp_path/course, as `make lab` starts it."""
    folder, home = tmp_path / "course", tmp_path / "home"
    folder.mkdir()
    # Render every cell (JupyterLab 4 draws only the visible ones by default), so that the
    # test can see each prompt.
    settings = home / ".jupyter/lab/user-settings/@jupyterlab/notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    port = free_port()
    command = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser",
               f"--port={port}", "--ServerApp.ip=127.0.0.1", f"--notebook-dir={folder}",
               f"--IdentityProvider.token={TOKEN}", *(["--allow-root"] if os.getuid() == 0 else [])]
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(command, env={**os.environ, "HOME": str(home)}, stdout=log,
                              stderr=subprocess.STDOUT)
    for _ in range(120):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(1)
    else:
        server.kill()
        pytest.fail(f"JupyterLab did not start: {(tmp_path / 'lab.log').read_text()[-2000:]}")
    yield {"folder": folder, "url": f"http://127.0.0.1:{port}"}
    server.terminate()
    server.wait(timeout=30)


def kernel_is_idle(page) -> bool:
    """The status bar says "Python 3 (ipykernel) | Idle": started, connected, nothing running
    (the toolbar's indicator already says idle before the kernel has connected)."""
    return page.locator("#jp-main-statusbar", has_text="| Idle").count() > 0


def run_all(url: str, name: str, screenshot: Path) -> None:
    """Open `name` as a learner does, wait for its kernel, Run > Run All Cells, wait until no
    cell is queued, save. A dialog in the way (say, "Select Kernel") fails the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/lab/tree/{name}?token={TOKEN}")
        deadline = time.time() + 300
        while not kernel_is_idle(page):
            assert time.time() < deadline, f"the kernel of {name} did not start"
            time.sleep(1)
        page.click("#jp-MainMenu >> text=Run")
        page.click("text=Run All Cells")
        deadline, quiet = time.time() + RUN_ALL_TIMEOUT, 0
        while quiet < 3:  # idle with nothing queued three polls in a row
            assert time.time() < deadline, f"Run All of {name} did not finish"
            time.sleep(2)
            page.screenshot(path=str(screenshot))
            assert page.locator(".jp-Dialog").count() == 0, f"a dialog opened: see {screenshot}"
            queued = page.locator(".jp-InputPrompt:has-text('[*]')").count()
            quiet = quiet + 1 if queued == 0 and kernel_is_idle(page) else 0
        page.keyboard.press("Control+s")
        page.wait_for_selector(".jp-mod-dirty", state="detached", timeout=60_000)
        browser.close()


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_run_all_in_jupyterlab_runs_every_cell_without_an_error(lab, stem):
    name = f"{stem}.ipynb"
    shutil.copy(runner.NOTEBOOKS / name, lab["folder"] / name)
    run_all(lab["url"], name, lab["folder"].parent / f"{stem}.png")
    saved = json.loads((lab["folder"] / name).read_text())
    code = [cell for cell in saved["cells"] if cell["cell_type"] == "code" and cell["source"]]
    errors = [f"{output['ename']}: {output['evalue']}" for cell in code
              for output in cell["outputs"] if output["output_type"] == "error"]
    assert not errors, f"Run All raised: {errors}"
    unexecuted = [index for index, cell in enumerate(code) if not cell["execution_count"]]
    assert not unexecuted, f"Run All left code cells {unexecuted} unexecuted"
    checks = "".join("".join(output.get("text", "")) for cell in code for output in cell["outputs"])
    assert "not answered yet" in checks, "the unanswered exercises should say so"
