"""utils.grading.exports: Gradescope's and PrairieLearn's results.json, Canvas's import file.

The JSON files are checked against JSON Schemas written from the published specifications
(utils/grading/schemas/): Gradescope's https://gradescope-autograders.readthedocs.io/en/latest/specs/
and PrairieLearn's https://prairielearn.readthedocs.io/en/latest/externalGrading/.
Only the end-to-end Gradescope test starts a kernel (chapter 01, a few seconds).
"""

import csv
import json
import os
import stat
import subprocess
import sys
import zipfile

import jsonschema
import pytest

from utils import grading, paths, student
from utils.grading import exports

SCHEMAS = {kind: json.loads((exports.SCHEMAS / f"{kind}_results.schema.json").read_text())
           for kind in ("gradescope", "prairielearn")}


def valid(kind, content):
    """`content` after a round trip through JSON, checked against the format's schema."""
    content = json.loads(json.dumps(content))
    jsonschema.validate(content, SCHEMAS[kind])
    return content


# Results built directly, no kernel: chapter "09" with three exercises, one of two tests.
GRADIENT = grading.GradingTest("gradient", "09.1", 3.0)
RATE = grading.GradingTest("rate", "09.2", 1.0)
RATE_AGAIN = grading.GradingTest("rate_again", "09.2", 1.0)
PLOT = grading.GradingTest("plot", "09.3", 0.5)
EXERCISES = {"09.1": 3.0, "09.2": 2.0, "09.3": 0.5}


def result(name, status, passed=(), messages=None, problems=()):
    verdicts = [grading.Verdict(test, test in passed, (messages or {}).get(test, "wrong"))
                for test in (GRADIENT, RATE, RATE_AGAIN, PLOT)]
    return grading.Result(name, status, "09", verdicts, list(problems), seconds=12.4)


FULL = result("full.ipynb", "ok", passed=(GRADIENT, RATE, RATE_AGAIN, PLOT))
PARTLY = result("partly.ipynb", "errors", passed=(GRADIENT, RATE),
                messages={RATE_AGAIN: "the rate is upside down", PLOT: "no axis labels"},
                problems=["code cell 7 (exercise 09.3) raised ValueError: boom"])
FAILING = result("failing.ipynb", "timeout", messages={GRADIENT: "not answered yet"})
UNREADABLE = grading.Result("essay.docx", "unreadable",
                            problems=["this file cannot be graded: not valid JSON"])


def test_gradescope_results_give_each_exercise_its_score_and_feedback():
    full, partly, failing, unreadable = (
        valid("gradescope", exports.gradescope_results(r, EXERCISES))
        for r in (FULL, PARTLY, FAILING, UNREADABLE))
    assert full["score"] == 5.5 and full["execution_time"] == 12
    assert full["output"] == grading.feedback_text(FULL)
    assert [(t["name"], t["score"], t["max_score"], t["output"]) for t in partly["tests"]] == [
        ("Exercise 09.1", 3.0, 3.0, "passed"),
        ("Exercise 09.2", 1.0, 2.0, "failed: the rate is upside down"),
        ("Exercise 09.3", 0.0, 0.5, "failed: no axis labels")]
    assert partly["score"] == 4.0 and "raised ValueError: boom" in partly["output"]
    assert failing["score"] == 0 and failing["tests"][0]["output"] == "failed: not answered yet"
    assert unreadable["score"] == 0 and [t["score"] for t in unreadable["tests"]] == [0, 0, 0]
    assert unreadable["tests"][0]["output"] == (
        "not graded (status unreadable): this file cannot be graded: not valid JSON")
    assert {r["visibility"] for r in (full, partly, failing, unreadable)} == {"visible"}


def test_the_gradescope_schema_catches_what_the_spec_forbids():
    good = exports.gradescope_results(FULL, EXERCISES, visibility="after_due_date")
    valid("gradescope", good)
    for bad in ({**good, "visibility": "soon"}, {**good, "scores": 1},
                {"tests": [{"name": "no score anywhere"}]}):
        with pytest.raises(jsonschema.ValidationError):
            valid("gradescope", bad)


