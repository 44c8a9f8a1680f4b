"""Grades where instructors keep them: a Gradescope autograder, PrairieLearn's results, Canvas.

- Gradescope (programming assignment): `python -m utils.grading.exports gradescope 01` (`make
  gradescope-autograder CHAPTER=01`) writes build/gradescope/01_autograder.zip: setup.sh,
  run_autograder, the course package and the chapter's grading-test file. For each submission
  run_autograder runs `gradescope-run`, which grades the one notebook in /autograder/submission
  and writes /autograder/results/results.json.
  Format: https://gradescope-autograders.readthedocs.io/en/latest/specs/
- PrairieLearn (external grading): `python -m utils.grading.exports prairielearn --chapter 01` is
  a question's entrypoint, in an image where the course is installed: it grades the one notebook
  in /grade/student and writes /grade/results/results.json.
  Format: https://prairielearn.readthedocs.io/en/latest/externalGrading/ ("Grading results")
- Canvas: `course-grade FOLDER --chapter 01 --canvas-roster roster.csv` (see `cli`) also writes
  canvas.csv, a gradebook file Canvas imports (Grades > Import): the columns of Canvas's own
  gradebook export, a "Points Possible" row and one column, "Chapter 01". Format: the columns
  Student, ID, SIS User ID, SIS Login ID, Section, then one column per assignment, named
  "Name (Canvas id)" for an existing one or a new name for a new one:
  https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades
  https://nemogb-dev.github.io/nemogb-r/articles/detailed-canvas-export-info.html

JSON Schemas of both results files, written from those specifications, are in schemas/.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import stat
import sys
import tomllib
import zipfile
from pathlib import Path

from utils.grading.chapters import DEFAULT_TESTS, ChapterTests, find_chapter_tests
from utils.grading.cli import parse_memory
from utils.grading.report import Result, exercise_outcomes, feedback_text, number
from utils.grading.sandbox import Limits, kernel_isolation
from utils.grading.submission import grade_file
from utils.paths import GRADING_TESTS, ROOT

SCHEMAS = Path(__file__).with_name("schemas")
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")

# Gradescope's default autograder limits: 768 MB, 0.5 vCPU, 10 minutes (its settings raise them).
GRADESCOPE_SECONDS = 600
GRADESCOPE_MEMORY = 768 * 1024**2
GRADER_MEMORY = 128 * 1024**2  # the grader's own process, beside the kernel
# The judge, beside them once the cells have run: NumPy only (01, 02), or TensorFlow and the
# submission's model (03 on); measured 44 MiB and 600 MiB once imported.
JUDGE_MEMORY, KERAS_JUDGE_MEMORY = 64 * 1024**2, 768 * 1024**2
KERNEL_MEMORY = "576M"  # the kernel's limit (--memory) that fits Gradescope's default
MNIST_MEMORY = 1024**3  # a solved chapter 02 ran out of memory with 640 MiB, not with 1 GiB
START_MARGIN = 60  # seconds beyond the chapter's limits: kernel starts, reading, writing
NOT_ON_GRADESCOPE = {
    "07": "chapter 07 launches a two-rank Horovod job: it needs Horovod built from source "
          "(tools/build_horovod.sh) and two cores, which this autograder does not set up"}

PRAIRIELEARN_MAX_BYTES = 1_000_000  # PrairieLearn's limit on results.json
MESSAGE_CHARS = 20_000  # a PrairieLearn message longer than this is cut (and says so)

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MATCHED_BY = ("SIS Login ID", "SIS User ID", "ID")  # what a submission's file name may contain
POINTS_POSSIBLE = "    Points Possible"  # the second row, as Canvas's own export writes it
CANVAS_FILE = "canvas.csv"


def gradescope_results(result: Result, exercises: dict[str, float],
                       visibility: str = "visible") -> dict:
    """Gradescope's results.json for one graded submission."""
    return {
        "score": result.total,
        "execution_time": round(result.seconds),
        "output": feedback_text(result),
        "visibility": visibility,
        "tests": [{"name": f"Exercise {exercise}", "number": exercise, "score": earned,
                   "max_score": worth, "output": text}
                  for exercise, earned, worth, text in exercise_outcomes(result, exercises)],
    }


