"""utils.grading: every submitted file gets its row, its feedback and never a modification."""

import csv
import hashlib
import importlib.util
import json
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

import utils
from utils import exercises, grading, paths
from utils.checks import ch04

FIXTURES = Path(__file__).parent / "fixtures"
SUBMISSIONS = FIXTURES / "submissions_ch01"
EXPECTED = FIXTURES / "submissions_ch01_expected.csv"


def _fixture_maker():
    spec = importlib.util.spec_from_file_location("make_fixtures",
                                                  FIXTURES / "make_submissions_ch01.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    return maker


maker = _fixture_maker()


def read_rows(path):
    with path.open(newline="") as stream:
        return {row["submission"]: row for row in csv.DictReader(stream)}


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# The fixtures that try what the grader's guards stop; their rows expect the guards on.
GUARDED = {"writes_outside_its_folder.ipynb": "files", "opens_network_connections.ipynb": "net",
           "forges_by_writing_into_the_grades_folder.ipynb": "files"}
ESCAPES = [Path.home() / maker.ESCAPE_NAME, Path("/tmp") / maker.ESCAPE_NAME,
           Path(utils.__file__).with_name(maker.ESCAPE_NAME)]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the chapter 01 fixture folder once, as `make grade` does (~35 s on 2 free cores)."""
    out = tmp_path_factory.mktemp("grades")
    before = digest(SUBMISSIONS)
    isolation = grading.kernel_isolation()
    for escape in ESCAPES:
        escape.unlink(missing_ok=True)
    results = grading.grade_folder(SUBMISSIONS, out=out, progress=False)
    escaped = [escape for escape in ESCAPES if escape.exists()]
    for escape in escaped:  # where the system allows no guard: clean up after the submission
        escape.unlink()
    guards = {"net": isolation.mode != "off", "files": isolation.mode == "files"}
    return {"out": out, "results": {r.submission: r for r in results}, "before": before,
            "guards": guards, "isolation": isolation.description, "escaped": escaped}


def test_every_fixture_submission_gets_its_expected_row(graded):
    got, expected = read_rows(graded["out"] / "grades.csv"), read_rows(EXPECTED)
    assert list(got) == list(expected), "one row per file, sorted by name"
    for name, row in expected.items():
        if name in GUARDED and not graded["guards"][GUARDED[name]]:
            row = {**row, "status": got[name]["status"]}  # its attempts may succeed here
        assert got[name] == row, f"{name}: {graded['results'][name].problems}"


def test_a_submission_cannot_write_outside_its_temporary_folder(graded):
    if not graded["guards"]["files"]:
        pytest.skip(f"this system allows no file guard: {graded['isolation']}")
    assert graded["escaped"] == []
    feedback = (graded["out"] / "feedback" / "writes_outside_its_folder.ipynb.txt").read_text()
    assert feedback.count("raised OSError: [Errno 30] Read-only file system") == 3
    assert "9/9 points" in feedback, "the exercises are graded all the same"


def test_a_submission_cannot_reach_the_network(graded):
    if not graded["guards"]["net"]:
        pytest.skip(f"this system allows no network guard: {graded['isolation']}")
    feedback = (graded["out"] / "feedback" / "opens_network_connections.ipynb.txt").read_text()
    assert "raised OSError: [Errno 101] Network is unreachable" in feedback
    assert "raised URLError" in feedback
    assert "9/9 points" in feedback, "the exercises are graded all the same"


def test_every_file_in_the_folder_has_a_row_and_a_feedback_file(graded):
    files = {p.name for p in SUBMISSIONS.iterdir()}
    assert set(read_rows(graded["out"] / "grades.csv")) == files
    assert {p.name for p in (graded["out"] / "feedback").iterdir()} == {f"{n}.txt" for n in files}


def test_grading_never_modifies_the_submissions(graded):
    assert digest(SUBMISSIONS) == graded["before"]


@pytest.mark.parametrize("name, phrases", [
    ("full_marks.ipynb", ["9/9 points, status ok", "Exercise 01.4: 1/1, passed"]),
    ("partly_correct.ipynb", ["Exercise 01.2: 0/2, failed: the ratio is upside down",
                              "the number of passes"]),
    ("exception_in_first_exercise.ipynb", [
        "`cross_entropy_gradients` is not defined",
        "code cell 19 (exercise 01.1) raised NameError"]),
    ("syntax_error.ipynb", ["(exercise 01.4) raised SyntaxError"]),
    ("infinite_loop.ipynb", ["Exercise 01.2: 0/2, failed: took longer than 5 s",
                             "(exercise 01.2) was stopped after 20 s"]),
    ("sys_exit.ipynb", ["9/9 points", "raised SystemExit: that is enough for today"]),
    ("kernel_crash.ipynb", ["9/9 points", "stopped the kernel (it was killed by SIGSEGV)",
                            "ran again in a fresh kernel, without it"]),
    ("prints_50_mb.ipynb", ["9/9 points", "was cut at 100,000 characters"]),
    ("deleted_exercise_cell.ipynb", ["`slowdown` is not defined"]),
    ("unchanged_student_copy.ipynb", [
        "0/9 points, status ok", "Exercise 01.2: 0/2, failed: not answered yet",
        "Exercise 01.4: 0/1, failed: not answered yet"]),
    ("notebook_as_shipped.ipynb", [
        "0/9 points, status ok", "Exercise 01.1: 0/3, failed: not answered yet",
        "still has its Solutions appendix: it was not run"]),
    ("invalid_json.ipynb", ["not graded, status unreadable", "not valid JSON"]),
    ("not_a_notebook.txt", ["not valid JSON"]),
    ("json_but_not_a_notebook.json", ["JSON but not a Jupyter notebook"]),
])
def test_feedback_says_what_passed_and_why_the_rest_failed(graded, name, phrases):
    feedback = (graded["out"] / "feedback" / f"{name}.txt").read_text()
    for phrase in phrases:
        assert phrase in feedback
    assert len(feedback) < 2000, "feedback stays short"


def test_feedback_never_shows_the_grading_tests_expected_values(graded):
    feedback = (graded["out"] / "feedback" / "partly_correct.ipynb.txt").read_text()
    assert "-1.5" not in feedback and "np.mean" not in feedback


def test_committed_fixtures_match_the_instructor_notebook():
    fresh = maker.submissions(json.loads(maker.SOURCE.read_text()))
    stale = sorted(name for name, text in fresh.items()
                   if not (SUBMISSIONS / name).exists() or _sources(text)
                   != _sources((SUBMISSIONS / name).read_text()))
    extra = {p.name for p in SUBMISSIONS.iterdir()} - set(fresh)
    assert not stale and not extra, (
        f"fixtures out of date ({stale or sorted(extra)}): run "
        ".venv/bin/python tests/fixtures/make_submissions_ch01.py, then check the expected CSV")


def _sources(text):
    """What matters in a fixture: its cells' types and code (or the raw text of a non-notebook)."""
    try:
        return [(c["cell_type"], c["source"]) for c in json.loads(text)["cells"]]
    except (ValueError, KeyError, TypeError):
        return text


# Small notebooks run for real: limits, the notebook timeout and a private test folder.

PRIVATE_TESTS = '''
from utils.grading import graded

PARAMETERS = {"SLEEP": 3}
ENVIRONMENT = {"COURSE_TEST_KNOB": "set by the grader"}
NOTEBOOK_TIMEOUT = 4

@graded("99.1", points=1)
def network_is_cut_but_loopback_works(answers):
    assert answers["interfaces"] == ["lo"], f"interfaces: {answers['interfaces']}"
    assert answers["loopback"] == "works"
    assert answers["knob"] == "set by the grader", f"ENVIRONMENT: {answers['knob']}"

@graded("99.2", points=2)
def memory_error_was_caught(answers):
    assert answers["memory"] == "MemoryError", answers["memory"]

@graded("99.3", points=1)
def last_cell_ran(answers):
    answers["last"]
'''


def small_notebook(path, *sources, chapter="99"):
    """A notebook whose first cell after `parameters` is marked as exercise `chapter`.1."""
    first, *others = sources
    cells = [nbformat.v4.new_markdown_cell(f"**Exercise {chapter}.1** A tiny exercise."),
             nbformat.v4.new_code_cell("SLEEP = 60", metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell(first, metadata={"exercise": f"{chapter}.1"}),
             *(nbformat.v4.new_code_cell(source) for source in others)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


def test_limits_and_the_notebook_timeout_apply_and_private_tests_replace_the_repos(tmp_path):
    tests, folder = tmp_path / "private", tmp_path / "submissions"
    tests.mkdir()
    folder.mkdir()
    (tests / "99_tiny.py").write_text(PRIVATE_TESTS)
    small_notebook(folder / "tiny.ipynb",
                   "import socket\ninterfaces = sorted(n for _, n in socket.if_nameindex())\n"
                   "server = socket.create_server(('127.0.0.1', 0))\n"
                   "socket.create_connection(server.getsockname(), timeout=5).close()\n"
                   "loopback = 'works'\n"
                   "knob = __import__('os').environ.get('COURSE_TEST_KNOB')",
                   "try:\n    block = bytearray(2 * 1024**3)\n    memory = 'allocated'\n"
                   "except MemoryError:\n    memory = 'MemoryError'",
                   "import time\ntime.sleep(SLEEP)",
                   "time.sleep(SLEEP)",
                   "last = True")
    isolated = grading.kernel_isolation().mode != "off"

    result, = grading.grade_folder(folder, tests, tmp_path / "out", progress=False,
                                   limits=grading.Limits(memory_bytes=512 * 1024**2))

    assert result.chapter == "99" and result.status == "timeout"
    points = result.points()
    assert points["99.2"] == 2, "a 2 GiB allocation fails under a 512 MiB limit"
    assert points["99.3"] == 0, "the last cell never ran: the 3 s sleeps use up the 4 s"
    assert any("used up its 4 s" in problem for problem in result.problems)
    if isolated:
        assert points["99.1"] == 1
    row = read_rows(tmp_path / "out" / "grades.csv")["tiny.ipynb"]
    assert row == {"submission": "tiny.ipynb", "chapter": "99", "99.1": f"{int(isolated)}",
                   "99.2": "2", "99.3": "0", "total": f"{2 + isolated}", "status": "timeout"}


RESTART_TESTS = '''
from utils.grading import graded

@graded("98.1", points=1)
def answered(answers):
    assert answers["answer"] == 42

@graded("98.2", points=1)
def crashes_the_kernel(answers):
    answers["crash"]()  # the submission's function, run in its kernel

@graded("98.3", points=1)
def after_the_crash(answers):
    assert answers["answer"] == 42
'''


def test_a_kernel_that_cannot_start_again_keeps_the_verdicts_already_found(tmp_path):
    """A grading test's call crashes the kernel; the submission made sure no kernel starts again.

    The grader once took "the notebook's clock has started" for "this kernel has started", so
    the failed restart was re-raised as the grader's own failure and 98.1's point was lost.
    """
    tests, folder = tmp_path / "private", tmp_path / "submissions"
    tests.mkdir()
    folder.mkdir()
    (tests / "98_restart.py").write_text(RESTART_TESTS)
    small_notebook(folder / "restart.ipynb",
                   "answer = 42\n\ndef crash():\n    import ctypes\n    ctypes.string_at(0)",
                   "import os\nfrom pathlib import Path\n"
                   "startup = Path(os.environ['IPYTHONDIR'], 'profile_default', 'startup')\n"
                   "startup.mkdir(parents=True, exist_ok=True)\n"
                   "(startup / '00-stop.py').write_text('import os; os._exit(3)')",
                   chapter="98")

    result, = grading.grade_folder(folder, tests, tmp_path / "out", progress=False)

    assert result.chapter == "98" and result.status == "errors"
    assert result.points() == {"98.1": 1, "98.2": 0, "98.3": 0}
    assert any("the kernel did not start again" in problem for problem in result.problems)
    assert not any("the grader itself failed" in problem for problem in result.problems)
    feedback = (tmp_path / "out" / "feedback" / "restart.ipynb.txt").read_text()
    assert feedback.startswith("restart.ipynb (chapter 98): 1/3 points, status errors\n")
    assert "Exercise 98.1: 1/1, passed" in feedback
    assert "the grading test of exercise 98.2 stopped the kernel" in feedback


# Pieces that need no kernel.

def test_the_submissions_folder_gets_this_users_matplotlib_font_list(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "fontlist-v390.json").write_text('{"_version": 390}')
    monkeypatch.setenv("MPLCONFIGDIR", str(cache))
    from utils.grading.submission import prepare_folder

    (tmp_path / "grade").mkdir()
    workdir = prepare_folder(tmp_path / "grade")
    assert workdir == tmp_path / "grade" / "work" and workdir.is_dir()
    copied = tmp_path / "grade" / "home" / "matplotlib" / "fontlist-v390.json"
    assert copied.read_text() == '{"_version": 390}'
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "nowhere"))
    (tmp_path / "again").mkdir()
    prepare_folder(tmp_path / "again")  # no font list to copy: Matplotlib builds its own
    assert list((tmp_path / "again" / "home" / "matplotlib").iterdir()) == []


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty"),
    (b"%PDF-1.7\n\xe2\xe3\xcf\xd3", "not text"),
    (b'{"cells": [', "not valid JSON"),
    (b"[1, 2, 3]", "not a Jupyter notebook"),
    (b'{"nbformat": 3, "cells": []}', "not a Jupyter notebook"),
    (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"source": "x"}]}',
     "not a readable notebook"),
])
def test_files_that_are_not_notebooks_are_unreadable_with_a_reason(tmp_path, content, reason):
    path = tmp_path / "upload.ipynb"
    path.write_bytes(content)
    notebook, why = grading.read_submission(path)
    assert notebook is None and reason in why


