"""`python -m utils.grading`: the grader's command line (see `utils.grading.cli`)."""

import sys

from utils.grading.cli import main

if __name__ == "__main__":  # importing the package's modules one by one must not grade anything
    sys.exit(main())
