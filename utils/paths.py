"""Where the course's files are: the one place that knows the repository's layout.

`ROOT` is the checkout `utils` was imported from (or, from a wheel, the folder above the
installed package, which has no notebooks). The grading tests ship inside the package, so that
`course-grade` finds them from a wheel and in an autograder bundle too.
"""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build"
GRADING_TESTS = PACKAGE / "grading" / "chapter_tests"  # one file per chapter, NN_name.py
