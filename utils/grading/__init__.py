"""Grade a folder of submitted notebooks headless: one fresh kernel each, grader-owned tests, a CSV.

`make grade SUBMISSIONS=folder [TESTS=folder]` (or `course-grade`) runs `cli.main`, which grades
the files in parallel, each one by `submission.grade_file`, in stages:

1. read      the file is copied into a temporary folder and read as a notebook there;
2. validate  its chapter (from its exercise ids, else its file name) has grading tests;
3. prepare   its Solutions appendix is dropped, the chapter's grading parameters injected into
             its `parameters` cell (papermill);
4. execute   its code cells run one by one in a fresh kernel under time and memory limits and,
             where the system allows it, without network access and with files read-only outside
             that folder (`sandbox`, `guard`); a cell that fails does not stop the others, one
             that stops the kernel is dropped and the rest run again in a new kernel (`kernel`);
5. test      the chapter's grading tests (a Python file per chapter, see `api.graded`) run in
             the judge, a process of its own that never runs the submission's code and asks
             its kernel for the answers as data (`judge`, `bridge`);
6. collect   their verdicts, the problems met and a status make the file's `Result`.
Then `report` writes `grades.csv` (one row per file, one column per exercise) and one feedback
file per submission.

The modules: `api` (what grading-test files use), `chapters` (a grading-test file, read),
`sandbox` and `guard` (what fences a kernel and the judge in), `kernel` (one kernel and one
cell), `judge` and `bridge` (the tests' process, and the data it gets from the kernel),
`submission` (the stages above), `report` (verdicts, results, the CSV and feedback), `cli` (the
folder, the command line) and `exports` (Gradescope, PrairieLearn, Canvas).

This guards against accidents (endless loops, huge outputs, runaway memory, stray downloads or
writes); it is not a security sandbox. Grade inside the course container for more isolation.
"""

from utils.grading.api import (
    Answers,
    NotAnswered,
    NotDefined,
    TookTooLong,
    graded,
    load_module,
    passes,
    trained_alike,
)
from utils.grading.chapters import (
    DEFAULT_CELL_TIMEOUT,
    DEFAULT_NOTEBOOK_TIMEOUT,
    DEFAULT_TEST_TIMEOUT,
    DEFAULT_TESTS,
    ChapterTests,
    GradingTest,
    find_chapter_tests,
    load_chapter_tests,
)
from utils.grading.cli import DEFAULT_OUT, grade_folder, list_submissions, main, parse_memory
from utils.grading.kernel import HARD_KILL_GRACE, MAX_OUTPUT_CHARS, GradingInterrupted
from utils.grading.report import STATUSES, Result, Verdict, feedback_text, write_report
from utils.grading.sandbox import (
    DEFAULT_MEMORY,
    Isolation,
    Limits,
    kernel_environment,
    kernel_isolation,
)
from utils.grading.submission import (
    MAX_KERNEL_STARTS,
    chapter_of,
    exercise_ids,
    grade_file,
    read_submission,
)

__all__ = [
    "DEFAULT_CELL_TIMEOUT", "DEFAULT_MEMORY", "DEFAULT_NOTEBOOK_TIMEOUT", "DEFAULT_OUT",
    "DEFAULT_TESTS", "DEFAULT_TEST_TIMEOUT", "HARD_KILL_GRACE", "MAX_KERNEL_STARTS",
    "MAX_OUTPUT_CHARS", "STATUSES", "Answers", "ChapterTests", "GradingInterrupted",
    "GradingTest", "Isolation", "Limits", "NotAnswered", "NotDefined", "Result", "TookTooLong",
    "Verdict", "chapter_of", "exercise_ids", "feedback_text", "find_chapter_tests",
    "grade_file", "grade_folder", "graded", "kernel_environment", "kernel_isolation",
    "list_submissions", "load_chapter_tests", "load_module", "main", "parse_memory", "passes",
    "read_submission", "trained_alike", "write_report",
]
