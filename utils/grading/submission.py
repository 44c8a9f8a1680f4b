"""Grading one submission, in stages: read, validate, prepare, execute, test, collect.

`grade_file` chains the stages as papermill's `execute_notebook` chains its own; a stage that
finds the file cannot be graded raises `NotGraded`, which becomes the file's result. The state
of a run is one `Run`: its steps (the student's code cells, then one cell per grading test),
each of which keeps what befell it, and the clock of the notebook's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils import exercises
from utils.grading.chapters import CHAPTER_IN_NAME, ChapterTests, GradingTest
from utils.grading.kernel import (
    MAX_OUTPUT_CHARS,
    execute_cell,
    kernel_end,
    make_client,
    start_kernel,
)
from utils.grading.report import Result, Verdict
from utils.grading.sandbox import Isolation, Limits, guarded, kernel_environment, undumpable

MAX_KERNEL_STARTS = 3  # a cell that kills the kernel is skipped and the notebook replayed
TEST_TIME_MARGIN = 2  # seconds past a test's own alarm before the grader stops the judge
JUDGE_START = 60  # seconds for the judge to start (it may import TensorFlow on a loaded machine)


def grade_file(path: Path, name: str, chapters: dict[str, ChapterTests], limits: Limits,
               isolation: Isolation, chapter: str | None = None,
               fallback_chapter: str | None = None) -> Result:
    """Grade one file (never modified: it runs from a copy in a temporary folder)."""
    started = time.perf_counter()
    undumpable()  # what the grader reads is out of the submission's reach (see run_tests)
    with tempfile.TemporaryDirectory(prefix="grade-") as temporary:
        try:
            workdir = prepare_folder(Path(temporary))
            notebook = read(path, workdir / Path(name).name)
            chapter = chapter or chapter_of(notebook, Path(name).name) or fallback_chapter
            tests = validate(chapter, chapters)
            notebook, notes = prepare(notebook, tests)
            run = Run.of(notebook, tests, limits)
            asyncio.run(execute_and_test(run, limits, isolation, workdir))
        except NotGraded as stop:
            return Result(name, stop.status, stop.chapter, problems=[stop.problem],
                          seconds=time.perf_counter() - started)
    return collect(run, name, chapter, notes, time.perf_counter() - started)


class NotGraded(Exception):
    """A stage found that the file cannot be graded: its status, its chapter if known, why."""

    def __init__(self, status: str, chapter: str | None, problem: str):
        super().__init__(problem)
        self.status, self.chapter, self.problem = status, chapter, problem


# Stage 1: read, from a copy in the submission's own folder.

def prepare_folder(temporary: Path) -> Path:
    """The submission's folders: work/ (the kernel's, writable), kernel/ (logs), home/.

    home/ holds the kernel's IPython and Matplotlib folders (see `kernel_environment`); the
    font list Matplotlib built for this user is copied there, so that the kernel need not
    search the system's fonts and build it again (half a second of CPU in every plotting kernel).
    """
    for sub in ("work", "kernel", "home/matplotlib"):
        (temporary / sub).mkdir(parents=True)
    for font_list in matplotlib_font_lists():
        with contextlib.suppress(OSError):
            shutil.copyfile(font_list, temporary / "home" / "matplotlib" / font_list.name)
    return temporary / "work"


def matplotlib_font_lists() -> list[Path]:
    """The font lists in this user's Matplotlib cache (found as Matplotlib finds it, on Linux
    and macOS), without importing Matplotlib; none if it has none."""
    folder = os.environ.get("MPLCONFIGDIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matplotlib"
    try:
        return sorted(path for path in Path(folder).glob("fontlist-*.json") if path.is_file())
    except OSError:
        return []


def read(path: Path, copy: Path) -> Any:
    """Copy the file to `copy` and read it there as a notebook."""
    try:
        shutil.copyfile(path, copy)
    except OSError as error:
        raise NotGraded("unreadable", None, f"the file cannot be read ({error})") from None
    notebook, why = read_submission(copy)
    if notebook is None:
        raise NotGraded("unreadable", None, f"this file cannot be graded: {why}")
    return notebook


_JSONSCHEMA_IMPORT = threading.Lock()


def import_jsonschema() -> None:
    """Import jsonschema (under nbformat, nbclient and papermill) without `rfc3987_syntax`.

    jsonschema imports that optional package where it is installed (JupyterLab's dependencies
    bring it) for its "iri" format checks, and the package builds a grammar as it is imported:
    about 2 s of CPU in every grading run, most of the grader's own time. No notebook schema
    uses that format. Only this import skips it: the package can still be imported afterwards.
    """
    with _JSONSCHEMA_IMPORT:
        if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
            return
        sys.modules["rfc3987_syntax"] = None  # importing it raises ImportError: jsonschema skips it
        try:
            import jsonschema  # noqa: F401
        except ImportError:
            pass  # nbformat says so itself, when imported
        finally:
            del sys.modules["rfc3987_syntax"]


def read_submission(path: Path) -> tuple[Any | None, str]:
    """The notebook in `path` (nbformat v4), or None and why it cannot be graded."""
    import_jsonschema()
    import nbformat

    if not path.is_file():
        return None, "it is not a regular file"
    data = path.read_bytes()
    if not data.strip():
        return None, "the file is empty"
    try:
        content = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "it is not a notebook (not text: a PDF, an archive, an image?)"
    except json.JSONDecodeError as error:
        return None, f"it is not valid JSON ({error.msg}, line {error.lineno}): damaged?"
    if not isinstance(content, dict) or not isinstance(content.get("cells"), list) \
            or content.get("nbformat") != 4:
        return None, "it is JSON but not a Jupyter notebook (format 4): no list of cells"
    try:  # nbformat.reader: no schema validation, which would only log noise from threads
        notebook = nbformat.reader.reads(json.dumps(content))
    except Exception as error:  # nbformat raises several kinds for broken structures
        return None, f"it is not a readable notebook ({type(error).__name__}: {error})"
    for cell in notebook.cells:
        if not isinstance(cell.get("source"), str) or cell.get("cell_type") not in (
                "code", "markdown", "raw"):
            return None, "it is not a readable notebook (a cell without text or type)"
        cell.setdefault("metadata", {}).setdefault("tags", [])  # papermill expects tags
    return notebook, ""


# Stage 2: validate: the chapter, and its grading tests.

def exercise_ids(notebook: Any) -> list[str]:
    """The ids of a notebook's exercises, in order (see `utils.exercises`)."""
    return exercises.exercise_ids(notebook.cells)