def test_prairielearn_results_score_in_0_1_and_unreadable_is_not_gradable():
    full, partly, failing, unreadable = (
        valid("prairielearn", exports.prairielearn_results(r, EXERCISES))
        for r in (FULL, PARTLY, FAILING, UNREADABLE))
    assert (full["score"], partly["score"], failing["score"]) == (1.0, 4.0 / 5.5, 0.0)
    assert full["gradable"] and partly["gradable"] and failing["gradable"], "student code ran"
    assert [(t["name"], t["points"], t["max_points"], t["message"]) for t in partly["tests"]][1] \
        == ("Exercise 09.2", 1.0, 2.0, "failed: the rate is upside down")
    assert partly["message"] == grading.feedback_text(PARTLY)
    assert unreadable["gradable"] is False
    assert unreadable["format_errors"] == ["this file cannot be graded: not valid JSON"]
    with pytest.raises(jsonschema.ValidationError):
        valid("prairielearn", {**full, "score": 1.5})


def test_prairielearn_results_stay_under_1_mb_and_say_what_was_cut(tmp_path):
    """Messages are cut to 20,000 characters, then shorter until the file fits: here twelve
    exercises whose messages JSON escapes to 6 bytes a character."""
    tests = [grading.GradingTest(f"t{k}", f"09.{k}", 1.0) for k in range(1, 13)]
    huge = grading.Result("huge.ipynb", "errors", "09", [
        grading.Verdict(test, False, "\x01" * 300_000) for test in tests[:-1]] + [
        grading.Verdict(tests[-1], False, "short")], ["é" * 2_000_000])
    content = valid("prairielearn", exports.prairielearn_results(
        huge, grading.chapters.worth_of(tests)))
    written = exports.write_json(tmp_path / "results.json", content).read_bytes()
    assert 500_000 < len(written) < exports.PRAIRIELEARN_MAX_BYTES
    assert "more characters cut: PrairieLearn takes at most 1 MB" in content["message"]
    assert content["tests"][0]["message"].endswith("takes at most 1 MB of results]")
    assert content["tests"][-1]["message"] == "failed: short", "short messages are kept whole"


CHAPTER_01 = grading.find_chapter_tests(grading.DEFAULT_TESTS)["01"]


@pytest.mark.parametrize("notebooks", [[], ["a.ipynb", "sub/b.ipynb"]])
def test_a_submission_without_one_notebook_gets_0_and_says_what_was_expected(tmp_path,
                                                                              notebooks):
    for name in ["notes.txt", *notebooks]:
        (tmp_path / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "submission" / name).write_text("{}")
    assert exports.main(["gradescope-run", "--chapter", "01", "--root", str(tmp_path)]) == 0
    content = valid("gradescope", json.loads(
        (tmp_path / "results" / "results.json").read_text()))
    assert content["score"] == 0 and len(content["tests"]) == 4
    assert (f"expected exactly one Jupyter notebook (.ipynb), your chapter 01 notebook (e.g. "
            f"01_sigmoid_neuron.ipynb); found {len(notebooks)}") in content["output"]
    (tmp_path / "student").mkdir()
    assert exports.main(["prairielearn", "--chapter", "01", "--root", str(tmp_path)]) == 0
    content = valid("prairielearn", json.loads(
        (tmp_path / "results" / "results.json").read_text()))
    assert content["gradable"] is False and "found 0: none" in content["format_errors"][0]


def test_the_gradescope_autograder_grades_a_solved_chapter_01_as_gradescope_runs_it(tmp_path):
    """The zip, unpacked as Gradescope does (source/, submission/, results/), run_autograder run
    with this interpreter instead of setup.sh's (PYTHON) and tmp_path as /autograder."""
    zip_path = tmp_path / "01_autograder.zip"
    assert exports.build_gradescope_zip(CHAPTER_01, zip_path) == [], "01 fits the defaults"
    root = tmp_path / "autograder"
    with zipfile.ZipFile(zip_path) as archive:
        modes = {info.filename: stat.S_IMODE(info.external_attr >> 16)
                 for info in archive.infolist()}
        archive.extractall(root / "source")
    assert modes["run_autograder"] == modes["setup.sh"] == 0o755
    assert {"pyproject.toml", "requirements.txt", "utils/grading/exports.py",
            "grading/01_sigmoid_neuron.py"} <= set(modes)
    assert not [name for name in modes if "chapter_tests" in name or (
        name.startswith("grading/0") and not name.startswith("grading/01_"))], (
        "one chapter's tests only")
    for name, mode in modes.items():
        os.chmod(root / "source" / name, mode)
    notebook = paths.NOTEBOOKS / "01_sigmoid_neuron.ipynb"
    student.write_copies([notebook], root / "submission", solved=True)
    (root / "results").mkdir()
    run = subprocess.run([str(root / "source" / "run_autograder")], capture_output=True,
                         text=True, timeout=300,
                         env={**os.environ, "AUTOGRADER_ROOT": str(root),
                              "PYTHON": sys.executable})
    assert run.returncode == 0, run.stderr[-3000:]
    content = valid("gradescope", json.loads((root / "results" / "results.json").read_text()))
    assert [t["name"] for t in content["tests"]] == [f"Exercise 01.{k}" for k in (1, 2, 3, 4)]
    assert content["score"] == sum(t["max_score"] for t in content["tests"]) == 9, \
        content["output"]
    assert 0 < content["execution_time"] < 120


