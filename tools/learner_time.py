"""How long a chapter takes a learner: an estimate, not a measurement (README, "Time").

    python tools/learner_time.py            every chapter, as a Markdown table

Reading: 150 words of prose a minute and 6 seconds per line of code, for the chapter's text
and its key takeaways. Exercises: 15 minutes each, which covers reading the exercise,
answering it and reading its solution (so their text is not counted twice). Running: the
chapter's median time at learner defaults in the latest claims sweep (docs/claims.json), on
the course's own environment.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils import exercises, paths  # noqa: E402

WORDS_PER_MINUTE = 150
SECONDS_PER_CODE_LINE = 6
MINUTES_PER_EXERCISE = 15
GOAL_MINUTES = 150  # issue: at most about 2.5 hours per chapter
SWEEP = ROOT / "docs" / "claims.json"


def run_minutes(stem: str) -> float:
    """The median run time of a chapter in the claims sweep (venv stack), in minutes; 0 if
    the sweep has none."""
    runs = json.loads(SWEEP.read_text())["runs"] if SWEEP.exists() else []
    seconds = [run["seconds"] for run in runs
               if run["notebook"] == stem and run["stack"] == "venv" and "seconds" in run]
    return statistics.median(seconds) / 60 if seconds else 0.0


def estimate(path: Path) -> dict[str, float]:
    """Minutes of reading (the chapter and its key takeaways, without the exercises and their
    solutions), exercises and running for one chapter notebook."""
    cells = json.loads(path.read_text())["cells"]
    prose, code, reading = [], [], True
    for cell in cells:
        text = exercises.source_of(cell)
        if cell["cell_type"] == "markdown" and (heading := re.search(r"^## (Exercises|Key takeaways"
                                                                     r"|Solutions)", text, re.M)):
            if reading:
                prose.append(text[:heading.start()])
            reading = heading.group(1) == "Key takeaways"
            text = text[heading.start():]
        if reading:
            (prose if cell["cell_type"] == "markdown" else code).append(text)
    words = sum(len(re.findall(r"\w+", text)) for text in prose)
    lines = sum(1 for text in code for line in text.splitlines() if line.strip())
    minutes = {"reading": words / WORDS_PER_MINUTE + lines * SECONDS_PER_CODE_LINE / 60,
               "exercises": MINUTES_PER_EXERCISE * len(exercises.exercise_ids(cells)),
               "running": run_minutes(path.stem)}
    return minutes | {"words": words, "code lines": lines, "total": sum(minutes.values())}


def main() -> int:
    print("| chapter | words | code lines | exercises | reading | running | total |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for path in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        m = estimate(path)
        print(f"| {path.stem} | {m['words']:,} | {m['code lines']} | "
              f"{m['exercises'] / MINUTES_PER_EXERCISE:.0f} | {m['reading']:.0f} min | "
              f"{m['running']:.0f} min | {m['total']:.0f} min ({m['total'] / 60:.1f} h) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