def chapter_of(notebook: Any, filename: str) -> str | None:
    """The chapter a submission belongs to: from its exercise ids, else its file name `NN_...`."""
    chapters = Counter(exercises.chapter_of_id(exercise) for exercise in exercise_ids(notebook))
    if chapters:
        return chapters.most_common(1)[0][0]
    match = CHAPTER_IN_NAME.match(filename)
    return match.group(1) if match else None


def validate(chapter: str | None, chapters: dict[str, ChapterTests]) -> ChapterTests:
    """The grading tests of the submission's chapter."""
    if chapter not in chapters:
        known = ", ".join(sorted(chapters))
        why = (f"it is for chapter {chapter}, which has no grading tests (known: {known})"
               if chapter else "no exercise ids found, so its chapter is unknown (use --chapter)")
        raise NotGraded("errors", chapter, f"not graded: {why}")
    return chapters[chapter]


# Stage 3: prepare: no Solutions appendix, the grading parameters in.

def prepare(notebook: Any, tests: ChapterTests) -> tuple[Any, list[str]]:
    """The notebook as it will run, and notes for the feedback about what was changed."""
    import logging

    from papermill.parameterize import parameterize_notebook

    logging.getLogger("papermill").setLevel(logging.ERROR)  # the feedback says it, plainer
    notes = []
    kept = exercises.without_appendix(notebook.cells)
    if len(kept) < len(notebook.cells):  # only the learner's own exercise cells count
        notes.append("the notebook still has its Solutions appendix: it was not run, and "
                     "only the exercise cells were graded")
        notebook.cells = kept
    if tests.parameters:
        if not any("parameters" in c.metadata["tags"] for c in notebook.cells):
            notes.append("no cell is tagged `parameters`: the grading parameters were set "
                         "at the top instead")
        notebook.metadata.setdefault("papermill", {})
        notebook = parameterize_notebook(notebook, tests.parameters, kernel_name="python3",
                                         language="python")
    return notebook, notes


# The state of a run.

@dataclass
class Step:
    """One cell to run: the student's (with its code-cell number) or a grading test's."""

    index: int  # its place in the notebook the kernel runs (test steps come after the cells)
    cell: Any  # None for a grading test: the judge runs those
    number: int | None = None  # the student's code-cell number; None for injected or test cells
    exercise: str | None = None
    test: GradingTest | None = None
    dropped: str = ""  # why it is not run (again): it was stopped, or it stopped the kernel
    timed_out: bool = False  # it ran past its time
    truncated: bool = False  # its output was cut at MAX_OUTPUT_CHARS
    verdict: Verdict | None = None  # a grading test's, once it ran

    @property
    def where(self) -> str:
        if self.test is not None:
            return f"the grading test of exercise {self.test.exercise}"
        if self.number is None:
            return "the grading parameters cell"
        return f"code cell {self.number}" + (f" (exercise {self.exercise})"
                                              if self.exercise else "")


