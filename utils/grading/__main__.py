"""`python -m utils.grading`: the grader's command line (see `utils.grading.cli`)."""

import sys

from utils.grading.cli import main

sys.exit(main())
