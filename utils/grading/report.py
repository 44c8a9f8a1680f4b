"""What grading found: each test's verdict, each file's result, and grades.csv with feedback."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from utils.grading.chapters import GradingTest, worth_of

STATUSES = ("ok", "errors", "timeout", "unreadable")


@dataclass
class Verdict:
    """Whether one grading test passed, and if not, why (the student's feedback)."""

    test: GradingTest
    passed: bool
    message: str


@dataclass
class Result:
    """The outcome of grading one file: the row of the CSV and the content of its feedback."""

    submission: str
    status: str
    chapter: str | None = None
    tests: list[Verdict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def points(self) -> dict[str, float]:
        """Exercise id -> the points earned, in the order of the tests."""
        earned = dict.fromkeys(self.maximum(), 0.0)
        earned.update(worth_of(v.test for v in self.tests if v.passed))
        return earned

    def maximum(self) -> dict[str, float]:
        """Exercise id -> the points it is worth."""
        return worth_of(v.test for v in self.tests)

    @property
    def total(self) -> float:
        return sum(self.points().values())


def _number(value: float) -> str:
    return f"{value:g}"


def feedback_text(result: Result) -> str:
    """The short feedback file of one submission: which exercises passed, why the others failed."""
    chapter = f" (chapter {result.chapter})" if result.chapter else ""
    if not result.tests:
        return "\n".join([f"{result.submission}{chapter}: not graded, status {result.status}",
                          "", *result.problems]) + "\n"
    earned, worth = result.points(), result.maximum()
    lines = [f"{result.submission}{chapter}: {_number(result.total)}/"
             f"{_number(sum(worth.values()))} points, status {result.status}", ""]
    for exercise in worth:
        failures = [v for v in result.tests if v.test.exercise == exercise and not v.passed]
        verdict = "passed" if not failures else "failed: " + "; ".join(
            v.message for v in failures)
        lines.append(f"Exercise {exercise}: {_number(earned[exercise])}/"
                     f"{_number(worth[exercise])}, {verdict}")
    if result.problems:
        lines += ["", "While running the notebook:", *(f"- {p}" for p in result.problems)]
    return "\n".join(lines) + "\n"


def write_report(results: list[Result], out: Path) -> Path:
    """Write `grades.csv` and the feedback files in `out`; return the CSV's path."""
    exercises: dict[str, None] = {}
    for result in results:
        exercises.update(dict.fromkeys(result.maximum()))
    out.mkdir(parents=True, exist_ok=True)
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    for old in feedback.glob("*.txt"):
        old.unlink()
    csv_path = out / "grades.csv"
    with csv_path.open("w", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["submission", "chapter", *exercises, "total", "status"])
        for result in sorted(results, key=lambda r: r.submission):
            points = result.points()
            cells = [_number(points[e]) if e in points else ("0" if not result.tests else "")
                     for e in exercises]
            writer.writerow([result.submission, result.chapter or "", *cells,
                             _number(result.total), result.status])
    used: set[str] = set()
    for result in results:
        stem = result.submission.replace("/", "__")
        name, number = f"{stem}.txt", 1
        while name in used:
            number += 1
            name = f"{stem}.{number}.txt"
        used.add(name)
        (feedback / name).write_text(feedback_text(result))
    return csv_path