@dataclass
class Run:
    """One submission's run: its steps, the time each may take, the notebook's clock."""

    steps: list[Step]
    cell_timeout: float
    notebook_timeout: float
    test_timeout: float
    environment: dict[str, str] = field(default_factory=dict)  # the chapter's, for the kernel
    tests_path: Path | None = None  # the chapter's grading-test file, which the judge runs
    deadline: float | None = None  # when the notebook's time is up; set when a kernel first is
    out_of_time: bool = False  # the notebook's time ran out before its cells had all run
    problems: list[str] = field(default_factory=list)  # about the kernels themselves

    @classmethod
    def of(cls, notebook: Any, chapter: ChapterTests, limits: Limits) -> Run:
        """The run of `notebook`'s code cells, then of `chapter`'s grading tests."""

        test_timeout = limits.test_timeout or chapter.test_timeout
        steps, number = [], 0
        for cell in notebook.cells:
            if cell.cell_type == "code":
                injected = exercises.is_injected_parameters(cell)
                if not injected:
                    number += 1
                steps.append(Step(len(steps), cell, None if injected else number,
                                  exercises.exercise_of(cell)))
        for test in chapter.tests:
            steps.append(Step(len(steps), None, test=test))
        return cls(steps, limits.cell_timeout or chapter.cell_timeout,
                   limits.notebook_timeout or chapter.notebook_timeout, test_timeout,
                   dict(chapter.environment), chapter.path)

    @property
    def cells(self) -> list[Step]:
        return [step for step in self.steps if step.test is None]

    @property
    def tests(self) -> list[Step]:
        return [step for step in self.steps if step.test is not None]


# Stages 4 and 5: execute the cells in a kernel, then the grading tests in the judge beside it.

async def execute_and_test(run: Run, limits: Limits, isolation: Isolation,
                           workdir: Path) -> None:
    """Run the steps in fresh kernels: a step that stops the kernel is dropped and the others
    run again in a new one, up to MAX_KERNEL_STARTS kernels. A kernel that does not start
    ends the run: what earlier kernels found (their tests' verdicts) is kept."""
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[step.cell for step in run.cells])
    env = {**kernel_environment(workdir, limits.threads_per_kernel), **run.environment}
    for start in range(1, MAX_KERNEL_STARTS + 1):
        client = make_client(notebook, isolation, limits.memory_bytes, workdir)
        async with contextlib.AsyncExitStack() as kernel:  # closed: the kernel is stopped
            try:
                await start_kernel(kernel, client, env, workdir.parent / "kernel" /
                                   f"log-{start}.txt")
            except Exception as error:
                again = " again after it stopped; later cells did not run" if start > 1 else ""
                run.problems.append(f"the kernel did not start{again} "
                                    f"({type(error).__name__}: {error})"
                                    + ("" if again else "; is the memory limit too low?"))
                return
            run.deadline = run.deadline or time.monotonic() + run.notebook_timeout
            lost = await execute_cells(run, client) or await run_tests(
                run, client, env, isolation, limits.memory_bytes, workdir)
        if lost is None:
            return
        if time.monotonic() >= run.deadline or start == MAX_KERNEL_STARTS:
            run.problems.append("grading gave up after the kernel stopped; later cells did "
                                "not run")
            return
        lost.dropped += "; the other cells ran again in a fresh kernel, without it"


async def execute_cells(run: Run, client: Any) -> Step | None:
    """Stage 4: the student's cells not done yet; the one that stopped the kernel, if one did."""
    for step in run.cells:
        if step.dropped:
            continue
        timeout = min(run.cell_timeout, run.deadline - time.monotonic())
        if timeout <= 0:
            run.out_of_time = True
            continue
        seconds = max(1, round(timeout))
        step.timed_out, lost = await _run_step(step, client, seconds)
        if lost:
            return step
        if step.timed_out:
            ran_out = timeout < run.cell_timeout
            run.out_of_time |= ran_out
            step.dropped = f"{step.where} was stopped after {seconds} s" + (
                " (the time left for the whole notebook)" if ran_out else "")
    return None


