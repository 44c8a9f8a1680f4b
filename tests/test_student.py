"""utils.student and utils.exercises: handouts hold no solution, solved copies hold them all, and
every tool finds the exercise cells, the appendix and papermill's cell the same way."""

import json

import pytest

from utils import exercises, runner, student

NOTEBOOKS = runner.find_notebooks()


def code_cell(source, outputs=(), **metadata):
    return {"cell_type": "code", "execution_count": 3, "metadata": metadata,
            "outputs": list(outputs), "source": source}


def markdown_cell(source, **metadata):
    return {"cell_type": "markdown", "metadata": metadata, "source": source}


def notebook_of(*cells):
    return {"cells": list(cells), "metadata": {"kernelspec": {"name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def tiny_learner_notebook():
    return notebook_of(
        code_cell("SEED = 1", tags=["parameters"]),
        markdown_cell("**Exercise 07.1** Double it."),
        code_cell("def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError\n\n"
                  "check('07.1', double)", exercise="07.1"),
        markdown_cell("## Key takeaways\n- doubling"),
        markdown_cell("## Solutions\n\nOne cell per exercise.", solutions="appendix"),
        code_cell("def double(x):\n    return 2 * x\n\ncheck('07.1', double)", solution="07.1"),
    )


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=lambda path: path.stem)
def learner(request):
    return json.loads(request.param.read_text())


def test_a_handout_is_the_notebook_without_its_appendix_or_outputs(learner):
    handout, ids = student.handout_copy(learner)
    before, appendix = exercises.split_appendix(learner["cells"])
    assert appendix and len(handout["cells"]) == len(before)
    assert ids == exercises.exercise_ids(learner["cells"])
    for original, kept in zip(before, handout["cells"], strict=True):
        assert kept["source"] == original["source"]
        if kept["cell_type"] == "code":
            assert kept["outputs"] == [] and kept["execution_count"] is None
    assert not exercises.solution_cells(handout["cells"])


def test_nothing_next_to_an_exercise_holds_a_line_of_its_solution(learner):
    """The exercise cell and the prompt above it share only the signature and the check call."""
    cells, solutions = learner["cells"], exercises.solution_cells(learner["cells"])
    for exercise_id, index in exercises.exercise_cells(cells).items():
        lines = {line.strip() for line in exercises.source_of(cells[solutions[exercise_id]])
                 .splitlines()} - {""}
        secret = {line for line in lines if not line.startswith(("def ", "check("))}
        near = {line.strip() for cell in cells[index - 1:index + 1]
                for line in exercises.source_of(cell).splitlines()}
        assert not secret & near, f"{exercise_id}: {secret & near}"
        assert exercises.PLACEHOLDER in near or "= ...  # YOUR CODE HERE" in exercises.source_of(
            cells[index]), f"{exercise_id} has no placeholder"


def test_a_solved_copy_has_each_solution_in_its_exercise_cell_and_no_appendix(learner):
    solved, ids = student.solved_copy(learner)
    cells = learner["cells"]
    solutions = exercises.solution_cells(cells)
    assert ids == list(solutions) == exercises.exercise_ids(cells)
    assert exercises.appendix_start(solved["cells"]) is None
    for exercise_id, index in exercises.exercise_cells(solved["cells"]).items():
        assert solved["cells"][index]["source"] == cells[solutions[exercise_id]]["source"]
        assert solved["cells"][index]["metadata"][exercises.EXERCISE] == exercise_id


def test_handouts_and_solved_copies_of_a_tiny_notebook():
    learner = tiny_learner_notebook()
    handout, ids = student.handout_copy(learner)
    assert ids == ["07.1"] and len(handout["cells"]) == 4
    assert "raise NotImplementedError" in exercises.source_of(handout["cells"][2])
    solved, _ = student.solved_copy(learner)
    assert len(solved["cells"]) == 4
    assert exercises.source_of(solved["cells"][2]).startswith("def double(x):\n    return 2 * x")
    assert learner["cells"][2]["source"].count("NotImplementedError") == 1, "input untouched"


def test_a_solution_left_in_an_exercise_cell_is_refused():
    learner = tiny_learner_notebook()
    learner["cells"][2]["source"] = "def double(x):\n    return 2 * x\n\ncheck('07.1', double)"
    with pytest.raises(ValueError, match="solution text in exercise cells"):
        student.handout_copy(learner)


def test_an_exercise_without_a_solution_or_a_solution_without_an_exercise_is_reported():
    learner = tiny_learner_notebook()
    learner["cells"][-1]["metadata"] = {"solution": "07.2"}
    with pytest.raises(ValueError, match="no solution for 07.1; no exercise cell for 07.2"):
        student.solved_copy(learner)


def test_make_student_and_make_solved_write_one_copy_per_notebook(tmp_path, capsys):
    chapter_01 = runner.find_notebooks(["01"])[0]
    assert student.main(["01", "--out", str(tmp_path / "student")]) == 0
    assert student.main(["01", "--solved", "--out", str(tmp_path / "solved")]) == 0
    out = capsys.readouterr().out
    assert out.count("(exercises 01.1, 01.2, 01.3, 01.4)") == 2
    handout = json.loads((tmp_path / "student" / chapter_01.name).read_text())
    solved = json.loads((tmp_path / "solved" / chapter_01.name).read_text())
    assert len(handout["cells"]) == len(solved["cells"]) < len(
        json.loads(chapter_01.read_text())["cells"])


def test_copies_never_go_over_the_notebooks_themselves(capsys):
    assert student.main(["01", "--out", str(runner.NOTEBOOKS)]) == 1
    assert "is the notebook itself" in capsys.readouterr().err


# utils.exercises: the one place that knows what a cell is.

def test_exercise_cells_are_found_by_metadata_else_by_their_check_call():
    assert exercises.exercise_of(code_cell("x = ...", exercise="02.3")) == "02.3"
    assert exercises.exercise_of(code_cell("check('06.1', f)")) == "06.1"
    assert exercises.exercise_of(code_cell("check('06.1', f)", solution="06.1")) is None
    assert exercises.exercise_of(code_cell("x = 1", exercise="2.3")) is None
    assert exercises.exercise_of(markdown_cell("check('06.1', f)")) is None


def test_the_appendix_starts_at_its_heading_by_metadata_or_by_text():
    marked = tiny_learner_notebook()["cells"]
    assert exercises.appendix_start(marked) == 4
    lost = [dict(cell, metadata={}) for cell in marked]  # a tool that drops cell metadata
    assert exercises.appendix_start(lost) == 4
    assert exercises.without_appendix(lost) == lost[:4]


def test_without_the_appendix_keeps_cells_a_learner_added_after_it():
    cells = tiny_learner_notebook()["cells"] + [code_cell("print('my own scratch')")]
    kept = exercises.without_appendix(cells)
    assert [exercises.source_of(c) for c in kept[4:]] == ["print('my own scratch')"]
    assert not exercises.solution_cells(kept)


def test_papermill_cells_errors_and_volatile_metadata():
    injected = code_cell("EPOCHS = 1", tags=["injected-parameters"])
    error = {"output_type": "error", "ename": "ValueError", "evalue": "boom\nmore", "traceback": []}
    failing = code_cell("raise ValueError", outputs=[{"output_type": "stream", "text": "x"}, error])
    assert exercises.is_injected_parameters(injected)
    assert exercises.first_error(failing) is error
    assert exercises.describe_error(error) == "ValueError: boom"
    assert [n for n, _ in exercises.code_cells([injected, failing, failing])] == [1, 2]
    notebook = notebook_of(injected, code_cell("x", execution={"t": 1}, tags=[]))
    notebook["metadata"]["papermill"] = {}
    clean = exercises.strip_volatile(notebook)
    assert clean["cells"] == [code_cell("x")] and "papermill" not in clean["metadata"]
