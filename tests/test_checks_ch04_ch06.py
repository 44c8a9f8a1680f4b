"""Tests for the self-checks of chapters 04 and 05: right answers pass, wrong ones get a hint."""

from __future__ import annotations

import math

import numpy as np
import pytest

from utils.checks import Hint, ch04, ch06, verdict  # noqa: F401  (importing registers the checkers)


def passes(exercise_id, answer):
    """Whether the check passes `answer`; it prints its verdict as `check` does."""
    result = verdict(exercise_id, answer)
    print(result.text())
    return result.passed


def hint_for(exercise, answer):
    """The hint a wrong answer gets (fails the test if the answer passes)."""
    with pytest.raises(Hint) as raised:
        exercise(answer)
    return str(raised.value)


# ---------------------------------------------------------------- 04.1 rate and batch size
def history(train, val, val_loss=None, best_val=None):
    """A Keras-style history dict of two epochs, ending at the given accuracies."""
    return {"loss": [1.0, 0.5], "accuracy": [0.5, train],
            "val_loss": [1.0, 1 - val if val_loss is None else val_loss],
            "val_accuracy": [0.1 if best_val is None else best_val, val]}


TUNING = {(0.1, 32): history(0.95, 0.90), (0.1, 256): history(0.90, 0.91),
          (0.5, 32): history(0.99, 0.89), (0.5, 256): history(0.93, 0.92)}


def test_04_1_accepts_the_best_validation_accuracy(capsys):
    assert passes("04.1", (TUNING, (0.5, 256)))
    assert "correct" in capsys.readouterr().out
    assert passes("04.1", (TUNING, [0.5, np.int64(256)]))  # a list, NumPy ints: fine
    tie = TUNING | {(0.1, 32): history(0.95, 0.92)}
    assert passes("04.1", (tie, (0.1, 32))) and passes("04.1", (tie, (0.5, 256)))


def test_04_1_is_not_answered_while_chosen_is_the_placeholder():
    assert verdict("04.1", ({}, ...)).status == "unanswered"


@pytest.mark.parametrize("results, chosen, words", [
    (TUNING, (0.5, 32), "training accuracy"),
    (TUNING, (0.1, 32), "higher validation accuracy"),
    (TUNING | {(0.1, 32): history(0.95, 0.90, best_val=0.99)}, (0.1, 32), "last epoch"),
    (TUNING | {(0.1, 32): history(0.95, 0.90, val_loss=0.01)}, (0.1, 32), "validation loss"),
    ({(0.1, 32): history(0.9, 0.9), (0.1, 64): history(0.9, 0.8)}, (0.1, 32), "at least two"),
    ({key: value for key, value in TUNING.items() if key != (0.5, 32)}, (0.5, 256),
     "incomplete"),
    (TUNING, (0.3, 32), "not one of the combinations"),
    ({(0.1, 32): 0.9, (0.5, 256): 0.92}, (0.5, 256), "not one number"),
    ({(0.1, 32): {"loss": [0.3], "accuracy": [0.9]}}, (0.1, 32), "validation_data"),
    ({0.1: history(0.9, 0.9)}, 0.1, "pair (learning rate, batch size)"),
    ({(0.1, 32.5): history(0.9, 0.9)}, (0.1, 32.5), "whole number"),
    ({}, (0.1, 32), "still empty"),
])
def test_04_1_gives_a_hint_for_typical_mistakes(results, chosen, words):
    assert words in hint_for(ch04.tuned_on_validation, (results, chosen))


def test_04_1_wants_the_pair():
    assert "pair (tuning_results, chosen)" in hint_for(ch04.tuned_on_validation, TUNING)


# ---------------------------------------------------------------- 04.2 backpropagation by hand
def gradients(W1, b1, W2, b2, X, y, tanh_derivative=True, mean=True):
    n = len(X)
    h = np.tanh(X @ W1 + b1)
    p = 1 / (1 + np.exp(-(h @ W2 + b2)))
    error = (p - y.reshape(-1, 1)) / (n if mean else 1)
    back = error @ W2.T * ((1 - h ** 2) if tanh_derivative else 1)
    return X.T @ back, back.sum(axis=0), h.T @ error, error.sum(axis=0)


def test_04_2_accepts_the_gradients_in_any_bias_shape():
    assert passes("04.2", gradients)
    assert passes("04.2", lambda *a: [g.reshape(1, -1) if g.ndim == 1 else g
                                      for g in gradients(*a)])
    assert passes("04.2", lambda *a: (*gradients(*a)[:3], float(gradients(*a)[3][0])))