def test_the_chapter_comes_from_the_exercise_ids_then_from_the_file_name():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("**Exercise 02.4** is mentioned in prose only"),
        nbformat.v4.new_code_cell("x = ...", metadata={"exercise": "03.1"}),
        nbformat.v4.new_code_cell('check("03.2", answer)')])  # metadata lost: its check call
    assert grading.exercise_ids(notebook) == ["03.1", "03.2"]
    assert grading.chapter_of(notebook, "02_whatever.ipynb") == "03"
    assert grading.chapter_of(nbformat.v4.new_notebook(), "06_cnn.ipynb") == "06"
    assert grading.chapter_of(nbformat.v4.new_notebook(), "homework.ipynb") is None


def test_chapter_01_tests_carry_points_parameters_and_limits():
    chapter = grading.find_chapter_tests(grading.DEFAULT_TESTS)["01"]
    assert chapter.exercises == {"01.1": 3, "01.2": 2, "01.3": 3, "01.4": 1}
    assert chapter.parameters == {"EPOCHS": 100, "N_SAMPLES": 300, "LAYER_BATCH": 256}
    assert (chapter.cell_timeout, chapter.notebook_timeout, chapter.test_timeout) == (20, 120, 5)


def test_grading_test_files_are_not_collected_as_unit_tests():
    assert not list(grading.DEFAULT_TESTS.glob("test_*.py"))


