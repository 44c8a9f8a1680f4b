"""The check mechanism (verdicts, placeholders, no stray value) and the self-checks of chapters
01 and 06, whose 07.3 key is now the right one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from utils import check, checks
from utils.checks import HINT, UNANSWERED, Hint, ch01, ch07, verdict


def hint_for(exercise, answer):
    with pytest.raises(Hint) as raised:
        exercise(answer)
    return str(raised.value)


def placeholder(*args):
    raise NotImplementedError("Exercise 01.1 is not answered yet")


@pytest.mark.parametrize("exercise_id, answer", [
    ("01.1", placeholder), ("01.2", placeholder), ("02.1", placeholder), ("03.1", placeholder),
    ("03.2", placeholder), ("04.1", ({}, ...)), ("04.2", placeholder), ("06.3", placeholder),
    ("07.2", placeholder),
    ("01.3", placeholder), ("02.4", placeholder), ("01.4", placeholder), ("03.3", ...),
    ("04.3", placeholder), ("07.1", placeholder),
    ("07.3", (..., ...)),
])
def test_an_unanswered_exercise_is_reported_as_such_and_stops_nothing(exercise_id, answer,
                                                                      capsys):
    assert verdict(exercise_id, answer).status == UNANSWERED
    assert check(exercise_id, answer) is None, "no value, so no stray `True` under the cell"
    out = capsys.readouterr().out
    assert f"Exercise {exercise_id}: not answered yet" in out and "Hint" not in out


def test_a_check_prints_a_pass_or_a_hint_and_returns_nothing(capsys):
    assert check("01.2", _sigmoid_slope) is None
    assert capsys.readouterr().out == "✅ Exercise 01.2: correct.\n"
    assert check("01.2", _sigmoid) is None
    assert capsys.readouterr().out.startswith("❌ Exercise 01.2: not yet. Hint:")


def test_a_function_that_crashes_gets_a_hint_naming_its_error():
    def broken(z):
        return z.undefined

    result = verdict("01.2", broken)
    assert result.status == HINT and "raised AttributeError" in result.message


def test_only_the_placeholders_own_not_implemented_error_means_unanswered():
    def library_refuses(z):
        raise NotImplementedError("op=Adasum) is not supported")

    def bare(z):
        raise NotImplementedError

    result = verdict("01.2", library_refuses)
    assert result.status == HINT and "NotImplementedError: op=Adasum) is not supported" in (
        result.message)
    assert verdict("01.2", bare).status == HINT



def test_a_library_error_raised_inside_a_checker_is_a_hint_too(monkeypatch):
    def checker_calling_a_learners_layer(answer):  # a Keras call, not through `call`
        raise NotImplementedError("Layer MyLayer has no compute_output_shape")

    monkeypatch.setitem(checks._REGISTRY, "01.2", checker_calling_a_learners_layer)
    result = verdict("01.2", object())
    assert result.status == HINT and "no compute_output_shape" in result.message


def test_unknown_or_malformed_exercise_ids_are_errors_of_the_notebook_not_hints():
    with pytest.raises(ValueError, match="look like '01.2'"):
        verdict("1.2", 0)
    with pytest.raises(ValueError, match="unknown exercise '01.9'"):
        verdict("01.9", 0)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _sigmoid_slope(z):
    return _sigmoid(z) * (1 - _sigmoid(z))


def _ce_gradients(w, b, X, y):
    error = _sigmoid(X @ w + b) - y
    return X.T @ error / len(y), np.mean(error)


def _quadratic_gradients(w, b, X, y):
    f = _sigmoid(X @ w + b)
    delta = (f - y) * f * (1 - f)
    return X.T @ delta / len(y), np.mean(delta)


def _descent(gradients, sign=1.0, restart=False):
    def train(w, b, X, y, learning_rate, epochs):
        if restart:
            w, b = np.zeros_like(w), 0.0
        for _ in range(epochs):
            grad_w, grad_b = gradients(w, b, X, y)
            w, b = w - sign * learning_rate * grad_w, b - sign * learning_rate * grad_b
        return w, b
    return train


def test_01_1_accepts_the_cross_entropy_gradient_written_either_way():
    assert ch01.cross_entropy_gradient(_ce_gradients) is None

    def via_chain_rule(w, b, X, y):  # dC/df * df/dz, not simplified
        f = _sigmoid(X @ w + b)
        delta = -(y / f - (1 - y) / (1 - f)) * f * (1 - f)
        return list(X.T @ delta / len(y)), np.array([delta.mean()])

    assert ch01.cross_entropy_gradient(via_chain_rule) is None


@pytest.mark.parametrize("wrong, words", [
    (_quadratic_gradients, "QUADRATIC"),
    (lambda w, b, X, y: tuple(-g for g in _ce_gradients(w, b, X, y)), "sign is reversed"),
    (lambda w, b, X, y: tuple(g * len(y) for g in _ce_gradients(w, b, X, y)), "SUM"),
    (lambda w, b, X, y: (_ce_gradients(w, b, X, y)[0], 0.0), "grad_b is not"),
    (lambda w, b, X, y: _ce_gradients(w, b, X, y)[0], "pair"),
    (lambda w, b, X, y: tuple(g * len(y) / 60 for g in _ce_gradients(w, b, X, y)),
     "hard-coded sizes"),
])
def test_01_1_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch01.cross_entropy_gradient, wrong)


def test_01_2_accepts_the_ratio_and_names_typical_mistakes():
    assert ch01.slowdown_ratio(lambda z: _sigmoid(z) * _sigmoid(-z)) is None
    assert "upside down" in hint_for(ch01.slowdown_ratio,
                                     lambda z: 1 / (_sigmoid(z) * (1 - _sigmoid(z))))
    assert "derivative itself" in hint_for(
        ch01.slowdown_ratio, lambda z: np.abs((_sigmoid(z) - 1) * _sigmoid(z) * (1 - _sigmoid(z))))
    assert "0.25" in hint_for(ch01.slowdown_ratio, _sigmoid)
    assert "one ratio per score" in hint_for(ch01.slowdown_ratio, lambda z: 0.1)


def test_01_3_accepts_descent_on_the_cross_entropy_and_says_it_escaped():
    remark = ch01.escapes_a_saturated_start(_descent(_ce_gradients))
    assert "accuracy" in remark and "quadratic" in remark


def _frozen_bias(w, b, X, y):
    return _ce_gradients(w, b, X, y)[0], 0.0


def _sum_of_points(w, b, X, y):
    return tuple(len(y) * g for g in _ce_gradients(w, b, X, y))


def _hundred_times(gradients):
    return lambda w, b, X, y: tuple(100 * g for g in gradients(w, b, X, y))


@pytest.mark.parametrize("wrong, words", [
    (_descent(_quadratic_gradients), "stays stuck"),
    (_descent(_ce_gradients, sign=-1.0), "step AGAINST"),
    (_descent(_frozen_bias), "b never moves"),
    (_descent(_sum_of_points), "mean over the points"),
    (_descent(_hundred_times(_quadratic_gradients)), "not where batch gradient descent"),
    (_descent(_hundred_times(_ce_gradients)), "not where batch gradient descent"),
    (_descent(_ce_gradients, restart=True), "start from the w and b"),
    (lambda w, b, X, y, learning_rate, epochs: w, "pair (w, b)"),
])
def test_01_3_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch01.escapes_a_saturated_start, wrong)


def test_01_hints_never_state_the_gradient():
    hints = [hint_for(ch01.cross_entropy_gradient, _quadratic_gradients),
             hint_for(ch01.slowdown_ratio, _sigmoid),
             hint_for(ch01.escapes_a_saturated_start, _descent(_quadratic_gradients))]
    for hint in hints:
        assert "f(1 - f)" not in hint and "f - y" not in hint.replace("(f - y)", "")
    assert "int" in hint_for(ch01.counts_the_perceptrons_mistakes, lambda X, y, passes: 3.0)


# ---------------------------------------------------------------- 07.3, its key corrected
RIGHT = ({5, 8, 9, 10}, {8, 9, 10})


def test_07_3_accepts_the_writing_lines_and_the_rank_0_lines(capsys):
    check("07.3", RIGHT)
    assert "✅ Exercise 07.3: correct." in capsys.readouterr().out
    assert verdict("07.3", ([5, 8, 9, 10], (8, 9, 10))).passed, "lists and tuples too"


@pytest.mark.parametrize("answer, words", [
    (({5, 8, 9, 10}, {5, 8, 9, 10}), "collective operations"),
    (({8, 9, 10}, {8, 9, 10}), "including through an argument"),
    (({5, 8, 9, 10, 11}, {8, 9, 10}), "line 11? evaluate(..., verbose=0)"),
    (({5, 6, 8, 9, 10}, {8, 9, 10}), "count it once"),
    (({5, 8, 9, 10}, {8, 9}), "8 copies of the same output"),
    (({5, 8, 9, 10}, {3}), "among the lines that write output"),
    (({5, 8, 9, 10},), "pair of sets"),
    (({5, 8, 9, 10}, {"8"}), "ints from 1 to 11"),
])
def test_07_3_gives_a_hint_for_typical_mistakes(answer, words):
    hint = hint_for(ch07.rank0_only_lines, answer)
    assert words in hint
    assert "{8, 9, 10}" not in hint


def test_07_3_keys_are_stored_as_hashes_only():
    source = open(ch07.__file__).read()
    assert "{8, 9, 10}" not in source and "{5, 8, 9, 10}" not in source
    assert ch07._lines_digest(RIGHT[1]) == ch07.RANK0_LINES_SHA256


# ---------------------------------------------------------------- 07.1, the two-rank job
def right_job(**changes):
    """What two_rank_exercise.py reports for a right answer (and `changes` to make it wrong)."""
    job = {"np": 2, "train_samples": 2048, "batch_size": 64, "base_lr": 0.02, "epochs": 1,
           "error": None, "initial_digests": ["aa", "bb"], "final_digests": ["cc", "cc"],
           "same_change": False, "alone_seconds": [2.0, 2.2], "job_seconds": [2.6, 2.7],
           "steps": [16, 16], "learning_rates": [0.04, 0.04], "errors_on_ranks": 0,
           "efficiency": 0.78, "shares": {"sizes": [1024, 1024], "overlap": 0, "covered": 2048}}
    return {**job, **changes}


def test_07_1_a_right_job_passes_and_reports_its_efficiency():
    assert ch07.job_problem(right_job()) is None
    remark = ch07.job_remark(right_job())
    assert "same weights" in remark and "78%" in remark and "speedup 1.56" in remark
    assert "not measured" in ch07.job_remark(right_job(efficiency=None))
    assert ch07.expected_steps(right_job()) == 16
    assert ch07.expected_steps(right_job(train_samples=2000, epochs=2)) == 2 * 16


@pytest.mark.parametrize("changes, words", [
    ({"final_digests": ["cc", "dd"], "same_change": True}, "started apart"),
    ({"final_digests": ["cc", "dd"]}, "averaged over the ranks"),
    ({"final_digests": ["aa", "aa"]}, "did not train"),
    ({"steps": [0, 0], "learning_rates": [float("nan")] * 2}, "took no training step"),
    ({"steps": [32, 32]}, "WHOLE training set"),
    ({"steps": [8, 8]}, "one pass per epoch over that share"),
    ({"learning_rates": [0.02, 0.02]}, "linear scaling rule"),
    # Every rank on the same first half, x[:len(x) // size]: the step count is right.
    ({"shares": {"sizes": [1024, 1024], "overlap": 1024, "covered": 1024}}, "same images"),
    ({"shares": {"sizes": [1024, 1024], "overlap": 0, "covered": 1536}}, "1536 of the 2048"),
    ({"learning_rates": [0.08, 0.08]}, "learning rate after training is 0.08"),
    ({"error": "TypeError: fit() got an unexpected keyword argument 'batch'"}, "raised TypeError"),
])
def test_07_1_names_what_a_wrong_job_got_wrong(changes, words):
    problem = ch07.job_problem(right_job(**changes))
    assert problem is not None and words in problem
    assert "DistributedOptimizer" not in problem and "Broadcast" not in problem, "no answer"


def test_07_1_a_placeholder_launches_nothing(monkeypatch):
    def no_launch(*args, **kwargs):
        raise AssertionError("a placeholder must not start a job")

    monkeypatch.setattr(ch07, "two_rank_job", no_launch)
    assert verdict("07.1", placeholder).status == UNANSWERED
    assert "expected a function" in verdict("07.1", 3).message


def test_07_1_runs_one_job_per_version_of_the_function(monkeypatch, tmp_path):
    from utils import distributed

    launched = []

    def fake_horovodrun(command, np, **kwargs):
        launched.append(command)
        out = command[command.index("--out") + 1]
        open(out, "w").write('{"np": 2, "steps": [16, 16]}')

    def trainer(model, x, y, base_lr, batch_size, epochs):
        return None

    monkeypatch.setattr(distributed, "horovodrun", fake_horovodrun)
    monkeypatch.setattr(ch07, "_JOBS", {})
    assert ch07.two_rank_job(trainer)["steps"] == [16, 16]
    assert ch07.two_rank_job(trainer)["steps"] == [16, 16] and len(launched) == 1
    command = launched[0]
    assert command[1].endswith("two_rank_exercise.py") and "--train-samples=2048" in command
    assert "def trainer" in open(command[command.index("--solution") + 1]).read()


@pytest.mark.parametrize("output, returncode, launches", [
    ("Process 1 exit with status code 137.", 1, 2),  # a rank lost to the machine: once more
    ("[1]<stderr>:ValueError: shapes differ\nProcess 1 exit with status code 1.", 1, 1),
    ("[0]<stdout>:epoch 1", None, 1),  # killed at the timeout: a hang is the answer's
])
def test_07_1_runs_the_job_again_only_when_a_rank_died_without_a_python_error(
        monkeypatch, output, returncode, launches):
    from utils import distributed

    launched = []

    def failing_once(command, np, **kwargs):
        launched.append(command)
        if len(launched) == 1:
            raise distributed.HorovodJobError("horovodrun -np 2 failed", output, returncode)
        open(command[command.index("--out") + 1], "w").write('{"np": 2}')

    def trainer(model, x, y, base_lr, batch_size, epochs):
        return None

    monkeypatch.setattr(distributed, "horovodrun", failing_once)
    monkeypatch.setattr(ch07, "_JOBS", {})
    if launches == 2:
        assert ch07.two_rank_job(trainer) == {"np": 2}
    else:
        with pytest.raises(Hint, match="the two-rank job failed"):
            ch07.two_rank_job(trainer)
    assert len(launched) == launches


def test_07_1_the_grader_can_shrink_the_job(monkeypatch):
    from utils import distributed

    launched = []

    def fake_horovodrun(command, np, **kwargs):
        launched.append(command)
        out = command[command.index("--out") + 1]
        open(out, "w").write('{"np": 2, "steps": [4, 4]}')

    def trainer(model, x, y, base_lr, batch_size, epochs):
        return None

    monkeypatch.setattr(distributed, "horovodrun", fake_horovodrun)
    monkeypatch.setattr(ch07, "_JOBS", {})
    monkeypatch.setenv(ch07.TRAIN_SAMPLES_VARIABLE, "512")
    assert ch07.job_settings() == {**ch07.JOB, "train_samples": 512}
    ch07.two_rank_job(trainer)
    assert "--train-samples=512" in launched[0] and "--batch-size=64" in launched[0]
    monkeypatch.delenv(ch07.TRAIN_SAMPLES_VARIABLE)
    ch07.two_rank_job(trainer)  # another job size: another job
    assert len(launched) == 2 and "--train-samples=2048" in launched[1]


@pytest.mark.skipif(not __import__("utils.distributed").distributed.horovod_installed(),
                    reason="needs Horovod")
def test_07_1_a_real_job_without_the_broadcast_is_told_so(monkeypatch):
    """The one real launch (about 20 s on 2 idle cores): the right answer is graded elsewhere."""
    def no_broadcast(model, x, y, base_lr, batch_size, epochs):
        import keras

        import utils.horovod_keras as hvd
        from utils import distributed

        x, y = distributed.shard(x, y)
        optimizer = hvd.DistributedOptimizer(keras.optimizers.SGD(base_lr * hvd.size()))
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                      jit_compile=False)
        model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)

    monkeypatch.setattr(ch07, "_JOBS", {})
    result = verdict("07.1", no_broadcast)
    assert result.status == HINT and "started apart" in result.message, result.message
    job = ch07.two_rank_job(no_broadcast)
    assert job["steps"] == [16, 16] and job["efficiency"] > 0
    assert job["shares"] == {"sizes": [1024, 1024], "overlap": 0, "covered": 2048}, (
        "each rank's images, read back from its model.fit call")


# ---------------------------------------------------------------- 07.2, the crossover
def test_07_2_accepts_the_size_where_both_parts_are_equal():
    assert ch07.latency_bandwidth_crossover(lambda n, alpha, beta: n * alpha * beta) is None
    for n, alpha, beta in ch07.CROSSOVER_CASES:
        size = n * alpha * beta
        assert math.isclose(ch07.latency_seconds(n, alpha),
                            ch07.bandwidth_seconds(size, n, beta))


@pytest.mark.parametrize("answer, words", [
    (lambda n, alpha, beta: alpha * beta, "ONE message in flight"),
    (lambda n, alpha, beta: 2 * (n - 1) * alpha * beta, "ALL of it crossed one link"),
    (lambda n, alpha, beta: n * alpha * beta / 8, "bytes per second already"),
    (lambda n, alpha, beta: alpha / beta, "they should be equal"),
    (lambda n, alpha, beta: -1.0, "positive"),
    (lambda n, alpha, beta: "big", "number of bytes"),
    (lambda n, alpha, beta: [n], "number of bytes"),
])
def test_07_2_names_typical_mistakes_without_the_formula(answer, words):
    hint = hint_for(ch07.latency_bandwidth_crossover, answer)
    assert words in hint
    assert "N latency bandwidth" not in hint and "n * alpha * beta" not in hint