def test_finite_differences_agree_with_the_formula():
    params, X, y = ch04.random_network(3, n=6, hidden=4)
    numeric = ch04.numeric_gradients(params, X, y)
    assert all(np.allclose(g, e, rtol=1e-5, atol=1e-8)
               for g, e in zip(gradients(*params, X, y), numeric, strict=True))


def broadcast_by_mistake(W1, b1, W2, b2, X, y):
    h = np.tanh(X @ W1 + b1)
    error = (1 / (1 + np.exp(-(h @ W2 + b2))) - y) / len(X)  # (n, 1) - (n,): (n, n)
    return W1, b1, h.T @ error, error.sum(axis=0)


@pytest.mark.parametrize("wrong, words", [
    (lambda *a: gradients(*a, tanh_derivative=False), "through the tanh"),
    (lambda *a: gradients(*a, mean=False), "mean over the points"),
    (lambda *a: [-g for g in gradients(*a)], "wrong sign"),
    (lambda *a: (*gradients(*a)[:3], 2 * gradients(*a)[3]), "db2 is wrong"),
    (lambda *a: [0.5 * g for g in gradients(*a)], "output layer's gradients are already off"),
    (broadcast_by_mistake, "broadcast"),
    (lambda *a: (gradients(*a)[0].T, *gradients(*a)[1:]), "transpose"),
    (lambda *a: (gradients(*a)[0], np.ones((len(a[4]), len(a[1]))), *gradients(*a)[2:]),
     "one number per neuron"),
    (lambda *a: gradients(*a)[:2], "four gradients"),
    (lambda *a: [g * np.nan for g in gradients(*a)], "nan"),
    (lambda *a: 1 / 0, "ZeroDivisionError"),
])
def test_04_2_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch04.hidden_layer_gradients, wrong)


