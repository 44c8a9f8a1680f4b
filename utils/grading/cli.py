"""`make grade` / `course-grade`: grade every file of a folder in parallel, write the report."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

from utils.grading.chapters import DEFAULT_TESTS, find_chapter_tests
from utils.grading.kernel import STOP
from utils.grading.report import STATUSES, Result, write_report
from utils.grading.sandbox import DEFAULT_MEMORY, Isolation, Limits, kernel_isolation
from utils.grading.submission import chapter_of, grade_file, read_submission

DEFAULT_OUT = Path("build") / "grades"


def list_submissions(folder: Path) -> list[tuple[Path, str]]:
    """Every file under `folder` (subfolders too, e.g. one per student), with its relative name."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() or (path.is_symlink() and not path.is_dir()):
            found.append((path, path.relative_to(folder).as_posix()))
    return found


def grade_folder(folder: Path, tests_folder: Path = DEFAULT_TESTS, out: Path = DEFAULT_OUT, *,
                 jobs: int | None = None, chapter: str | None = None,
                 limits: Limits | None = None, progress: bool = True) -> list[Result]:
    """Grade every file in `folder` in parallel; write the CSV and feedback files into `out`."""
    from tqdm import tqdm

    if not folder.is_dir():
        raise FileNotFoundError(f"no submissions folder at {folder}")
    chapters = find_chapter_tests(tests_folder)
    if chapter is not None and chapter not in chapters:
        raise ValueError(f"no grading tests for chapter {chapter} in {tests_folder}")
    submissions = list_submissions(folder)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    jobs = max(1, jobs or cores or 1)
    limits = replace(limits or Limits(), threads_per_kernel=max(1, (cores or 1) // jobs))
    isolation = limits.isolation or (kernel_isolation() if limits.isolate else Isolation("off"))
    fallback = _majority_chapter(submissions)
    STOP.clear()
    pool = ThreadPoolExecutor(max_workers=jobs)
    with tqdm(total=len(submissions), unit="file", disable=not progress) as bar:
        futures = {pool.submit(grade_file, path, name, chapters, limits, isolation, chapter,
                               fallback): name for path, name in submissions}
        try:
            finished = list(_collect(futures, bar))
        except KeyboardInterrupt:  # Ctrl-C: stop the kernels now rather than grade on
            STOP.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    pool.shutdown()
    write_report(finished, out)
    return sorted(finished, key=lambda r: r.submission)


def _collect(futures: dict[Any, str], bar: Any) -> Iterator[Result]:
    """The results of the futures as they finish, with the progress bar kept up to date."""
    for future in as_completed(futures):
        name = futures[future]
        try:
            result = future.result()
        except Exception as error:  # a bug of the grader must not lose a submission
            result = Result(name, "errors", problems=[
                f"the grader itself failed on this file ({type(error).__name__}: {error}); "
                "please tell the course maintainers"])
            print(f"grader error on {name}: {error!r}", file=sys.stderr)
        bar.set_postfix_str(f"{name}: {result.status}", refresh=False)
        bar.update()
        yield result


def _majority_chapter(submissions: list[tuple[Path, str]]) -> str | None:
    """The chapter most readable submissions belong to (for files whose own is not clear)."""
    chapters = Counter()
    for path, name in submissions:
        with contextlib.suppress(OSError):
            notebook, _ = read_submission(path)
            found = chapter_of(notebook, Path(name).name) if notebook is not None else None
            if found:
                chapters[found] += 1
    return chapters.most_common(1)[0][0] if chapters else None


def parse_memory(text: str) -> int:
    """'4G', '512M', '2.5G' or 'none' -> bytes (0 for no limit)."""
    text = text.strip().upper()
    if text in ("NONE", "0", "OFF"):
        return 0
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)I?B?", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"memory looks like 4G, 512M or none, got {text!r}")
    scale = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}[match.group(2)]
    return int(float(match.group(1)) * scale)