def test_graded_rejects_a_bad_exercise_id_or_points():
    with pytest.raises(ValueError, match="look like '01.2'"):
        grading.graded("1.2", points=1)
    with pytest.raises(ValueError, match="positive number"):
        grading.graded("01.2", points=0)


def test_only_the_placeholders_error_is_graded_as_not_answered():
    from utils.grading.api import describe_failure

    placeholder = NotImplementedError(exercises.unanswered_message("01.1"))
    assert describe_failure(placeholder, 10).startswith("not answered yet")
    assert describe_failure(NotImplementedError("op=Adasum) is not supported"), 10) == (
        "raised NotImplementedError: op=Adasum) is not supported")


def test_answers_name_a_missing_variable_plainly():
    answers = grading.Answers({"w": 1})
    assert answers["w"] == 1 and answers.get("b") is None and "b" not in answers
    with pytest.raises(AssertionError, match="`b` is not defined in your notebook"):
        answers["b"]


def test_the_guard_sets_the_limits_then_becomes_the_kernel(tmp_path):
    """guard.py, run as the grader runs it (no isolation here), execs the command it is given."""
    import resource
    import subprocess
    import sys

    show = "import resource; print(*resource.getrlimit(resource.RLIMIT_DATA))"
    command = grading.sandbox.guarded([sys.executable, "-c", show], grading.Isolation("off"),
                                      512 * 1024**2, tmp_path)
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.split() == [str(512 * 1024**2)] * 2, done.stderr
    assert resource.getrlimit(resource.RLIMIT_DATA)[0] != 512 * 1024**2, "the grader's own: not"
    with pytest.raises(ValueError, match="isolation mode"):
        grading.Isolation("everything")