def prairielearn_results(result: Result, exercises: dict[str, float]) -> dict:
    """PrairieLearn's results.json for one graded submission, under its 1 MB limit: messages
    are cut (saying so), shorter and shorter until the file fits."""
    chars = MESSAGE_CHARS
    while True:
        results = _prairielearn(result, exercises, chars)
        if len(_json(results).encode()) < PRAIRIELEARN_MAX_BYTES or chars < 100:
            return results
        chars //= 2


def _prairielearn(result: Result, exercises: dict[str, float], chars: int) -> dict:
    gradable = result.status != "unreadable"
    worth = sum(exercises.values())
    results = {
        "gradable": gradable,
        "score": result.total / worth if gradable and worth else 0.0,
        "message": _cut(feedback_text(result), chars),
        "tests": [{"name": f"Exercise {exercise}", "points": earned, "max_points": most,
                   "message": _cut(text, chars)}
                  for exercise, earned, most, text in exercise_outcomes(result, exercises)],
    }
    if not gradable:  # PrairieLearn shows these; the student keeps the attempt
        results["format_errors"] = [_cut(problem, chars) for problem in result.problems]
    return results


def _cut(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    return (text[:chars] + f"\n[{len(text) - chars:,} more characters cut: PrairieLearn takes "
            "at most 1 MB of results]")


# Grading one submission as Gradescope and PrairieLearn hand it over: a folder.

def grade_submission(folder: Path, chapter: ChapterTests, memory_bytes: int) -> Result:
    """Grade the one notebook in `folder` as `chapter`; a folder holding none or several gets
    a result (status unreadable, 0 points) that says what was expected."""
    notebooks = sorted(path for path in folder.rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in path.parts) if folder.is_dir() else []
    expected = f"{chapter.path.stem}.ipynb"
    if len(notebooks) != 1:
        found = ", ".join(p.relative_to(folder).as_posix() for p in notebooks) or "none"
        return Result(expected, "unreadable", chapter.chapter, problems=[
            f"expected exactly one Jupyter notebook (.ipynb), your chapter {chapter.chapter} "
            f"notebook (e.g. {expected}); found {len(notebooks)}: {found}"])
    path = notebooks[0]
    name = path.relative_to(folder).as_posix()
    isolation = kernel_isolation()
    limits = Limits(memory_bytes=memory_bytes, isolation=isolation)
    try:
        return grade_file(path, name, {chapter.chapter: chapter}, limits, isolation,
                          chapter.chapter)
    except Exception as error:  # a bug of the grader must still give the student an answer
        return Result(name, "errors", chapter.chapter, problems=[
            f"the grader itself failed on this file ({type(error).__name__}: {error}); "
            "please tell the course staff"])


def _json(content: dict) -> str:
    return json.dumps(content, indent=1, ensure_ascii=False) + "\n"


def write_json(path: Path, content: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_json(content), encoding="utf-8")
    return path


def refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists: choose another output, or add --force to "
                              "replace it")


# The Gradescope autograder zip.

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder's image. It assumes
# Gradescope's Ubuntu base image (22.04 or later), with the network during the build:
# - Python {pythons}: the newest the image has, else python{oldest}, and its venv, from apt;
# - $AUTOGRADER_ROOT/venv: the course's pinned packages ({tf} and requirements.txt;
#   no Horovod) and this package{data}.
# Written by `python -m utils.grading.exports gradescope {chapter}`.
set -euo pipefail
root=${{AUTOGRADER_ROOT:-/autograder}}
source_dir=$(cd "$(dirname "$0")" && pwd)
export DEBIAN_FRONTEND=noninteractive
python=python{oldest}
for candidate in {candidates}; do
    if command -v "$candidate" >/dev/null; then python=$candidate; break; fi
done
apt-get update -q
apt-get install -y -q --no-install-recommends "$python" "$python-venv"
"$python" -m venv "$root/venv"
pip=("$root/venv/bin/python" -m pip --disable-pip-version-check)
"${{pip[@]}}" install -q --upgrade "pip>=24"
"${{pip[@]}}" install -q "{tf}" -r "$source_dir/requirements.txt"
"${{pip[@]}}" install -q --no-deps "$source_dir"
{fetch_data}"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission: it grades the one notebook in submission/ as
# chapter {chapter} and writes results/results.json. AUTOGRADER_ROOT (default /autograder) and
# PYTHON (default the venv that setup.sh made) let it run elsewhere, e.g. in a test.
# Written by `python -m utils.grading.exports gradescope {chapter}`.
set -euo pipefail
root=${{AUTOGRADER_ROOT:-/autograder}}
export PYTHONPATH="$root/source${{PYTHONPATH:+:$PYTHONPATH}}"
export COURSE_DATA_DIR=${{COURSE_DATA_DIR:-$root/data}}
cd "$root"
exec "${{PYTHON:-$root/venv/bin/python}}" -m utils.grading.exports gradescope-run \\
    --root "$root" --chapter {chapter} --tests "$root/source/grading" \\
    --memory {memory} --visibility {visibility}
