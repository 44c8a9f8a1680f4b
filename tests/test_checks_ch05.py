"""Chapter 05's checks: right answers pass, realistic wrong answers get a hint (and score 0,
since the grading tests decide with the same checks)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from utils.checks import ch05, verdict


def status(exercise_id, answer):
    return verdict(exercise_id, answer)


def right_stopping(val_losses, patience):
    best, best_epoch, waited = float("inf"), 1, 0
    for epoch, loss in enumerate(val_losses, start=1):
        waited += 1
        if loss < best:
            best, best_epoch, waited = loss, epoch, 0
        elif waited >= patience and epoch > 1:
            return epoch, best_epoch
    return len(val_losses), best_epoch


def counted_from_zero(val_losses, patience):
    trained, kept = right_stopping(val_losses, patience)
    return trained - 1, kept - 1


def keeps_the_last_epoch(val_losses, patience):
    trained, _ = right_stopping(val_losses, patience)
    return trained, trained


def ties_improve(val_losses, patience):
    best, best_epoch, waited = float("inf"), 1, 0
    for epoch, loss in enumerate(val_losses, start=1):
        waited += 1
        if loss <= best:
            best, best_epoch, waited = loss, epoch, 0
        elif waited >= patience:
            return epoch, best_epoch
    return len(val_losses), best_epoch


def best_plus_patience(val_losses, patience):
    best = int(np.argmin(val_losses)) + 1
    return best + patience, best  # forgets that the run may end first


def compares_with_the_previous_epoch(val_losses, patience):
    rises = 0
    for epoch in range(2, len(val_losses) + 1):
        rises = rises + 1 if val_losses[epoch - 1] >= val_losses[epoch - 2] else 0
        if rises >= patience:
            return epoch, int(np.argmin(val_losses[:epoch])) + 1
    return len(val_losses), int(np.argmin(val_losses)) + 1


def test_05_1_agrees_with_keras():
    assert status("05.1", right_stopping).passed
    assert ch05.keras_early_stopping([0.9, 0.7, 0.7, 0.7, 0.7, 0.5, 0.6], 3) == (5, 2)


@pytest.mark.parametrize("wrong", [counted_from_zero, keeps_the_last_epoch, ties_improve,
                                   best_plus_patience, compares_with_the_previous_epoch])
def test_05_1_wrong_answers_score_zero(wrong):
    result = status("05.1", wrong)
    assert result.status == "hint", result


def test_05_1_is_not_answered_while_the_placeholder_raises():
    def placeholder(val_losses, patience):
        raise NotImplementedError("Exercise 05.1 is not answered yet")

    assert status("05.1", placeholder).status == "unanswered"


def history(train, val_loss, val_cross_entropy):
    return {"loss": [train], "val_loss": [val_loss], "val_cross_entropy": [val_cross_entropy]}


# The penalty inflates val_loss more for larger decays: val_loss ranks 0 first, the
# cross-entropy alone ranks 1e-3 first; the training loss ranks 0 first as well.
DECAYS = {0.0: history(0.01, 0.40, 0.40), 1e-4: history(0.05, 0.41, 0.36),
          1e-3: history(0.15, 0.52, 0.33), 1e-2: history(0.60, 0.95, 0.45)}


def test_05_2_accepts_the_lowest_validation_cross_entropy():
    assert status("05.2", (DECAYS, 1e-3)).passed


@pytest.mark.parametrize("results, chosen, words", [
    (DECAYS, 0.0, "penalty"),  # lowest val_loss, which includes the penalty
    ({k: v for k, v in DECAYS.items() if k != 1e-2}, 1e-3, "three"),  # too few values
    ({0.0: DECAYS[0.0], 1e-4: DECAYS[1e-4], 2e-4: DECAYS[1e-3], 3e-4: DECAYS[1e-2]}, 2e-4,
     "factor"),
    (DECAYS, 1e-2, "another"),
    (DECAYS, 0.5, "not one of"),
])
def test_05_2_wrong_answers_score_zero(results, chosen, words):
    result = status("05.2", (results, chosen))
    assert result.status == "hint" and words in result.message, result


def test_05_2_training_loss_choice_is_named():
    decays = dict(DECAYS)
    decays[0.0] = history(0.01, 0.30, 0.40)  # now also the lowest val_loss? no: train loss
    decays[1e-4] = history(0.001, 0.41, 0.36)
    result = status("05.2", (decays, 1e-4))
    assert result.status == "hint" and "training loss" in result.message, result


def deep(stddev_of, widths=ch05.WIDTHS_05_3, initializer=None):
    keras.utils.set_random_seed(3)
    model, fan_in = keras.Sequential([keras.Input(shape=(784,))]), 784
    for width in widths:
        init = initializer or keras.initializers.RandomNormal(stddev=stddev_of(fan_in, width))
        model.add(keras.layers.Dense(width, activation="relu", kernel_initializer=init))
        fan_in = width
    model.add(keras.layers.Dense(10))
    return model


def test_05_3_accepts_he_scaling_per_layer():
    assert status("05.3", deep(lambda fan_in, _: np.sqrt(2 / fan_in))).passed


@pytest.mark.parametrize("model, words", [
    (lambda: deep(lambda fan_in, _: np.sqrt(2 / 64)), "grows"),  # one stddev for every layer
    (lambda: deep(lambda fan_in, fan_out: np.sqrt(2 / (fan_in + fan_out))), "shrinks"),  # Glorot
    (lambda: deep(lambda fan_in, _: np.sqrt(1 / fan_in)), "shrinks"),  # LeCun, for ReLU
    (lambda: deep(None, initializer="he_normal"), "RandomNormal"),
    (lambda: deep(lambda fan_in, _: np.sqrt(2 / fan_in), widths=[256] * 20), "alternate"),
])
def test_05_3_wrong_answers_score_zero(model, words):
    result = status("05.3", model())
    assert result.status == "hint" and words in result.message, result


# ---------------------------------------------------------------- 05.4 quadrant network
class FakeDense:
    def __init__(self, units):
        self.units = units


class FakeModel:
    """Quacks like a Keras model: `.layers` with `.units`, called on the points."""

    def __init__(self, hidden, rule):
        self.layers = [FakeDense(units) for units in hidden] + [FakeDense(1)]
        self.rule = rule

    def __call__(self, X):
        return self.rule(np.asarray(X))


def xor_rule(X):
    return (X[:, 0] * X[:, 1] > 0).astype(float)


def test_05_4_accepts_a_small_network_that_solves_the_quadrants():
    assert status("05.4", FakeModel([3], xor_rule)).passed
    assert status("05.4", FakeModel([2, 1], xor_rule)).passed


@pytest.mark.parametrize("wrong, words", [
    (FakeModel([5], xor_rule), "limit is 3"),  # section 1's network
    (FakeModel([2, 2], xor_rule), "limit is 3"),
    (FakeModel([], xor_rule), "hidden layer"),
    (FakeModel([3], lambda X: (X[:, 0] > 0).astype(float)), "local minimum"),
    (FakeModel([3], lambda X: np.ones(3)), "could not classify"),
    (xor_rule, "trained Keras model"),
])
def test_05_4_gives_a_hint_for_typical_mistakes(wrong, words):
    result = status("05.4", wrong)
    assert not result.passed and words in result.text()