def test_memory_sizes_read_like_4g_or_none():
    assert grading.parse_memory("4G") == 4 * 1024**3
    assert grading.parse_memory("512m") == 512 * 1024**2
    assert grading.parse_memory("none") == 0
    with pytest.raises(Exception, match="looks like 4G"):
        grading.parse_memory("lots")


def test_the_csv_has_a_column_per_exercise_a_total_and_a_status(tmp_path):
    test = grading.GradingTest("t", "01.1", 2.0)
    other = grading.GradingTest("u", "01.2", 1.5)
    results = [
        grading.Result("b.ipynb", "errors", "01", [grading.Verdict(test, True, ""),
                                                   grading.Verdict(other, False, "no")],
                       ["code cell 3 raised ValueError: boom"]),
        grading.Result("a.pdf", "unreadable", problems=["this file cannot be graded: binary"]),
    ]
    path = grading.write_report(results, tmp_path)
    assert path.read_text().splitlines() == [
        "submission,chapter,01.1,01.2,total,status",
        "a.pdf,,0,0,0,unreadable",
        "b.ipynb,01,2,0,2,errors",
    ]
    assert (tmp_path / "feedback" / "b.ipynb.txt").read_text() == (
        "b.ipynb (chapter 01): 2/3.5 points, status errors\n\n"
        "Exercise 01.1: 2/2, passed\n"
        "Exercise 01.2: 0/1.5, failed: no\n\n"
        "While running the notebook:\n"
        "- code cell 3 raised ValueError: boom\n")


def test_the_command_line_grades_a_folder_and_reports_usage_errors(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "essay.docx").write_bytes(b"PK\x03\x04\x00\xff")
    assert grading.main([str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                         "--no-progress"]) == 0
    assert "1 unreadable" in capsys.readouterr().out
    assert read_rows(tmp_path / "out" / "grades.csv")["essay.docx"]["status"] == "unreadable"
    assert grading.main([str(tmp_path / "missing"), "--no-progress"]) == 2
    assert "no submissions folder" in capsys.readouterr().err


# Every chapter: the solved copy and the handout, graded together; the notebook as shipped (the
# handout plus its Solutions appendix, which the grader drops) for chapter 01 only: what differs
# from a handout is the same in every chapter.

CHAPTERS = sorted(grading.find_chapter_tests(grading.DEFAULT_TESTS))
SUBMITTED = {"solved": exercises.solved, "handout": exercises.handout, "shipped": lambda nb: nb}
SHIPPED_CHAPTER = "01"