"""


def loads_mnist(chapter: ChapterTests) -> bool:
    """Whether the chapter's notebook (notebooks/NN_*.ipynb) loads MNIST."""
    return any("load_mnist" in path.read_text()
               for path in (ROOT / "notebooks").glob(f"{chapter.chapter}_*.ipynb"))


def uses_keras(chapter: ChapterTests) -> bool:
    """Whether the chapter's notebook uses Keras (then its judge loads TensorFlow too)."""
    return any("import keras" in path.read_text()
               for path in (ROOT / "notebooks").glob(f"{chapter.chapter}_*.ipynb"))


def setup_sh(chapter: ChapterTests) -> str:
    """setup.sh: Python, the pinned packages and, for the chapters that load it, MNIST."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pythons = [c.rsplit(" :: ", 1)[1] for c in project["classifiers"]
               if c.startswith("Programming Language :: Python :: 3.")]
    tf = re.search(r"^TF_PACKAGE\s+\?= (\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    fetch = ('COURSE_DATA_DIR="$root/data" "$root/venv/bin/python" -m utils.data  '
             '# grading kernels have no network\n') if loads_mnist(chapter) else ""
    return SETUP_SH.format(
        pythons=", ".join(pythons), oldest=pythons[0], tf=tf, chapter=chapter.chapter,
        candidates=" ".join(f"python{v}" for v in reversed(pythons)), fetch_data=fetch,
        data=";\n# - MNIST in $AUTOGRADER_ROOT/data: this chapter loads it" if fetch else "")


def gradescope_limits(chapter: ChapterTests, memory_bytes: int) -> list[str]:
    """What to raise in the assignment's autograder settings, beyond Gradescope's defaults."""
    seconds = chapter.notebook_timeout + len(chapter.tests) * chapter.test_timeout + START_MARGIN
    notes = []
    if seconds > GRADESCOPE_SECONDS:
        notes.append(
            f"chapter {chapter.chapter} may grade for up to {math.ceil(seconds / 60)} min (its "
            f"NOTEBOOK_TIMEOUT is {chapter.notebook_timeout:g} s, then {len(chapter.tests)} "
            f"tests of up to {chapter.test_timeout:g} s): raise the autograder timeout in "
            "Gradescope's settings to that (default 10 min), or a slow submission gets no "
            "results at all")
    if loads_mnist(chapter) and memory_bytes < MNIST_MEMORY:
        notes.append(
            f"chapter {chapter.chapter} loads MNIST: a kernel limit of "
            f"{memory_bytes / 1024**2:.0f} MiB is too little (a solved chapter 02 needs 1 GiB; "
            "03-06 were measured with 4 GiB): build with --memory 1G or more, and raise "
            "Gradescope's memory to match")
    judge = KERAS_JUDGE_MEMORY if uses_keras(chapter) else JUDGE_MEMORY
    if memory_bytes + GRADER_MEMORY + judge > GRADESCOPE_MEMORY:
        notes.append(
            f"the kernel may use {memory_bytes / 1024**2:.0f} MiB and the judge beside it "
            f"{judge / 1024**2:.0f} MiB: raise the autograder's memory in Gradescope's settings "
            f"to at least {(memory_bytes + GRADER_MEMORY + judge) / 1024**2:.0f} MiB "
            "(default 768 MB)")
    return notes


def build_gradescope_zip(chapter: ChapterTests, out: Path, *, memory: str = KERNEL_MEMORY,
                         visibility: str = "visible", force: bool = False) -> list[str]:
    """Write the autograder zip of `chapter` (setup.sh and run_autograder at its root, mode
    0755); return what to raise in Gradescope's settings."""
    if chapter.chapter in NOT_ON_GRADESCOPE:
        raise ValueError(NOT_ON_GRADESCOPE[chapter.chapter])
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility is one of {', '.join(VISIBILITIES)}, got {visibility!r}")
    if not (ROOT / "pyproject.toml").is_file():
        raise FileNotFoundError(f"no pyproject.toml in {ROOT}: build the autograder from a "
                                "clone of the course repository")
    memory_bytes = parse_memory(memory)
    refuse_overwrite(out, force)
    executable = {
        "setup.sh": setup_sh(chapter),
        "run_autograder": RUN_AUTOGRADER.format(
            chapter=chapter.chapter, memory=f"{memory_bytes // 1024**2}M", visibility=visibility),
    }
    sources = [ROOT / name for name in ("pyproject.toml", "README.md", "requirements.txt")]
    sources += [path for path in sorted((ROOT / "utils").rglob("*")) if path.is_file()
                and "__pycache__" not in path.parts and path.suffix != ".pyc"
                and path.parent != GRADING_TESTS]  # only this chapter's tests, below
    files = {name: (text.encode(), 0o755) for name, text in executable.items()}
    files.update({path.relative_to(ROOT).as_posix(): (path.read_bytes(), 0o644)
                  for path in sources})
    files[f"grading/{chapter.path.name}"] = (chapter.path.read_bytes(), 0o644)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (content, mode) in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    partial.replace(out)
    return gradescope_limits(chapter, memory_bytes)