def test_the_zip_builder_refuses_to_overwrite_and_names_what_it_expects(tmp_path, capsys):
    out = tmp_path / "01.zip"
    out.write_text("the instructor's own file")
    assert exports.main(["gradescope", "01", "--out", str(out)]) == 2
    assert "exists: choose another output, or add --force" in capsys.readouterr().err
    assert out.read_text() == "the instructor's own file"
    assert exports.main(["gradescope", "01", "--out", str(out), "--force"]) == 0
    assert zipfile.is_zipfile(out)
    for chapter, message in [("99", "no grading tests for chapter 99"),
                             ("1", "a chapter looks like 01"),
                             ("07", "needs Horovod built from source")]:
        assert exports.main(["gradescope", chapter, "--out", str(tmp_path / "x.zip")]) == 2
        assert message in capsys.readouterr().err
    assert exports.main(["gradescope", "01", "--out", str(tmp_path / "y.zip"),
                         "--memory", "lots"]) == 2
    assert "memory looks like 4G" in capsys.readouterr().err


def test_chapters_beyond_gradescopes_default_limits_say_what_to_raise():
    chapters = grading.find_chapter_tests(grading.DEFAULT_TESTS)
    assert exports.gradescope_limits(chapters["01"], 576 * 1024**2) == []
    timeout, _, judge = exports.gradescope_limits(chapters["06"], 640 * 1024**2)
    assert "NOTEBOOK_TIMEOUT is 900 s" in timeout and "raise the autograder timeout" in timeout
    assert "the judge beside it 768 MiB" in judge, "chapter 06's judge loads TensorFlow"
    memory, = exports.gradescope_limits(chapters["01"], 3 * 1024**3)
    assert "raise the autograder's memory in Gradescope's settings to at least 3264 MiB" in memory
    mnist, _ = exports.gradescope_limits(chapters["02"], 640 * 1024**2)
    assert "loads MNIST: a kernel limit of 640 MiB is too little" in mnist
    assert len(exports.gradescope_limits(chapters["02"], 1024**3)) == 1, "then Gradescope's memory"


# Canvas: a roster as Canvas exports it (byte-order mark, "Points Possible" row, more columns).

ROSTER = ("\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (5501),Current Score\n"
          "    Points Possible,,,,,10,(read only)\n"
          '"Doe, Jane",101,S0001,jdoe,Lab A,7,70\n'
          '"Smith, Al",102,S0002,asmith,Lab B,,\n'
          '"Smith, Alberta",103,S0003,asmith2,Lab B,9,90\n'
          '"Late, Lee",104,S0004,llate,Lab A,,\n')


def write_roster(folder, text=ROSTER):
    path = folder / "roster.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_roster_is_read_without_its_points_possible_row(tmp_path):
    roster = exports.read_roster(write_roster(tmp_path))
    assert [s["SIS Login ID"] for s in roster] == ["jdoe", "asmith", "asmith2", "llate"]
    assert roster[0] == {"Student": "Doe, Jane", "ID": "101", "SIS User ID": "S0001",
                         "SIS Login ID": "jdoe", "Section": "Lab A"}


def test_submissions_match_roster_students_by_a_whole_id_in_their_name(tmp_path):
    roster = exports.read_roster(write_roster(tmp_path))
    assert exports.roster_matches("jdoe/01_sigmoid_neuron.ipynb", roster) == [0]
    assert exports.roster_matches("01_sigmoid_neuron_S0002.ipynb", roster) == [1]
    assert exports.roster_matches("ASMITH2-v1.ipynb", roster) == [2], "not asmith's"
    assert exports.roster_matches("103.ipynb", roster) == [2], "the Canvas ID"
    assert exports.roster_matches("1010.ipynb", roster) == [], "not inside a longer id"
    assert exports.roster_matches("jdoe_and_asmith.ipynb", roster) == [0, 1]