# ---------------------------------------------------------------- 04.3 Adam by hand
def adam_keras_form(w, g, m, v, t, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Adam as Keras writes it: the bias correction folded into the rate, epsilon outside it."""
    m, v = m + (g - m) * (1 - beta_1), v + (g * g - v) * (1 - beta_2)
    rate = learning_rate * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    return w - rate * m / (np.sqrt(v) + epsilon), m, v


def test_04_3_accepts_adam_as_the_paper_and_as_keras_write_it():
    assert passes("04.3", ch04.adam_reference)
    assert passes("04.3", adam_keras_form)


@pytest.mark.parametrize("wrong, words", [
    (lambda *a: ch04.adam_reference(*a, corrected=False), "Correct both"),
    (lambda *a: ch04.adam_reference(*a, average=False), "RMSprop"),
    (lambda w, g, m, v, t, rate: ch04.adam_reference(w, g, m, v, t - 1, rate), "from 1"),
    (lambda w, g, m, v, t, rate: ch04.adam_reference(w, g, m, v, t, rate, 0.999, 0.9),
     "leave Adam's path"),
    (lambda w, g, m, v, t, rate: ch04.adam_reference(w, g, m, v, t, rate)[0], "(w, m, v)"),
    (0.05, "should be a function"),
])
def test_04_3_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch04.adam_by_hand, wrong)


# ---------------------------------------------------------------- 06.1 receptive field
def receptive_field_right(stack):
    width, jump = 1, 1
    for window, stride in stack:
        width, jump = width + (window - 1) * jump, jump * stride
    return width


def test_06_1_accepts_the_patch_width(capsys):
    assert passes("06.1", receptive_field_right)
    assert "16x16" in capsys.readouterr().out


def test_06_1_measurement_agrees_with_hand_counts():
    assert ch06.measured_patch_width([(5, 1)]) == 5
    assert ch06.measured_patch_width([(5, 1), (2, 2), (5, 1), (2, 2)]) == 16
    assert ch06.measured_patch_width([(3, 2), (3, 2)]) == 7


def own_stride_too_early(stack):
    width, jump = 1, 1
    for window, stride in stack:
        jump *= stride
        width += (window - 1) * jump
    return width


@pytest.mark.parametrize("wrong, words", [
    (lambda stack: sum(window for window, _ in stack), "counts the pixels"),
    (lambda stack: math.prod(window for window, _ in stack), "overlap"),
    (lambda stack: 1 + sum(window - 1 for window, _ in stack), "strides compound"),
    (own_stride_too_early, "own stride"),
    (lambda stack: len(stack), "with stride 1 everywhere"),
    (lambda stack: "wide", "whole number"),
])
def test_06_1_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch06.receptive_field, wrong)


def test_06_1_is_not_answered_while_the_placeholder_raises():
    def placeholder(stack):
        raise NotImplementedError("Exercise 06.1 is not answered yet")
    assert verdict("06.1", placeholder).status == "unanswered"


# ---------------------------------------------------------------- 06.2 strided stem
def stem_of(*layer_list):
    import keras

    return keras.Sequential([keras.Input(shape=(28, 28, 1)), *layer_list])


def conv(filters, window, stride=1, padding="same", **options):
    from keras import layers

    return layers.Conv2D(filters, (window, window), strides=stride, padding=padding, **options)


def test_06_2_accepts_stems_of_strided_convolutions(capsys):
    stem = stem_of(conv(16, 3, 2), conv(32, 3, 2))
    assert passes("06.2", (stem, 16 * (9 + 1) + 32 * (9 * 16 + 1)))
    stem = stem_of(conv(8, 2, 2, "valid"), conv(32, 2, 2, "valid", use_bias=False))
    assert passes("06.2", (stem, 8 * 5 + 32 * 4 * 8))
    assert "7x7x32" in capsys.readouterr().out


@pytest.mark.parametrize("make, counted, words", [
    (lambda: stem_of(conv(16, 3, 2, "valid"), conv(32, 3, 2, "valid")), 4800, "smaller than 7x7"),
    (lambda: stem_of(conv(16, 3, 2), conv(32, 3, 1)), 4800, "halves 28 to 14"),
    (lambda: stem_of(conv(16, 3), conv(32, 3)), 4800, "use strides"),
    (lambda: stem_of(conv(16, 3, 2), conv(16, 3, 2)), 2480, "channels"),
    (lambda: stem_of(conv(64, 3, 2), conv(32, 3, 2)), 19104, "over the budget"),
    (lambda: stem_of(conv(32, 4, 4)), 544, "at least two Conv2D"),
    (lambda: stem_of(conv(16, 3), _pool(), conv(32, 3, 2)), 4800, "no pooling"),
    (lambda: stem_of(conv(16, 3, 2), conv(32, 3, 2)), 4800 - 48, "biases are missing"),
    (lambda: stem_of(conv(16, 3, 2), conv(32, 3, 2)), 16 * 10 + 32 * 10, "all the channels"),
    (lambda: stem_of(conv(16, 3, 2), conv(32, 3, 2)), 9999, "more than the model has"),
])
def test_06_2_gives_a_hint_for_typical_mistakes(make, counted, words):
    assert words in hint_for(ch06.strided_stem, (make(), counted))


def _pool():
    from keras import layers

    return layers.MaxPooling2D((2, 2))


def test_06_2_wants_the_pair_and_is_not_answered_while_a_part_is_the_placeholder():
    assert "pair" in hint_for(ch06.strided_stem, stem_of(conv(16, 3, 2), conv(32, 3, 2)))
    assert verdict("06.2", (..., ...)).status == "unanswered"


# ---------------------------------------------------------------- 06.3 max-pooling's gradient
def _pool_backward(kind):
    """06.3 answers: the gradient routed to each block's maximum ("right"), or a usual slip."""
    def max_pool_backward(maps, size, grad_out):
        h, w = grad_out.shape[0] * size, grad_out.shape[1] * size
        spread = np.zeros(maps.shape)
        spread[:h, :w] = np.repeat(np.repeat(grad_out, size, axis=0), size, axis=1)
        if kind == "mean":
            return spread / size**2
        if kind == "all":
            return spread
        blocks = maps[:h, :w].reshape(h // size, size, w // size, size, -1)
        top = np.repeat(np.repeat(blocks.max(axis=(1, 3)), size, axis=0), size, axis=1)
        grad = np.where(maps[:h, :w] == top, spread[:h, :w], 0.0)
        if kind == "leftover":
            return np.pad(grad, [(0, maps.shape[0] - h), (0, maps.shape[1] - w), (0, 0)],
                          constant_values=1.0)
        return np.pad(grad, [(0, maps.shape[0] - h), (0, maps.shape[1] - w), (0, 0)])
    return max_pool_backward


def test_06_3_accepts_the_gradient_routed_to_each_maximum():
    assert passes("06.3", _pool_backward("right"))


@pytest.mark.parametrize("kind, words", [("mean", "AVERAGE pooling"), ("all", "not the largest"),
                                         ("leftover", "no block covers")])
def test_06_3_names_the_usual_mistakes(kind, words):
    assert words in hint_for(ch06.pooling_gradient, _pool_backward(kind))


def test_06_3_hints_at_the_wrong_output_shape():
    assert "shape" in hint_for(ch06.pooling_gradient, lambda maps, size, grad: grad)


# ---------------------------------------------------------------- 06.4 compact CNN
def small_cnn(dense=None, softmax=True, compiled=True, first=None, from_logits=False):
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)), first or layers.Conv2D(4, (5, 5), activation="relu"),
        layers.MaxPooling2D((2, 2)), layers.Flatten(),
        *([layers.Dense(dense, activation="relu")] if dense else []),
        layers.Dense(10, activation="softmax" if softmax else None)])
    if compiled:
        loss = (keras.losses.SparseCategoricalCrossentropy(from_logits=True) if from_logits
                else "sparse_categorical_crossentropy")
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