# Canvas: a gradebook file to import.

def read_roster(path: Path) -> list[dict[str, str]]:
    """The students of a Canvas gradebook export (Grades > Export), in its order; its
    "Points Possible" row and rows without any id are left out."""
    if not path.is_file():
        raise FileNotFoundError(f"no roster at {path}: export the gradebook from Canvas "
                                "(Grades > Export) and name that file")
    with path.open(newline="", encoding="utf-8-sig") as stream:  # Excel adds a byte-order mark
        reader = csv.DictReader(stream)
        missing = [c for c in CANVAS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"the roster {path} lacks the column(s) {', '.join(missing)}: a roster is "
                f"Canvas's gradebook export (Grades > Export), whose first columns are "
                f"{', '.join(CANVAS_COLUMNS)}")
        students = [{c: (row.get(c) or "").strip() for c in CANVAS_COLUMNS} for row in reader]
    students = [s for s in students if s["Student"] != "Points Possible"
                and any(s[c] for c in MATCHED_BY)]
    if not students:
        raise ValueError(f"the roster {path} lists no student (no row with an ID, SIS User ID "
                         "or SIS Login ID)")
    return students


def _mentions(name: str, identifier: str) -> bool:
    """Whether `identifier` is in `name` whole: not inside a longer id (case ignored)."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(identifier)}(?![A-Za-z0-9])", name,
                     re.IGNORECASE) is not None


def roster_matches(submission: str, roster: list[dict[str, str]]) -> list[int]:
    """The roster rows whose SIS Login ID, SIS User ID or Canvas ID the submission's name (its
    path in the submissions folder) contains."""
    return [i for i, student in enumerate(roster)
            if any(student[c] and _mentions(submission, student[c]) for c in MATCHED_BY)]


def canvas_rows(results: list[Result], roster: list[dict[str, str]], column: str,
                points_possible: float) -> tuple[list[list[str]], list[str]]:
    """The rows of Canvas's import file, and notes for the instructor: every roster student
    in its order (an empty grade without a submission), then a row of its own for each
    submission no student matches (Student: its file name; Canvas will not import it)."""
    chosen: dict[int, Result] = {}
    unmatched: list[Result] = []
    notes = []
    for result in sorted(results, key=lambda r: r.submission):
        found = roster_matches(result.submission, roster)
        if len(found) != 1:
            which = "no roster student" if not found else "several roster students (" + ", ".join(
                roster[i]["Student"] for i in found) + ")"
            notes.append(f"{result.submission} matches {which}: it gets a row of its own, which "
                         "Canvas will not match; name the file with the student's SIS Login ID, "
                         "SIS User ID or Canvas ID")
            unmatched.append(result)
        elif found[0] in chosen:
            kept, other = sorted([chosen[found[0]], result], key=lambda r: -r.total)
            chosen[found[0]] = kept
            notes.append(f"{roster[found[0]]['Student']} has several submissions: the grade is "
                         f"{kept.submission}'s ({number(kept.total)} points), the higher; "
                         f"{other.submission} ({number(other.total)}) is left out")
        else:
            chosen[found[0]] = result
    rows = [[*CANVAS_COLUMNS, column], [POINTS_POSSIBLE, "", "", "", "", number(points_possible)]]
    for i, student in enumerate(roster):
        grade = number(chosen[i].total) if i in chosen else ""
        rows.append([*(student[c] for c in CANVAS_COLUMNS), grade])
    rows += [[result.submission, "", "", "", "", number(result.total)] for result in unmatched]
    if len(chosen) < len(roster):
        notes.append(f"{len(roster) - len(chosen)} roster student(s) have no submission: their "
                     "grade is left empty")
    return rows, notes


def export_canvas(results: list[Result], roster: list[dict[str, str]], chapter: ChapterTests,
                  path: Path) -> list[str]:
    """Write Canvas's import file for `chapter` (column "Chapter NN"); return the notes."""
    rows, notes = canvas_rows(results, roster, f"Chapter {chapter.chapter}",
                              sum(chapter.exercises.values()))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as stream:
        csv.writer(stream).writerows(rows)
    return notes


