"""Tests for the self-checks of chapters 02 and 03: right answers pass, wrong ones get a hint
that does not give the answer away."""

from __future__ import annotations

import numpy as np
import pytest

from utils.checks import Hint, ch02, ch03, verdict


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


def _softmax(Z):
    shifted = Z - Z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- 02.1 log-softmax
def _log_softmax(Z):
    shifted = Z - Z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def test_02_1_accepts_a_stable_log_softmax(capsys):
    assert passes("02.1", _log_softmax)
    assert "correct" in capsys.readouterr().out


def test_02_1_accepts_scipy_style_logsumexp_written_differently():
    def via_logsumexp(Z):
        m = Z.max(axis=1, keepdims=True)
        return Z - (m + np.log(np.sum(np.exp(Z - m), axis=1, keepdims=True)))

    assert ch02.stable_log_softmax(via_logsumexp) is None


@pytest.mark.parametrize("wrong, words", [
    (lambda Z: np.log(_softmax(Z)), "+-1000"),
    (lambda Z: Z - np.log(np.exp(Z).sum(axis=1, keepdims=True)), "+-1000"),
    (lambda Z: Z - Z.max(axis=0, keepdims=True)
     - np.log(np.exp(Z - Z.max(axis=0, keepdims=True)).sum(axis=0, keepdims=True)), "axis 1"),
    (lambda Z: _softmax(Z), "never positive"),
    (lambda Z: _log_softmax(Z)[0], "same shape"),
    (lambda Z: np.maximum(_log_softmax(Z), -50.0), "clipped"),
    (lambda Z: Z - Z.max(axis=1, keepdims=True), "summing to 1"),
    ("log_softmax", "expected a function"),
])
def test_02_1_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch02.stable_log_softmax, wrong)


# ---------------------------------------------------------------- 02.2 sparse cross-entropy
def test_02_2_accepts_the_mean_of_minus_log_of_the_true_class(capsys):
    assert passes("02.2", lambda P, y: -np.mean(np.log(P[np.arange(len(y)), y])))
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda P, y: np.mean(np.log(P[np.arange(len(y)), y])), "sign"),
    (lambda P, y: -np.sum(np.log(P[np.arange(len(y)), y])), "SUM"),
    (lambda P, y: -np.mean(np.sum(np.log(P), axis=1)), "TRUE class"),
    (lambda P, y: -np.log(P[np.arange(8), y]).mean(), "batch of 1"),
    (lambda P, y: -np.mean(np.log(P[:, 0])), "own label"),
    (lambda P, y: -np.log(P[np.arange(len(y)), y]), "one number"),
])
def test_02_2_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch02.sparse_categorical_cross_entropy, wrong)


# ---------------------------------------------------------------- 02.3 softmax Jacobian
def _jacobian(z):
    p = _softmax(np.asarray(z, dtype=float)[None, :])[0]
    return np.diag(p) - np.outer(p, p)


def test_02_3_accepts_the_softmax_jacobian(capsys):
    assert passes("02.3", _jacobian)
    assert "correct" in capsys.readouterr().out


def _naive_jacobian(z):
    e = np.exp(z)
    p = e / e.sum()
    return np.diag(p) - np.outer(p, p)


@pytest.mark.parametrize("wrong, words", [
    (lambda z: np.diag(_softmax(z[None])[0]), "sum to 0"),
    (lambda z: -_jacobian(z), "diagonal is positive"),
    (lambda z: _jacobian(z)[0], "matrix"),
    (lambda z: np.outer(_softmax(z[None])[0], _softmax(z[None])[0]), "sum to 0"),
    (lambda z: 2 * _jacobian(z), "finite difference"),
    (_naive_jacobian, "stable softmax"),
])
def test_02_3_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch02.softmax_jacobian_check, wrong)


def test_02_hints_never_contain_solution_code():
    wrong_answers = [
        (ch02.stable_log_softmax, lambda Z: np.log(_softmax(Z))),
        (ch02.stable_log_softmax, lambda Z: Z - Z.max(axis=1, keepdims=True)),
        (ch02.sparse_categorical_cross_entropy, lambda P, y: -np.mean(np.log(P[:, 0]))),
        (ch02.softmax_jacobian_check, lambda z: 2 * _jacobian(z)),
    ]
    for exercise, wrong in wrong_answers:
        hint = hint_for(exercise, wrong)
        for fragment in ("np.", "outer", "diag(", "arange", "logsumexp", "- np.log(", "p_i("):
            assert fragment not in hint, (exercise.__name__, fragment, hint)


