"""utils.runner: headless execution with papermill, metrics, failures and the summary."""

import json
import subprocess

import nbformat
import pytest

from utils import paths, runner


def write_notebook(path, *sources, parameters="EPOCHS = 1"):
    cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    cells += [nbformat.v4.new_code_cell(source) for source in sources]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)
    return path


def test_run_executes_into_the_build_folder_and_writes_the_summary(tmp_path, capsys):
    good = write_notebook(tmp_path / "01_good.ipynb",
                          "import utils\nutils.record('epochs_seen', EPOCHS * 2)")
    bad = write_notebook(tmp_path / "02_bad.ipynb", "x = 1", "raise ValueError('boom')",
                         "print('never')")
    later = write_notebook(tmp_path / "03_later.ipynb", "import utils\nutils.record('ran', 1)")
    source_before = good.read_text()
    summary = tmp_path / "summary.json"

    code = runner.main([str(good), str(bad), str(later), "--out", str(tmp_path / "executed"),
                        "--summary", str(summary), "-p", "EPOCHS=3"])

    assert code == 1
    results = {r["name"]: r for r in json.loads(summary.read_text())["notebooks"]}
    assert results["01_good"]["status"] == "ok"
    assert results["01_good"]["metrics"] == {"epochs_seen": 6}
    assert results["02_bad"]["status"] == "failed"
    assert results["02_bad"]["error"] == "code cell 3: ValueError: boom"
    assert results["03_later"] == {**results["03_later"], "status": "ok", "metrics": {"ran": 1}}
    assert (tmp_path / "executed" / "01_good.ipynb").exists()
    assert good.read_text() == source_before, "the source notebook must never be modified"
    out, err = capsys.readouterr()
    assert "[2/3] 02_bad" in out and "epochs_seen=6" in out
    assert "FAILED: 02_bad (code cell 3: ValueError: boom)" in err


def test_find_notebooks_accepts_number_prefixes_and_rejects_unknown_names():
    assert [p.stem for p in runner.find_notebooks(["01"])] == ["01_sigmoid_neuron"]
    with pytest.raises(SystemExit, match="no single notebook matches '99'"):
        runner.find_notebooks(["99"])


def test_executed_copies_never_go_over_the_sources():
    with pytest.raises(SystemExit):
        runner.main(["01", "--out", str(runner.NOTEBOOKS)])


def test_parameters_must_look_like_name_equals_value():
    assert runner.parse_parameter("EPOCHS=2") == ("EPOCHS", 2)
    assert runner.parse_parameter("NAME=adam") == ("NAME", "adam")
    with pytest.raises(Exception, match="NAME=VALUE"):
        runner.parse_parameter("EPOCHS")


def test_strip_volatile_drops_timings_and_papermill_bookkeeping():
    notebook = {
        "metadata": {"papermill": {"duration": 3.2}, "kernelspec": {"name": "python3"}},
        "cells": [
            {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}},
            {"cell_type": "code", "metadata": {"execution": {"start": "t"}, "papermill": {},
                                               "tags": ["parameters"]}},
        ],
    }
    clean = runner.strip_volatile(notebook)
    assert clean["metadata"] == {"kernelspec": {"name": "python3"}}
    assert clean["cells"] == [{"cell_type": "code", "metadata": {"tags": ["parameters"]}}]


def test_make_run_with_a_failing_course_notebook_runs_the_others_and_exits_non_zero(tmp_path):
    """Through `make`, as a learner or CI runs it: chapter 01 with a cell that fails, then 02."""
    broken = nbformat.read(runner.NOTEBOOKS / "01_sigmoid_neuron.ipynb", as_version=4)
    broken.cells.insert(5, nbformat.v4.new_code_cell("raise RuntimeError('forced to fail')"))
    failing = f"code cell {sum(c.cell_type == 'code' for c in broken.cells[:6])}"
    path = tmp_path / "01_broken.ipynb"
    nbformat.write(broken, path)
    summary = tmp_path / "summary.json"

    result = subprocess.run(
        ["make", "--no-print-directory", "run", f"NOTEBOOKS={path} 02",
         f"RUN_ARGS=--out {tmp_path / 'executed'} --summary {summary}"],
        cwd=paths.ROOT, capture_output=True, text=True, timeout=600)

    assert result.returncode != 0, result.stdout[-2000:]
    results = {r["name"]: r for r in json.loads(summary.read_text())["notebooks"]}
    assert results["01_broken"]["status"] == "failed"
    assert results["01_broken"]["error"] == f"{failing}: RuntimeError: forced to fail"
    assert results["02_softmax"]["status"] == "ok"
    assert results["02_softmax"]["metrics"]["softmax_test_accuracy"] > 0.9
    assert f"FAILED: 01_broken ({failing}: RuntimeError: forced to fail)" in result.stderr


def test_a_failure_without_an_executed_copy_is_reported_from_papermill_s_error(tmp_path,
                                                                             monkeypatch):
    import papermill

    def fails(*args, **kwargs):
        raise papermill.PapermillExecutionError(
            cell_index=4, exec_count=3, source="1/0", ename="ZeroDivisionError",
            evalue="division by zero", traceback=["Traceback ...", "ZeroDivisionError: ..."])

    monkeypatch.setattr(papermill, "execute_notebook", fails)
    source = write_notebook(tmp_path / "01_any.ipynb", "1/0")
    result = runner.execute(source, tmp_path / "out" / source.name, {}, cell_timeout=10)
    assert result["status"] == "failed"
    assert result["error"] == "execution count 3: ZeroDivisionError: division by zero"


def test_kernels_talk_over_private_sockets_so_the_run_prints_no_tcp_warning(tmp_path, capfd):
    source = write_notebook(tmp_path / "01_quiet.ipynb", "x = 1")
    result = runner.execute(source, tmp_path / "out" / source.name, {}, cell_timeout=60)
    assert result["status"] == "ok"
    assert "TCP without encryption" not in capfd.readouterr().err