# The command line.

def _chapter(tests: Path, chapter: str) -> ChapterTests:
    if not re.fullmatch(r"\d\d", chapter):
        raise ValueError(f"a chapter looks like 01, got {chapter!r}")
    chapters = find_chapter_tests(tests)
    if chapter not in chapters:
        raise ValueError(f"no grading tests for chapter {chapter} in {tests} (it has "
                         f"{', '.join(sorted(chapters))})")
    return chapters[chapter]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m utils.grading.exports",
        description="Grades for Gradescope and PrairieLearn. (For Canvas, see course-grade "
                    "--canvas-roster.)")
    commands = parser.add_subparsers(dest="command", required=True)
    gradescope = commands.add_parser(
        "gradescope", help="write the Gradescope autograder zip of a chapter")
    gradescope.add_argument("chapter", help="e.g. 01")
    gradescope.add_argument("--out", type=Path,
                            help="default: build/gradescope/NN_autograder.zip")
    gradescope.add_argument("--memory", default=KERNEL_MEMORY,
                            help=f"memory limit per kernel (default {KERNEL_MEMORY}, which fits "
                                 "Gradescope's default 768 MB)")
    gradescope.add_argument("--force", action="store_true", help="replace an existing zip")
    run = commands.add_parser("gradescope-run", help="what run_autograder runs: grade "
                              "ROOT/submission, write ROOT/results/results.json")
    pl = commands.add_parser("prairielearn", help="a PrairieLearn entrypoint: grade "
                             "ROOT/student, write ROOT/results/results.json")
    for command in (gradescope, run):
        command.add_argument("--visibility", choices=VISIBILITIES, default="visible",
                             help="when students see the results (default: visible)")
    for command, root in ((run, "/autograder"), (pl, "/grade")):
        command.add_argument("--chapter", required=True, help="grade as this chapter, e.g. 01")
        command.add_argument("--root", type=Path, default=Path(root),
                             help=f"default: {root}")
        command.add_argument("--memory", type=parse_memory, default=parse_memory("4G"),
                             help="memory limit of the kernel (default 4G)")
    for command in (gradescope, run, pl):
        command.add_argument("--tests", type=Path, default=DEFAULT_TESTS,
                             help="folder of grading-test files (default: the course's own)")
    args = parser.parse_args(argv)
    try:
        chapter = _chapter(args.tests, args.chapter)
        if args.command == "gradescope":
            out = args.out or Path("build") / "gradescope" / f"{chapter.chapter}_autograder.zip"
            notes = build_gradescope_zip(chapter, out, memory=args.memory,
                                         visibility=args.visibility, force=args.force)
            print(f"wrote {out}: upload it as the autograder of a Gradescope programming "
                  f"assignment for chapter {chapter.chapter}")
        else:
            result = grade_submission(args.root / ("submission" if args.command ==
                                                   "gradescope-run" else "student"),
                                      chapter, args.memory)
            content = (gradescope_results(result, chapter.exercises, args.visibility)
                       if args.command == "gradescope-run"
                       else prairielearn_results(result, chapter.exercises))
            out = write_json(args.root / "results" / "results.json", content)
            print(f"{result.submission}: {number(result.total)} points, status "
                  f"{result.status}; wrote {out}")
            notes = []
    except (FileNotFoundError, FileExistsError, ValueError, argparse.ArgumentTypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
