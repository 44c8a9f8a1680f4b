"""utils.student: student copies keep everything but the solutions, and each placeholder fails."""

import json

import pytest

from utils import runner, student

NOTEBOOKS = runner.find_notebooks()


def code_cell(source, **metadata):
    return {"cell_type": "code", "execution_count": 3, "metadata": metadata,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "42\n"}],
            "source": source}


def markdown_cell(source):
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def notebook_of(*cells):
    return {"cells": list(cells), "metadata": {"kernelspec": {"name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def text(cell):
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def solution_block(cell):
    """The lines between the markers of a student copy's cell, as one piece of code."""
    lines = text(cell).splitlines()
    (begin, end), = student.solution_blocks(text(cell))
    return "\n".join(line.strip() for line in lines[begin + 1:end])


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=lambda path: path.stem)
def copies(request):
    instructor = json.loads(request.param.read_text())
    return instructor, *student.student_copy(instructor)


def test_a_student_copy_holds_no_solution_text(copies):
    instructor, copy, _ = copies
    secret = student.solution_lines(instructor)
    left = {line.strip() for cell in copy["cells"] for line in text(cell).splitlines()}
    assert not secret & left


def test_each_placeholder_fails_with_a_message_naming_its_exercise(copies):
    _, copy, ids = copies
    cells = [c for c in copy["cells"] if c["cell_type"] == "code" and student.BEGIN in text(c)]
    assert len(cells) == len(ids) > 0
    for cell, exercise_id in zip(cells, ids, strict=True):
        block = solution_block(cell)
        assert block.startswith(student.PLACEHOLDER)
        with pytest.raises(NotImplementedError, match=rf"Exercise {exercise_id} is not answered "
                           r"yet: replace the line '# YOUR CODE HERE' and this raise"):
            exec(block, {})


def test_a_student_copy_keeps_every_other_cell_and_clears_outputs(copies):
    instructor, copy, _ = copies
    assert len(copy["cells"]) == len(instructor["cells"])
    assert copy["metadata"] == instructor["metadata"]
    for before, after in zip(instructor["cells"], copy["cells"], strict=True):
        assert after["cell_type"] == before["cell_type"]
        assert after.get("metadata") == before.get("metadata")
        if student.BEGIN not in text(before):
            assert after["source"] == before["source"]
        if after["cell_type"] == "code":
            assert after["outputs"] == [] and after["execution_count"] is None


def test_chapter_01_has_three_exercises_whose_check_calls_stay():
    _, ids = student.student_copy(json.loads(runner.find_notebooks(["01"])[0].read_text()))
    assert ids == ["01.1", "01.2", "01.3"]


def test_the_placeholder_keeps_the_indentation_of_its_markers():
    source = ("def train(data):\n"
              "    ### BEGIN SOLUTION\n"
              "    return sum(data)\n"
              "    ### END SOLUTION\n"
              "\n"
              'check("03.2", train)\n')
    new, ids = student.remove_solutions(source, None)
    assert ids == ["03.2"]
    assert "return sum(data)" not in new
    assert "    # YOUR CODE HERE\n    raise NotImplementedError(" in new
    namespace = {}
    exec(new.replace('check("03.2", train)', ""), namespace)
    with pytest.raises(NotImplementedError, match="Exercise 03.2"):
        namespace["train"]([1, 2])


def test_two_solutions_in_one_cell_get_their_own_exercise_ids():
    source = ("### BEGIN SOLUTION\na = 1\n### END SOLUTION\ncheck('04.1', a)\n"
              "### BEGIN SOLUTION\nb = 2\n### END SOLUTION\ncheck('04.2', b)\n")
    new, ids = student.remove_solutions(source, None)
    assert ids == ["04.1", "04.2"]
    assert "a = 1" not in new and "b = 2" not in new
    assert new.splitlines().count(student.PLACEHOLDER) == 2


def test_without_a_check_call_the_exercise_id_comes_from_the_prompt_above():
    notebook = notebook_of(
        markdown_cell("**Exercise 05.3** Build the model."),
        code_cell(["### BEGIN SOLUTION\n", "model = 1\n", "### END SOLUTION\n"]),
    )
    copy, ids = student.student_copy(notebook)
    assert ids == ["05.3"]
    assert isinstance(copy["cells"][1]["source"], list), "sources keep their JSON form"
    assert "Exercise 05.3 is not answered yet" in text(copy["cells"][1])
    assert notebook["cells"][1]["source"][1] == "model = 1\n", "the input is left untouched"


@pytest.mark.parametrize("source, problem", [
    ("### BEGIN SOLUTION\nx = 1\ncheck('01.1', x)\n", "without ### END SOLUTION after it"),
    ("x = 1\n### END SOLUTION\n", "without ### BEGIN SOLUTION before it"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another solution"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "a solution with no exercise id"),
], ids=["no end", "no begin", "nested", "no exercise id"])
def test_broken_markers_are_reported_with_the_cell_number(source, problem):
    notebook = notebook_of(markdown_cell("Intro"), code_cell(source))
    with pytest.raises(ValueError, match=f"cell 2: line .*{problem}"):
        student.student_copy(notebook)


def test_make_student_writes_one_copy_per_notebook(tmp_path, capsys):
    chapter_01 = runner.find_notebooks(["01"])[0]
    assert student.main(["01", "--out", str(tmp_path)]) == 0
    written = json.loads((tmp_path / chapter_01.name).read_text())
    assert not student.solution_lines(json.loads(chapter_01.read_text())) & {
        line.strip() for cell in written["cells"] for line in text(cell).splitlines()}
    assert "(exercises 01.1, 01.2, 01.3)" in capsys.readouterr().out