def test_canvas_rows_keep_the_roster_and_give_unmatched_files_their_own_row(tmp_path):
    roster = exports.read_roster(write_roster(tmp_path))
    results = [result("jdoe/01.ipynb", "ok", passed=(GRADIENT, RATE, RATE_AGAIN, PLOT)),
               result("asmith2_v1.ipynb", "ok", passed=(GRADIENT,)),
               result("asmith2_v2.ipynb", "ok", passed=(GRADIENT, PLOT)),
               result("nobody.ipynb", "ok", passed=(PLOT,)),
               grading.Result("jdoe_and_asmith.pdf", "unreadable", problems=["binary"])]
    rows, notes = exports.canvas_rows(results, roster, "Chapter 09", 5.5)
    assert rows == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Chapter 09"],
        ["    Points Possible", "", "", "", "", "5.5"],
        ["Doe, Jane", "101", "S0001", "jdoe", "Lab A", "5.5"],
        ["Smith, Al", "102", "S0002", "asmith", "Lab B", ""],
        ["Smith, Alberta", "103", "S0003", "asmith2", "Lab B", "3.5"],
        ["Late, Lee", "104", "S0004", "llate", "Lab A", ""],
        ["jdoe_and_asmith.pdf", "", "", "", "", "0"],
        ["nobody.ipynb", "", "", "", "", "0.5"],
    ]
    assert notes == [
        "Smith, Alberta has several submissions: the grade is asmith2_v2.ipynb's (3.5 points), "
        "the higher; asmith2_v1.ipynb (3) is left out",
        "jdoe_and_asmith.pdf matches several roster students (Doe, Jane, Smith, Al): it gets a "
        "row of its own, which Canvas will not match; name the file with the student's SIS "
        "Login ID, SIS User ID or Canvas ID",
        "nobody.ipynb matches no roster student: it gets a row of its own, which Canvas will not "
        "match; name the file with the student's SIS Login ID, SIS User ID or Canvas ID",
        "2 roster student(s) have no submission: their grade is left empty",
    ]


@pytest.mark.parametrize("text, message", [
    ("Name,Login,Score\nJane,jdoe,1\n", "lacks the column(s) Student, ID, SIS User ID, SIS "
                                         "Login ID, Section: a roster is Canvas's gradebook"),
    ("Student,ID,SIS User ID,SIS Login ID\nJane,1,S1,jdoe\n", "lacks the column(s) Section"),
    ("Student,ID,SIS User ID,SIS Login ID,Section\n    Points Possible,,,,\n",
     "lists no student"),
])
def test_a_roster_that_is_not_a_canvas_export_is_refused_with_what_was_expected(tmp_path, text,
                                                                                 message):
    with pytest.raises(ValueError, match="roster") as error:
        exports.read_roster(write_roster(tmp_path, text))
    assert message in str(error.value)
    with pytest.raises(FileNotFoundError, match="Grades > Export"):
        exports.read_roster(tmp_path / "missing.csv")


def test_course_grade_writes_canvas_csv_and_checks_its_input_before_grading(tmp_path, capsys):
    """Files that are not notebooks: graded (unreadable, 0 points) without a kernel."""
    submissions, out = tmp_path / "in", tmp_path / "out"
    submissions.mkdir()
    (submissions / "jdoe_essay.docx").write_bytes(b"PK\x03\x04\x00\xff")
    (submissions / "stranger.txt").write_text("hello")
    roster = write_roster(tmp_path)
    args = [str(submissions), "--out", str(out), "--no-progress", "--chapter", "01",
            "--canvas-roster", str(roster)]
    assert grading.main(args) == 0
    captured = capsys.readouterr()
    assert "stranger.txt matches no roster student" in captured.err
    with (out / "canvas.csv").open(newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0][-1] == "Chapter 01" and rows[1] == ["    Points Possible", "", "", "", "", "9"]
    assert rows[2] == ["Doe, Jane", "101", "S0001", "jdoe", "Lab A", "0"]
    assert rows[-1] == ["stranger.txt", "", "", "", "", "0"]

    before = (out / "canvas.csv").read_text()
    (submissions / "jdoe_essay.docx").unlink()  # would change the file, if it were rewritten
    assert grading.main(args) == 2
    assert "canvas.csv exists: choose another output, or add --force" in capsys.readouterr().err
    assert (out / "canvas.csv").read_text() == before
    assert grading.main([*args, "--force"]) == 0
    assert (out / "canvas.csv").read_text() != before

    assert grading.main([*args[:-2], "--canvas-roster", str(write_roster(
        tmp_path, "Name,Score\n"))]) == 2
    assert "lacks the column(s)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        grading.main([str(submissions), "--canvas-roster", str(roster)])
    assert "--canvas-roster needs --chapter NN" in capsys.readouterr().err
