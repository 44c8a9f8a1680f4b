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


def number(value: float) -> str:
    """Points as people write them: 3, 2.5."""
    return f"{value:g}"


def exercise_outcomes(result: Result, exercises: dict[str, float] | None = None,
                      ) -> list[tuple[str, float, float, str]]:
    """(exercise id, points earned, points it is worth, "passed" or why not) for each exercise
    (default: those the file was graded on), in order; one that was not graded scores 0."""
    earned = result.points()
    outcomes = []
    for exercise, worth in (result.maximum() if exercises is None else exercises).items():
        failures = [v.message for v in result.tests
                    if v.test.exercise == exercise and not v.passed]
        if exercise not in earned:
            text = f"not graded (status {result.status}): " + "; ".join(result.problems)
        elif failures:
            text = "failed: " + "; ".join(failures)
        else:
            text = "passed"
        outcomes.append((exercise, earned.get(exercise, 0.0), worth, text))
    return outcomes


def feedback_text(result: Result) -> str:
    """The short feedback file of one submission: which exercises passed, why the others failed."""
    chapter = f" (chapter {result.chapter})" if result.chapter else ""
    if not result.tests:
        return "\n".join([f"{result.submission}{chapter}: not graded, status {result.status}",
                          "", *result.problems]) + "\n"
    lines = [f"{result.submission}{chapter}: {number(result.total)}/"
             f"{number(sum(result.maximum().values()))} points, status {result.status}", ""]
    lines += [f"Exercise {exercise}: {number(earned)}/{number(worth)}, {text}"
              for exercise, earned, worth, text in exercise_outcomes(result)]
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
            cells = [number(points[e]) if e in points else ("0" if not result.tests else "")
                     for e in exercises]
            writer.writerow([result.submission, result.chapter or "", *cells,
                             number(result.total), result.status])
    used: set[str] = set()
    for result in results:
        stem = result.submission.replace("/", "__")
        name, copy = f"{stem}.txt", 1
        while name in used:
            copy += 1
            name = f"{stem}.{copy}.txt"
        used.add(name)
        (feedback / name).write_text(feedback_text(result))
    return csv_path
