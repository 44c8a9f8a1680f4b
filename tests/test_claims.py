"""The claims mechanism: a claim of the text shows one line, a notice when it does not hold (the
notebook goes on), and in strict mode (make run, nbval) an error naming the claim and values."""

import json
import sys

import nbformat
import numpy as np
import pytest

from utils import claims, runner
from utils.claims import ClaimNotHeld, Mode, claim, evaluate


@pytest.mark.parametrize(("condition", "values", "holds", "margin"), [
    ("a > b + 0.01", {"a": 0.95, "b": 0.92}, True, pytest.approx(0.02 / 0.95)),
    ("a > b + 0.01", {"a": 0.929, "b": 0.92}, False, pytest.approx(-0.001 / 0.93)),
    ("0 < x < 5", {"x": np.array([1.0, 2.0, 4.0])}, True, pytest.approx(0.2)),
    ("x < 3 or y < 3", {"x": 4.0, "y": 2.0}, True, pytest.approx(1 / 3)),
    ("not flag and n == 3", {"flag": False, "n": 3}, True, None),
    ("close(j, k, atol=1e-6)", {"j": np.zeros(2), "k": np.full(2, 5e-7)}, True,
     pytest.approx(0.5)),
    ("x > 0", {"x": np.array([])}, True, None),
    ("abs(d) <= max(a, b) / 2", {"d": -1.0, "a": 1.0, "b": 4.0}, True, pytest.approx(0.5)),
])
def test_a_condition_holds_or_not_with_its_relative_margin(condition, values, holds, margin):
    outcome = evaluate("a claim", condition, values)
    assert (outcome.holds, outcome.margin) == (holds, margin)


@pytest.mark.parametrize(("condition", "message"), [
    ("a >", "is not an expression"),
    ("a > c", "uses 'c', which is not among its values"),
    ("__import__('os')", "claim conditions use names, numbers"),
    ("a.real > 0", "claim conditions use names, numbers"),
    ("a + 1", "must be a comparison or a true/false value"),
    ("a is 1", "compare with"),
])
def test_a_condition_outside_the_small_language_is_refused_plainly(condition, message):
    with pytest.raises(ValueError, match=message):
        evaluate("a claim", condition, {"a": 1.0})


def test_a_claim_needs_a_sentence():
    with pytest.raises(ValueError, match="needs a sentence"):
        evaluate("  ", "a > 0", {"a": 1})


def test_a_claim_that_holds_shows_one_line_with_its_values(monkeypatch, capsys):
    monkeypatch.setenv(claims.MODE_VARIABLE, "strict")
    monkeypatch.setitem(sys.modules, "IPython.display", None)  # print, as outside a kernel
    assert claim("Adam beats SGD", "adam > sgd", adam=0.97, sgd=0.9) is None
    assert capsys.readouterr().out == "✓ Adam beats SGD  [adam = 0.97, sgd = 0.9]\n"


def test_a_claim_that_does_not_hold_shows_a_notice_in_a_learners_run(monkeypatch, capsys):
    monkeypatch.delenv(claims.MODE_VARIABLE, raising=False)
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    claim("Adam beats SGD", "adam > sgd", adam=0.9, sgd=0.97)
    shown = capsys.readouterr().out
    assert shown.startswith("⚠ The text claims: Adam beats SGD")
    assert "adam = 0.9, sgd = 0.97" in shown and "another seed, another CPU" in shown


def test_strict_mode_raises_naming_the_claim_and_its_values(monkeypatch):
    monkeypatch.setenv(claims.MODE_VARIABLE, "strict")
    with pytest.raises(ClaimNotHeld, match=r"Adam beats SGD: `adam > sgd` does not hold for "
                                           r"adam = 0\.9, sgd = 0\.97"):
        claim("Adam beats SGD", "adam > sgd", adam=0.9, sgd=0.97)


def test_an_unknown_mode_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv(claims.MODE_VARIABLE, "loud")
    with pytest.raises(ValueError, match=r"one of \['notice', 'strict'\], got 'loud'"):
        claims.mode()


def notebook_with_a_failing_claim(path):
    cells = [nbformat.v4.new_code_cell("SEED = 42", metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell("import utils\naccuracy = 0.91"),
             nbformat.v4.new_code_cell('utils.claim("The network passes 95%", "accuracy > 0.95", '
                                       "accuracy=accuracy)"),
             nbformat.v4.new_code_cell('print("the last cell ran")')]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_a_failing_claim_shows_its_notice_and_the_notebook_runs_to_the_end(tmp_path):
    source = notebook_with_a_failing_claim(tmp_path / "99_claim.ipynb")
    result = runner.execute(source, tmp_path / "out.ipynb", {}, 120, mode=Mode.NOTICE)
    assert result["status"] == "ok", result
    assert [(c["sentence"], c["holds"], c["values"]) for c in result["claims"]] == [
        ("The network passes 95%", False, {"accuracy": 0.91})]
    executed = json.loads((tmp_path / "out.ipynb").read_text())
    shown = ["".join(o.get("text", "") or o.get("data", {}).get("text/plain", ""))
             for c in executed["cells"] for o in c.get("outputs", [])]
    assert any(text.startswith("⚠ The text claims: The network passes 95%") for text in shown)
    assert "the last cell ran\n" in shown


def test_the_same_notebook_fails_in_strict_mode_naming_the_claim_and_its_values(tmp_path):
    source = notebook_with_a_failing_claim(tmp_path / "99_claim.ipynb")
    result = runner.execute(source, tmp_path / "out.ipynb", {}, 120, mode=Mode.STRICT)
    assert result["status"] == "failed"
    assert "code cell 3: ClaimNotHeld: The network passes 95%: `accuracy > 0.95` does not hold " \
           "for accuracy = 0.91" in result["error"]