@pytest.fixture(scope="module")
def course_graded(tmp_path_factory):
    """Grade the three kinds of notebook of every chapter in one run, as `make grade` does, plus
    a second solved copy of chapter 03 (whose grade once depended on chance)."""
    folder, out = tmp_path_factory.mktemp("course"), tmp_path_factory.mktemp("course-grades")
    for path in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        learner = json.loads(path.read_text())
        for kind, make in SUBMITTED.items():
            if kind == "shipped" and not path.name.startswith(SHIPPED_CHAPTER):
                continue
            (folder / f"{path.stem}.{kind}.ipynb").write_text(json.dumps(make(learner)))
    (folder / "03_mnist_mlp.solved-again.ipynb").write_bytes(
        (folder / "03_mnist_mlp.solved.ipynb").read_bytes())
    results = grading.grade_folder(folder, out=out, progress=False)
    return {r.submission: r for r in results}


def test_every_chapter_has_grading_tests_for_each_of_its_exercises():
    for path in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        ids = exercises.exercise_ids(json.loads(path.read_text())["cells"])
        assert list(grading.find_chapter_tests(grading.DEFAULT_TESTS)[path.name[:2]].exercises) \
            == ids, path.name


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_solved_copy_gets_full_marks_and_status_ok(course_graded, chapter):
    result, = [r for name, r in course_graded.items() if name.startswith(chapter)
               and name.endswith(".solved.ipynb")]
    assert result.status == "ok", result.problems
    assert result.total == sum(result.maximum().values()) > 0, feedback_of(result)


@pytest.mark.parametrize(("chapter", "kind"), [(chapter, "handout") for chapter in CHAPTERS]
                         + [(SHIPPED_CHAPTER, "shipped")])
def test_an_untouched_handout_and_the_notebook_as_shipped_get_nothing(course_graded, chapter,
                                                                      kind):
    result, = [r for name, r in course_graded.items() if name.startswith(chapter)
               and name.endswith(f".{kind}.ipynb")]
    assert result.status == "ok", result.problems
    assert result.total == 0, feedback_of(result)
    assert all("not answered yet" in verdict.message for verdict in result.tests)


def test_the_same_submission_gets_the_same_grade_and_status(course_graded):
    first, again = (course_graded[f"03_mnist_mlp.{kind}.ipynb"] for kind in ("solved",
                                                                           "solved-again"))
    assert (first.status, first.points()) == (again.status, again.points())


def feedback_of(result):
    return grading.feedback_text(result)


# The grading tests' own feedback, for the wrong answers learners give (no kernel needed).

def _grading_test(chapter, name):
    path, = grading.DEFAULT_TESTS.glob(f"{chapter}_*.py")
    return getattr(grading.load_module(path), name)