def run_with_accuracy(model, accuracy, target=0.992, n=200):
    """A validation set on which the (untrained) model has exactly `accuracy`."""
    x_val = np.random.default_rng(1).random((n, 28, 28, 1)).astype(np.float32)
    predicted = np.argmax(model.predict(x_val, verbose=0), axis=1)
    wrong = int(round((1 - accuracy) * n))
    y_val = predicted.copy()
    y_val[:wrong] = (predicted[:wrong] + 1) % 10
    return model, x_val, y_val, target


def test_06_4_accepts_a_cnn_within_the_budget_above_the_bar(capsys):
    assert passes("06.4", run_with_accuracy(small_cnn(), 0.995))
    assert "validation accuracy 0.9950" in capsys.readouterr().out
    assert passes("06.4", run_with_accuracy(small_cnn(), 0.6, target=0.5))


def test_06_4_accepts_logits_with_a_loss_from_logits(capsys):
    model = small_cnn(softmax=False, from_logits=True)
    assert ch06.compact_design_problem(model) is None
    assert passes("06.4", run_with_accuracy(model, 0.995))


def test_06_4_design_problems_name_the_mistake():
    from keras import layers

    assert ch06.compact_design_problem(small_cnn()) is None
    assert "over the budget" in ch06.compact_design_problem(small_cnn(dense=256))
    assert "compile" in ch06.compact_design_problem(small_cnn(compiled=False))
    assert "probabilities" in ch06.compact_design_problem(small_cnn(softmax=False))
    assert "another" in ch06.compact_design_problem(small_cnn(from_logits=True))
    assert "Conv2D" in ch06.compact_design_problem(small_cnn(first=layers.Dense(4)))
    assert "Keras model" in ch06.compact_design_problem("a model")


@pytest.mark.parametrize("accuracy, words", [(0.1, "about chance"), (0.98, "below the bar")])
def test_06_4_gives_a_hint_below_the_bar(accuracy, words):
    assert words in hint_for(ch06.compact_cnn, run_with_accuracy(small_cnn(), accuracy))


def test_06_4_is_not_answered_until_build_is_written():
    assert verdict("06.4", ...).status == "unanswered"
    assert "train_compact" in hint_for(ch06.compact_cnn, small_cnn())


# ---------------------------------------------------------------- no hint gives the answer away
SOLUTION_TEXT = ["1 - h", "p - y", ".T @", "error_out", "ceil(", "beta_1 **", "0.005",
                 ".mean(axis", "jump *=", "(window - 1) * jump", "padding='same', strides=2"]


@pytest.mark.parametrize("exercise, wrong", [
    (ch04.hidden_layer_gradients, lambda *a: gradients(*a, tanh_derivative=False)),
    (ch04.hidden_layer_gradients, lambda *a: gradients(*a, mean=False)),
    (ch04.tuned_on_validation, (TUNING, (0.5, 32))),
    (ch04.adam_by_hand, lambda *a: ch04.adam_reference(*a, corrected=False)),
    (ch06.receptive_field, lambda stack: 1 + sum(window - 1 for window, _ in stack)),
    (ch06.receptive_field, own_stride_too_early),
    (ch06.pooling_gradient, lambda maps, size, grad: maps),
])
def test_no_hint_contains_the_solution(exercise, wrong):
    text = hint_for(exercise, wrong)
    assert not any(piece in text for piece in SOLUTION_TEXT), text