async def run_tests(run: Run, client: Any, env: dict[str, str], isolation: Isolation,
                    memory_bytes: int, workdir: Path) -> Step | None:
    """Stage 5: the grading tests not done yet, run by the judge (`judge`) in a process of its
    own behind the kernel's guard, which asks the kernel for the answers as data. The step
    whose test lost the kernel, if one did.

    The judge writes its verdicts into a file of a folder the kernel cannot write (with the
    file fence; see the README for what holds without it), which it opens only once nothing
    else of its user may reach its files (`undumpable`)."""
    pending = [step for step in run.tests if step.verdict is None]
    if not pending:
        return None
    requests = Path(tempfile.mkdtemp(prefix="judge-", dir=workdir.parent))  # the kernel's too
    with tempfile.TemporaryDirectory(prefix="verdicts-") as own:
        verdicts = Path(own) / "verdicts.jsonl"
        # -P: the judge imports nothing from its folder, where the kernel can write.
        command = guarded([sys.executable, "-P", "-m", "utils.grading.judge",
                           str(run.tests_path), client.km.connection_file,
                           str(client.km.provisioner.process.pid), str(requests), str(verdicts),
                           repr(run.test_timeout), *(step.test.name for step in pending)],
                          isolation, memory_bytes, f"{workdir.parent}{os.pathsep}{own}")
        seconds = JUDGE_START + len(pending) * (run.test_timeout + TEST_TIME_MARGIN)
        log = workdir.parent / "kernel" / "judge.txt"
        with log.open("w") as stream:
            judge = await asyncio.create_subprocess_exec(*command, stdout=stream, stderr=stream,
                                                         env=env, cwd=str(requests),
                                                         start_new_session=True)
            try:
                await asyncio.wait_for(judge.wait(), seconds)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    judge.kill()
                await judge.wait()
        found = verdicts.read_text().splitlines() if verdicts.is_file() else []
    by_name = {step.test.name: step for step in pending}
    for line in found:
        verdict = json.loads(line)
        step = by_name[verdict["name"]]
        if verdict.get("lost"):
            step.verdict = Verdict(step.test, False, "the kernel stopped while testing this "
                                   "exercise")
            step.dropped = f"{step.where} stopped the kernel ({kernel_end(client)})"
            return step
        step.verdict = Verdict(step.test, bool(verdict["passed"]), str(verdict["message"]))
    unjudged = [step for step in pending if step.verdict is None]
    if unjudged:  # the judge ran out of time in this test, or could not run it
        unjudged[0].verdict = Verdict(unjudged[0].test, False, (
            f"took longer than {run.test_timeout:g} s" if judge.returncode < 0
            else f"the test could not run ({_last_line(log) or 'the judge stopped'})"))
    return None


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = path.read_text(errors="replace").strip().splitlines()
        return lines[-1][:300] if lines else ""
    return ""


async def _run_step(step: Step, client: Any, seconds: int) -> tuple[bool, bool]:
    """Run one step: (did it run past `seconds`, did it lose the kernel: then it is dropped)."""
    try:
        too_long, lost = await execute_cell(client, step.cell, step.index, seconds)
    finally:
        step.truncated |= client.output_cut
    if lost:
        step.dropped = f"{step.where} " + (
            "ran out of time and ignored the interrupt, so its kernel was stopped" if too_long
            else f"stopped the kernel ({kernel_end(client)})")
    return too_long, lost


# Stage 6: collect the verdicts, the problems met and the status.

def collect(run: Run, name: str, chapter: str, notes: list[str], seconds: float) -> Result:
    """The file's result: every test's verdict (in order), the problems met, its status."""
    problems = [*notes, *(step.dropped for step in run.steps if step.dropped), *run.problems]
    if run.out_of_time:
        problems.append(f"the notebook used up its {run.notebook_timeout:.0f} s in all, so "
                        "some cells were stopped or did not run")
    errors = bool(run.problems) or any(step.dropped for step in run.cells)
    for step in run.steps:
        if step.truncated:
            problems.append(f"the output of {step.where} was cut at {MAX_OUTPUT_CHARS:,} "
                            "characters")
        error = None if step.test or step.dropped else exercises.first_error(step.cell)
        if error is not None:
            errors = True
            problems.append(f"{step.where} raised {exercises.describe_error(error)}")
    verdicts = [step.verdict or Verdict(step.test, False, "not graded: the kernel stopped, or "
                                        "time ran out, before this test") for step in run.tests]
    timed_out = run.out_of_time or any(step.timed_out for step in run.cells)
    status = "timeout" if timed_out else "errors" if errors else "ok"
    return Result(name, status, chapter, verdicts, problems, seconds)