def main(argv: list[str] | None = None) -> int:
    from utils.grading import exports  # not at the top: exports imports this module

    parser = argparse.ArgumentParser(
        prog="course-grade",
        description="Grade every file of a folder of submitted notebooks headless.",
        epilog="A guard against accidents, not a security sandbox: for untrusted code, grade "
               "inside the course container.")
    parser.add_argument("submissions", type=Path, help="folder of submitted files")
    parser.add_argument("--tests", type=Path, default=DEFAULT_TESTS,
                        help="folder of grading-test files NN_name.py (default: the course's own)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where grades.csv and feedback/ go (default: build/grades)")
    parser.add_argument("--chapter", help="grade every file as this chapter (e.g. 01) instead "
                        "of reading it from the notebook's exercise ids")
    parser.add_argument("-j", "--jobs", type=int, help="submissions graded at once "
                        "(default: one per CPU core)")
    parser.add_argument("--cell-timeout", type=float, help="seconds per cell "
                        "(default: the chapter's CELL_TIMEOUT)")
    parser.add_argument("--notebook-timeout", type=float, help="seconds for all cells "
                        "(default: the chapter's NOTEBOOK_TIMEOUT)")
    parser.add_argument("--test-timeout", type=float, help="seconds per grading test "
                        "(default: the chapter's TEST_TIMEOUT)")
    parser.add_argument("--memory", type=parse_memory, default=DEFAULT_MEMORY,
                        help="data memory per kernel, e.g. 4G, 8G or none (default: 4G)")
    parser.add_argument("--allow-network", action="store_true",
                        help="no isolation: the notebooks may reach the network "
                        "and write outside their temporary folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--canvas-roster", type=Path, metavar="ROSTER",
                        help="also write OUT/canvas.csv for Canvas's gradebook import: the "
                        "students of ROSTER (Canvas's gradebook export) with their grade for "
                        "--chapter, matched by the SIS Login ID, SIS User ID or Canvas ID in "
                        "their file's name")
    parser.add_argument("--force", action="store_true", help="replace an existing canvas.csv")
    args = parser.parse_args(argv)
    if args.chapter is not None and not re.fullmatch(r"\d\d", args.chapter):
        parser.error(f"--chapter looks like 01, got {args.chapter!r}")
    roster = None
    if args.canvas_roster is not None:  # checked before grading, which can take an hour
        if args.chapter is None:
            parser.error("--canvas-roster needs --chapter NN: a Canvas column is one chapter")
        try:
            roster = exports.read_roster(args.canvas_roster)
            exports.refuse_overwrite(args.out / exports.CANVAS_FILE, args.force)
        except (FileNotFoundError, FileExistsError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    isolation = (Isolation("off", description="off (--allow-network)") if args.allow_network
                 else kernel_isolation())
    memory = f"{args.memory / 1024**3:g} GiB" if args.memory else "none"
    print(f"isolation: {isolation.description}; memory limit per kernel: {memory}", flush=True)
    limits = Limits(args.cell_timeout, args.notebook_timeout, args.test_timeout, args.memory,
                    not args.allow_network, isolation=isolation)
    started = time.perf_counter()
    try:
        results = grade_folder(args.submissions, args.tests, args.out, jobs=args.jobs,
                               chapter=args.chapter, limits=limits,
                               progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the kernels were stopped and nothing was written", file=sys.stderr)
        return 130
    seconds = time.perf_counter() - started
    counts = Counter(r.status for r in results)
    print(f"graded {len(results)} file(s) in {seconds:.1f} s: "
          + ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s]))
    print(f"wrote {args.out / 'grades.csv'} and {len(results)} feedback file(s) in "
          f"{args.out / 'feedback'}")
    if not results:
        print(f"warning: {args.submissions} holds no files", file=sys.stderr)
    if roster is not None:
        path = args.out / exports.CANVAS_FILE
        chapter = find_chapter_tests(args.tests)[args.chapter]
        for note in exports.export_canvas(results, roster, chapter, path):
            print(f"canvas: {note}", file=sys.stderr)
        print(f"wrote {path}: import it in Canvas (Grades > Import)")
    return 0