def _softmax(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _two_layer_gradients(W1, b1, W2, b2, X, y, tanh_derivative=True):
    """Chapter 04's two-layer tanh network with a sigmoid output: mean cross-entropy gradients."""
    h = np.tanh(X @ W1 + b1)
    error = (1 / (1 + np.exp(-(h @ W2 + b2))) - y.reshape(-1, 1)) / len(X)
    back = error @ W2.T * ((1 - h ** 2) if tanh_derivative else 1)
    return X.T @ back, back.sum(axis=0), h.T @ error, error.sum(axis=0)


def _trainer(kind, rate_factor=1.0):
    """01.3 answers: batch descent on the cross-entropy ("right"), or one of the usual mistakes."""
    def train(w, b, X, y, learning_rate, epochs):
        for _ in range(epochs):
            f = 1 / (1 + np.exp(-(X @ w + b)))
            delta = (f - y) * f * (1 - f) if kind == "quadratic" else f - y
            scale = {"sum": 1.0, "uphill": -1 / len(y)}.get(kind, 1 / len(y))
            step = rate_factor * learning_rate * scale
            w, b = w - step * X.T @ delta, b if kind == "frozen bias" else b - step * delta.sum()
        return w, b
    return train


def _deeper(activation="relu", optimizer="adam"):
    """03.3 answers: the asked-for network, compiled (a wrong choice fails before training)."""
    import keras

    model = keras.Sequential([keras.Input(shape=(784,)),
                              keras.layers.Dense(256, activation=activation),
                              keras.layers.Dropout(0.3),
                              keras.layers.Dense(256, activation=activation),
                              keras.layers.Dropout(0.3),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    return model


def _history(train, val):
    return {"loss": [0.5], "accuracy": [train], "val_loss": [1 - val], "val_accuracy": [val]}


_TUNING = {(0.1, 32): _history(0.95, 0.90), (0.1, 256): _history(0.90, 0.91),
           (0.5, 32): _history(0.99, 0.89), (0.5, 256): _history(0.93, 0.92)}

def _pool_backward(kind):
    """06.3 answers: the same as tests/test_checks_ch04_ch06.py's."""
    from test_checks_ch04_ch06 import _pool_backward as answer

    return answer(kind)


def _stopper(kind):
    """05.1 answers: Keras' own epochs, counted from 0, or with the last weights kept."""
    from utils.checks import ch05

    def early_stopping_epochs(losses, patience):
        trained, kept = ch05.keras_early_stopping(losses, patience)
        return (trained, trained) if kind == "last weights" else (trained - 1, kept - 1)
    return early_stopping_epochs


def _decay_history(train, cross_entropy, penalty):
    return {"loss": [train], "val_loss": [cross_entropy + penalty],
            "val_cross_entropy": [cross_entropy]}


# Best on the validation cross-entropy: 1e-3. On val_loss (penalty included): 1e-4. On training: 0.
_DECAY = {0.0: _decay_history(0.20, 0.40, 0.0), 1e-4: _decay_history(0.22, 0.36, 0.01),
          1e-3: _decay_history(0.25, 0.35, 0.05), 1e-2: _decay_history(0.30, 0.38, 0.2)}


def _deep_relu(initializer):
    """05.3 answers: the asked-for 20 layers, initialised by `initializer`."""
    import keras

    from utils.checks import ch05

    return keras.Sequential([keras.Input(shape=(784,))] + [
        keras.layers.Dense(width, activation="relu", kernel_initializer=initializer)
        for width in ch05.WIDTHS_05_3] + [keras.layers.Dense(10)])


def _quadrant_network(hidden):
    """05.4 answers, untrained: section 1's five neurons, or three never trained."""
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(hidden, activation="tanh"),
                             keras.layers.Dense(1, activation="sigmoid")])


def _standardise(kind):
    """03.2 answers with a usual slip: each set with its own statistics, or per pixel."""
    def standardise(train, test):
        if kind == "own statistics":
            return tuple(((x - x.mean()) / x.std()).astype("float32") for x in (train, test))
        with np.errstate(all="ignore"):
            mean, std = train.mean(axis=0), train.std(axis=0)
            return tuple(((x - mean) / std).astype("float32") for x in (train, test))
    return standardise


def _temperature(z, target, steps=100):
    """02.2's answer by bisection on log T; with few steps, not precise enough."""
    from utils.checks import ch02

    low, high = np.log(1e-6), np.log(1e6)
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = ((middle, high) if ch02.top_probability(z, np.exp(middle)) > target
                     else (low, middle))
    return float(np.exp((low + high) / 2))


def _counter(kind):
    """01.4 answers: the perceptron's corrections counted until a clean pass, or a usual slip."""
    def count_mistakes(X, y, max_passes):
        w, b, total = np.zeros(X.shape[1]), 0.0, 0
        order = np.random.default_rng(0).permutation(len(X)) if kind == "shuffled" else range(
            len(X))
        for passes in range(1, max_passes + 1):
            mistakes = 0
            for i in order:
                error = y[i] - float(X[i] @ w + b >= 0)
                if error:
                    w, b = w + error * X[i], b if kind == "frozen bias" else b + error
                    mistakes += 1
            total += mistakes
            if mistakes == 0:
                return passes if kind == "passes" else total
        return total if kind == "never None" else None
    return count_mistakes


WRONG_ANSWERS = [
    ("01", "perceptron_mistakes_counted_until_a_clean_pass",
     {"count_mistakes": _counter("passes")}, "the number of passes"),
    ("01", "perceptron_mistakes_counted_until_a_clean_pass",
     {"count_mistakes": _counter("frozen bias")}, "correct the bias"),
    ("01", "perceptron_mistakes_counted_until_a_clean_pass",
     {"count_mistakes": _counter("shuffled")}, "in their order"),
    ("01", "perceptron_mistakes_counted_until_a_clean_pass",
     {"count_mistakes": _counter("never None")}, "return None"),
    ("01", "cross_entropy_training_escapes_a_saturated_start",
     {"train_cross_entropy": _trainer("frozen bias")}, "b never moves"),
    ("01", "cross_entropy_training_escapes_a_saturated_start",
     {"train_cross_entropy": _trainer("quadratic", rate_factor=100)}, "not where batch gradient"),
    ("01", "cross_entropy_training_escapes_a_saturated_start",
     {"train_cross_entropy": _trainer("sum")}, "mean over the points"),
    ("01", "cross_entropy_training_escapes_a_saturated_start",
     {"train_cross_entropy": _trainer("uphill")}, "step AGAINST"),
    ("02", "log_softmax_is_right_and_finite_for_extreme_scores",
     {"log_softmax": lambda Z: np.log(_softmax(Z))}, "give inf or nan"),
    ("03", "deeper_network_is_built_and_trained", lambda: {"deeper": _deeper(optimizer="sgd")},
     "not plain SGD"),
    ("03", "standardise_uses_the_training_statistics",
     {"standardise": _standardise("own statistics")}, "with their own statistics"),
    ("03", "standardise_uses_the_training_statistics",
     {"standardise": _standardise("per pixel")}, "ONE mean and ONE standard deviation"),
    ("05", "early_stopping_epochs_match_keras",
     {"early_stopping_epochs": _stopper("from 0")}, "count epochs from 1"),
    ("05", "early_stopping_epochs_match_keras",
     {"early_stopping_epochs": _stopper("last weights")}, "lowest validation loss so far"),
    ("05", "weight_decay_chosen_on_validation_cross_entropy",
     {"decay_results": _DECAY, "chosen_decay": 1e-4, "EPOCHS": 1}, "you compared val_loss"),
    ("05", "weight_decay_chosen_on_validation_cross_entropy",
     {"decay_results": _DECAY, "chosen_decay": 0.0, "EPOCHS": 1}, "on the training loss"),
    ("05", "deep_relu_network_keeps_its_signal", lambda: {"deep_relu": _deep_relu("he_normal")},
     "RandomNormal(stddev=...)"),
    ("05", "deep_relu_network_keeps_its_signal",
     lambda: {"deep_relu": _deep_relu(__import__("keras").initializers.RandomNormal(
         stddev=0.01))}, "too small"),
    ("05", "quadrant_network_is_small_and_accurate",
     lambda: {"quadrant_model": _quadrant_network(5)}, "limit is 3"),
    ("05", "quadrant_network_is_small_and_accurate",
     lambda: {"quadrant_model": _quadrant_network(3)}, "local minimum"),
    ("03", "deeper_network_is_built_and_trained",
     lambda: {"deeper": _deeper(activation="sigmoid")}, "not sigmoid"),
    ("02", "log_softmax_is_right_and_finite_for_extreme_scores",
     {"log_softmax": lambda Z: Z - Z.max(axis=0) - np.log(np.exp(Z - Z.max(axis=0)).sum(axis=0))},
     "not down the columns"),
    ("02", "temperature_gives_each_target_probability",
     {"temperature_for": lambda z, target: 1 / _temperature(z, target)}, "upside down"),
    ("02", "temperature_gives_each_target_probability",
     {"temperature_for": lambda z, target: _temperature(z, target, steps=8)}, "within 1e-6"),
    ("02", "softmax_vjp_without_the_jacobian",
     {"softmax_vjp": lambda z, v: _softmax(np.asarray(z)[None])[0] * v}, "diagonal of J only"),
    ("02", "softmax_vjp_without_the_jacobian",
     {"softmax_vjp": lambda z, v: (lambda p: (np.diag(p) - np.outer(p, p)) @ v)(
         _softmax(np.asarray(z)[None])[0])}, "ran out of memory"),
    ("04", "learning_rate_and_batch_size_chosen_on_validation",
     {"tuning_results": _TUNING, "chosen": (0.5, 32), "EPOCHS": 1}, "training accuracy"),
    ("04", "learning_rate_and_batch_size_chosen_on_validation",
     {"tuning_results": {}, "chosen": (0.1, 32), "EPOCHS": 1}, "train every combination"),
    ("04", "hidden_layer_gradients_match_finite_differences",
     {"hidden_layer_gradients": lambda *a: _two_layer_gradients(*a, tanh_derivative=False)},
     "through the tanh"),
    ("04", "hidden_layer_gradients_match_finite_differences",
     {"hidden_layer_gradients": lambda *a: [len(a[4]) * g for g in _two_layer_gradients(*a)]},
     "mean over the points"),
    ("04", "adam_steps_follow_adams_path",
     {"adam_step": lambda *a: ch04.adam_reference(*a, corrected=False)}, "Correct both"),
    ("04", "adam_steps_follow_adams_path",
     {"adam_step": lambda *a: ch04.adam_reference(*a, average=False)}, "RMSprop"),
    ("06", "receptive_field_of_stacks_with_strides",
     {"receptive_field": lambda stack: sum(window for window, _ in stack)},
     "neighbouring windows share"),
    ("06", "receptive_field_of_stacks_with_strides",
     {"receptive_field": lambda stack: 1 + sum(window - 1 for window, _ in stack)},
     "strides compound"),
    ("06", "max_pool_gradient_goes_to_each_blocks_maximum",
     {"max_pool_backward": _pool_backward("mean")}, "AVERAGE pooling"),
    ("06", "max_pool_gradient_goes_to_each_blocks_maximum",
     {"max_pool_backward": _pool_backward("leftover")}, "no block covers"),
    ("06", "compact_cnn_within_budget_learns_on_a_short_run",
     {"build_compact_cnn": lambda: "not a model"}, "should return a Keras model"),
    ("07", "crossover_makes_latency_and_bandwidth_parts_equal",
     {"crossover_bytes": lambda n, alpha, beta: alpha * beta}, "one message's worth"),
    ("07", "crossover_makes_latency_and_bandwidth_parts_equal",
     {"crossover_bytes": lambda n, alpha, beta: 2 * (n - 1) * alpha * beta}, "crossed one link"),
    ("07", "crossover_makes_latency_and_bandwidth_parts_equal",
     {"crossover_bytes": lambda n, alpha, beta: n * alpha * beta / 8}, "not bits"),
    ("07", "rank_zero_lines_and_collectives",
     {"writes_on_every_rank": {5, 8, 9, 10}, "rank0_only": {5, 8, 9, 10}}, "wait forever"),
    ("07", "rank_zero_lines_and_collectives",
     {"writes_on_every_rank": {8, 9, 10}, "rank0_only": {8, 9, 10}}, "an argument can"),
]


@pytest.mark.parametrize("chapter, name, namespace, words", WRONG_ANSWERS,
                         ids=[f"{c}-{words}" for c, _, _, words in WRONG_ANSWERS])
def test_grading_tests_name_the_mistakes_learners_make(chapter, name, namespace, words):
    namespace = namespace() if callable(namespace) else namespace  # Keras models: built here
    with pytest.raises(AssertionError) as failed:
        _grading_test(chapter, name)(grading.Answers(namespace))
    assert words in str(failed.value)


@pytest.mark.parametrize("chapter, name, namespace", [
    ("01", "cross_entropy_training_escapes_a_saturated_start",
     {"train_cross_entropy": _trainer("right")}),
    ("01", "perceptron_mistakes_counted_until_a_clean_pass", {"count_mistakes": _counter("")}),
    ("02", "temperature_gives_each_target_probability", {"temperature_for": _temperature}),
    ("05", "weight_decay_chosen_on_validation_cross_entropy",
     {"decay_results": _DECAY, "chosen_decay": 1e-3, "EPOCHS": 1}),
    ("04", "learning_rate_and_batch_size_chosen_on_validation",
     {"tuning_results": _TUNING, "chosen": [0.5, 256], "EPOCHS": 1}),
    ("04", "hidden_layer_gradients_match_finite_differences",
     {"hidden_layer_gradients": lambda *a: [g.reshape(1, -1) if g.ndim == 1 else g
                                            for g in _two_layer_gradients(*a)]}),
    ("04", "adam_steps_follow_adams_path",
     {"adam_step": lambda w, g, m, v, t, rate: ch04.adam_reference(w, g, m, v, t, rate)}),
    ("07", "rank_zero_lines_and_collectives",
     {"writes_on_every_rank": [10, 9, 8, 5], "rank0_only": (8, 9, 10)}),
    ("07", "crossover_makes_latency_and_bandwidth_parts_equal",
     {"crossover_bytes": lambda n, alpha, beta: n * beta * alpha}),
])
def test_grading_tests_accept_right_answers_written_another_way(chapter, name, namespace):
    _grading_test(chapter, name)(grading.Answers(namespace))


# The bridge: what crosses from a submission's kernel to the judge is data, never code.

def test_the_bridge_carries_data_exactly_and_functions_as_handles(tmp_path):
    from utils.grading import bridge

    value = {"n": 3, "big": 2**70, "x": float("nan"), "s": "é", "flags": (True, None, ...),
             "set": {3, 1}, "array": np.arange(6, dtype=np.float32).reshape(2, 3),
             "scalar": np.float64(0.5), "nested": [[1, [2, [3]]]], "f": len}
    handles = {}
    packer = bridge.Packer(tmp_path, handles)
    packer.write(packer.pack(value))
    back = bridge.unpack(tmp_path, json.loads((tmp_path / bridge.SPEC).read_text()),
                         lambda handle, name, source: ("function", name, handles[int(handle)]))
    assert back["n"] == 3 and back["big"] == 2**70 and np.isnan(back["x"]) and back["s"] == "é"
    assert back["flags"] == (True, None, ...) and back["set"] == {1, 3}
    assert back["array"].dtype == np.float32 and back["array"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["scalar"] == 0.5 and back["nested"] == [[1, [2, [3]]]]
    assert back["f"] == ("function", "len", len)


def _nested(depth):
    return [_nested(depth - 1)] if depth else 1


@pytest.mark.parametrize("value", [np.array([object()]), object(), _nested(30)])
def test_the_bridge_refuses_what_is_not_plain_data(tmp_path, value):
    from utils.grading import bridge

    with pytest.raises(bridge.Unsupported):
        bridge.Packer(tmp_path).pack(value)


def test_the_judge_reads_arrays_without_pickle(tmp_path):
    from utils.grading import bridge

    np.save(tmp_path / "x.npy", np.array([{"code": "run me"}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / bridge.ARRAYS, "w") as archive:
        archive.write(tmp_path / "x.npy", "a0.npy")
    with pytest.raises(ValueError, match="pickle"):
        bridge.unpack(tmp_path, {"t": "array", "v": "a0"}, None)