# ---------------------------------------------------------------- 03.1 parameter count
def test_03_1_accepts_the_layer_by_layer_count(capsys):
    def count(sizes):
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))

    assert passes("03.1", count)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda s: sum(a * b for a, b in zip(s[:-1], s[1:], strict=False)), "only the weights"),
    (lambda s: sum(a * b + a for a, b in zip(s[:-1], s[1:], strict=False)), "each INPUT"),
    (lambda s: sum(a * b + b for a, b in zip(s[:-1], s[1:], strict=False)) + s[0], "input is data"),
    (lambda s: s[0] * s[1] + s[1], "not right"),
    (lambda s: float(sum(a * b + b for a, b in zip(s[:-1], s[1:], strict=False))), "whole number"),
    (lambda s: s[5], "IndexError"),
    (7960, "expected a function"),
])
def test_03_1_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch03.parameter_count, wrong)


def test_03_1_hints_do_not_reveal_the_expected_counts():
    hint = hint_for(ch03.parameter_count, lambda s: 1)
    for expected in ("7,960", "7960", "407,050", "407050", "269,322", "269322"):
        assert expected not in hint


# ---------------------------------------------------------------- 03.2 standardisation
def _standardise(train, test):
    train = np.asarray(train, dtype=np.float32)
    mean, std = train.mean(), train.std()
    return (train - mean) / std, (np.asarray(test, dtype=np.float32) - mean) / std


def test_03_2_accepts_training_statistics_applied_to_both(capsys):
    assert passes("03.2", _standardise)
    assert "correct" in capsys.readouterr().out


def _own_statistics(train, test):
    train, test = train.astype(np.float32), test.astype(np.float32)
    return (train - train.mean()) / train.std(), (test - test.mean()) / test.std()


def _per_pixel(train, test):
    train, test = train.astype(np.float32), test.astype(np.float32)
    mean, std = train.mean(axis=0), train.std(axis=0)
    with np.errstate(all="ignore"):
        return (train - mean) / std, (test - mean) / std


@pytest.mark.parametrize("wrong, words", [
    (_own_statistics, "OWN mean"),
    (_per_pixel, "ONE mean"),
    (lambda a, b: (a.astype(np.float32) / 255, b.astype(np.float32) / 255), "mean 0"),
    (lambda a, b: tuple(x.astype(np.float64) for x in _standardise(a, b)), "float32"),
    (lambda a, b: _standardise(a, b)[0], "pair"),
    (lambda a, b: tuple(x.reshape(len(x), -1) for x in _standardise(a, b)), "keep the shapes"),
    (lambda a, b: (_standardise(a, b)[0], _standardise(a, b)[1] + np.float32(0.5)),
     "same two numbers"),
])
def test_03_2_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch03.standardisation, wrong)


# ---------------------------------------------------------------- 03.3 deeper network

def _fake_mnist(count, seed):
    """Images whose class is the row band that is lit: learnable in a few steps, no download."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count).astype(np.uint8)
    images = rng.integers(0, 40, size=(count, 28, 28)).astype(np.uint8)
    for index, label in enumerate(labels):
        images[index, 4 + 2 * label:6 + 2 * label, 4:24] = 255
    return images, labels


@pytest.fixture
def fake_mnist(monkeypatch):
    train, test = _fake_mnist(3000, 0), _fake_mnist(ch03.CHECK_IMAGES, 1)
    monkeypatch.setattr("utils.data.load_mnist", lambda *args, **kwargs: (train, test))
    return train


def _deeper(activation="relu", units=256, dropout=(0.3, 0.3), optimizer="adam", hidden=2):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    layers = [keras.Input(shape=(784,))]
    for index in range(hidden):
        layers.append(keras.layers.Dense(units, activation=activation))
        if index < len(dropout):
            layers.append(keras.layers.Dropout(dropout[index]))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    if optimizer:
        model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    return model


def _trained(model, train):
    import keras

    x, y = train
    model.fit(x.reshape(len(x), 784).astype("float32") / 255,
              keras.utils.to_categorical(y, 10), epochs=3, batch_size=128, verbose=0)
    return model


def test_03_3_accepts_a_trained_two_layer_network_with_dropout(fake_mnist, capsys):
    assert passes("03.3", _trained(_deeper(), fake_mnist))
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, words", [
    ({"hidden": 1, "dropout": (0.3,)}, "two hidden Dense"),
    ({"activation": "sigmoid"}, "other than sigmoid"),
    ({"units": 128}, "256 neurons"),
    ({"dropout": ()}, "Dropout layer after each"),
    ({"dropout": (0.9, 0.9)}, "between 0.2 and 0.5"),
    ({"optimizer": "sgd"}, "adaptive optimizer"),
    ({"optimizer": None}, "compile the model"),
])
def test_03_3_gives_a_hint_for_a_wrong_architecture(kwargs, words):
    assert words in hint_for(ch03.deeper_network, _deeper(**kwargs))


def test_03_3_gives_a_hint_for_an_untrained_model(fake_mnist):
    hint = hint_for(ch03.deeper_network, _deeper())
    assert "train it" in hint
    assert "269,322" not in hint and "269322" not in hint


def test_03_3_gives_a_hint_for_something_that_is_not_a_model():
    assert "Keras model" in hint_for(ch03.deeper_network, [1, 2, 3])
