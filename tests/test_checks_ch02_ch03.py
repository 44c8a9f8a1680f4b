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


# ---------------------------------------------------------------- 02.2 temperature
def temperature_for(z, target, flip=False, steps=100):
    """02.2's answer (bisection on log T); `flip` and few `steps` are usual slips."""
    low, high = np.log(1e-6), np.log(1e6)
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = ((middle, high) if ch02.top_probability(z, np.exp(middle)) > target
                     else (low, middle))
    temperature = float(np.exp((low + high) / 2))
    return 1 / temperature if flip else temperature


def test_02_2_accepts_the_temperature_that_gives_each_target(capsys):
    assert passes("02.2", temperature_for)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda z, target: temperature_for(z, target, flip=True), "upside down"),
    (lambda z, target: temperature_for(z, target, steps=8), "within 1e-6"),
    (lambda z, target: -1.0, "positive number"),
    (lambda z, target: [1.0, 2.0], "one number"),
])
def test_02_2_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch02.temperature, wrong)


# ---------------------------------------------------------------- 02.3 vector-Jacobian product
def _vjp(z, v, sign=-1.0, second_term=True):
    p = _softmax(np.asarray(z, dtype=float)[None, :])[0]
    return p * v + sign * p * (p @ v) * second_term


def _vjp_through_the_jacobian(z, v):
    p = _softmax(np.asarray(z, dtype=float)[None, :])[0]
    return (np.diag(p) - np.outer(p, p)).T @ v


def test_02_3_accepts_the_product_without_the_matrix(capsys):
    assert passes("02.3", _vjp)
    assert "without the 200,000x200,000 matrix" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda z, v: _vjp(z, v, second_term=False), "diagonal of J only"),
    (lambda z, v: _vjp(z, v, sign=1.0), "wrong sign"),
    (_vjp_through_the_jacobian, "ran out of memory"),
    (lambda z, v: (lambda p: p * v - p * (p @ v))(np.exp(z) / np.exp(z).sum()), "inf or nan"),
    (lambda z, v: _vjp(z, v)[:-1], "one number per score"),
])
def test_02_3_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch02.vector_jacobian_product, wrong)


# ---------------------------------------------------------------- 02.4 decisive pixels
def _shares(x, W, winner, rival):
    return x * (W[:, winner] - W[:, rival])


def test_02_4_accepts_the_largest_shares_of_the_margin_written_either_way(capsys):
    assert passes("02.4", lambda x, W, w, r, k: np.argsort(_shares(x, W, w, r))[::-1][:k])
    assert "Exercise 02.4: correct" in capsys.readouterr().out
    assert passes("02.4", lambda x, W, w, r, k: sorted(  # a plain Python list
        range(len(x)), key=lambda i: -x[i] * (W[i, w] - W[i, r]))[:k])


@pytest.mark.parametrize("wrong, words", [
    (lambda x, W, w, r, k: np.argsort(_shares(x, W, w, r))[:k], "count for the RIVAL"),
    (lambda x, W, w, r, k: np.argsort(x * W[:, w])[::-1][:k], "winner's map alone"),
    (lambda x, W, w, r, k: np.argsort(W[:, w] - W[:, r])[::-1][:k], "no ink"),
    (lambda x, W, w, r, k: np.argsort(np.abs(_shares(x, W, w, r)))[::-1][:k], "largest in size"),
    (lambda x, W, w, r, k: np.argsort(_shares(x, W, w, r))[-k:], "largest first"),
    (lambda x, W, w, r, k: np.sort(_shares(x, W, w, r))[::-1][:k], "integer indices"),
    (lambda x, W, w, r, k: np.unravel_index(np.argsort(_shares(x, W, w, r))[::-1][:k], (28, 28)),
     "1-D array"),
])
def test_02_4_gives_a_hint_for_typical_mistakes(wrong, words):
    assert words in hint_for(ch02.decisive_pixels_check, wrong)


def test_02_hints_never_contain_solution_code():
    wrong_answers = [
        (ch02.stable_log_softmax, lambda Z: np.log(_softmax(Z))),
        (ch02.stable_log_softmax, lambda Z: Z - Z.max(axis=1, keepdims=True)),
        (ch02.temperature, lambda z, target: temperature_for(z, target, steps=8)),
        (ch02.vector_jacobian_product, lambda z, v: _vjp(z, v, second_term=False)),
        (ch02.decisive_pixels_check, lambda x, W, w, r, k: np.argsort(x * W[:, w])[::-1][:k]),
    ]
    for exercise, wrong in wrong_answers:
        hint = hint_for(exercise, wrong)
        for fragment in ("np.", "outer", "diag(", "arange", "logsumexp", "- np.log(", "p_i("):
            assert fragment not in hint, (exercise.__name__, fragment, hint)


# ---------------------------------------------------------------- MNIST stand-in for 03.1, 03.3
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
    """A stand-in for MNIST: enough training images for the recipe and the held-back set."""
    train = _fake_mnist(ch03.RECIPE_IMAGES + ch03.HELD_BACK, 0)
    test = _fake_mnist(100, 1)
    monkeypatch.setattr("utils.data.load_mnist", lambda *args, **kwargs: (train, test))
    monkeypatch.setattr(ch03, "_MEASURED", {})
    monkeypatch.setattr(ch03, "RECIPE_IMAGES", 2000)  # the stand-in is learnt in a few steps
    return train


# ---------------------------------------------------------------- 03.1 small network
def _builder(units=24, activation="relu", optimizer="adam", learning_rate=1e-2, loss=None,
             input_shape=(784,), outputs=10, compile_it=True, extra_hidden=0):
    keras = pytest.importorskip("keras")

    def small_model():
        layers = [keras.Input(shape=input_shape)]
        if len(input_shape) > 1:
            layers.append(keras.layers.Flatten())
        for _ in range(1 + extra_hidden):
            layers.append(keras.layers.Dense(units, activation=activation))
        layers.append(keras.layers.Dense(outputs, activation="softmax"))
        model = keras.Sequential(layers)
        if compile_it:
            chosen = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[optimizer]
            model.compile(loss=loss or "categorical_crossentropy", metrics=["accuracy"],
                          optimizer=chosen(learning_rate=learning_rate))
        return model

    return small_model


def test_03_1_accepts_a_small_model_that_reaches_the_target(fake_mnist, capsys):
    assert passes("03.1", _builder())
    out = capsys.readouterr().out
    assert "correct" in out and "held-back" in out


def test_03_1_the_budget_leaves_room_for_a_hidden_layer_of_25_neurons():
    assert 795 * 25 + 10 <= ch03.BUDGET < 795 * 26 + 10


@pytest.mark.parametrize("kwargs, words", [
    ({"units": 64}, "over the budget"),
    ({"units": 25, "extra_hidden": 1}, "over the budget"),
    ({"input_shape": (28, 28)}, "flattened images"),
    ({"outputs": 5}, "10 neurons"),
    ({"compile_it": False}, "compile the model"),
    ({"loss": "sparse_categorical_crossentropy"}, "categorical_crossentropy"),
    ({"activation": "sigmoid", "optimizer": "sgd", "learning_rate": 1e-4}, "sigmoid saturates"),
    ({"optimizer": "sgd", "learning_rate": 1e-5}, "plain SGD"),
    ({"learning_rate": 1e-7}, "learning rates on the validation split"),
])
def test_03_1_gives_a_hint_for_typical_mistakes(fake_mnist, kwargs, words):
    assert words in hint_for(ch03.small_network, _builder(**kwargs))


def test_03_1_gives_a_hint_for_a_model_instead_of_a_function(fake_mnist):
    assert "without brackets" in hint_for(ch03.small_network, _builder()())


def test_03_1_gives_a_hint_for_a_function_that_returns_a_trained_model(fake_mnist):
    keras = pytest.importorskip("keras")
    model = _builder()()
    model.fit(np.zeros((8, 784), "float32"), keras.utils.to_categorical(np.arange(8), 10),
              verbose=0)
    assert "NEW model" in hint_for(ch03.small_network, lambda: model)


def test_03_1_gives_a_hint_for_a_function_that_crashes(fake_mnist):
    def small_model():
        raise ValueError("no such layer")

    assert "ValueError" in hint_for(ch03.small_network, small_model)


def test_03_1_hints_do_not_name_the_choices_that_work(fake_mnist):
    for kwargs in ({"activation": "sigmoid", "optimizer": "sgd", "learning_rate": 1e-4},
                   {"learning_rate": 1e-7}, {"units": 64}):
        hint = hint_for(ch03.small_network, _builder(**kwargs)).lower()
        for word in ("relu", "adam", "rmsprop", "0.01", "1e-2", "0.003", "24 "):
            assert word not in hint, (kwargs, word, hint)


def test_03_1_measures_a_design_once_and_reuses_the_seeded_result(fake_mnist, monkeypatch):
    small_model = _builder()
    _, first = ch03.train_by_the_recipe(small_model)

    def no_data(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr("utils.data.load_mnist", no_data)
    _, again = ch03.train_by_the_recipe(small_model)
    assert again == first >= ch03.TARGET


def test_03_1_a_different_design_is_measured_afresh(fake_mnist):
    _, good = ch03.train_by_the_recipe(_builder())
    _, poor = ch03.train_by_the_recipe(_builder(learning_rate=1e-7))
    assert poor < ch03.TARGET <= good


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

    x, y = train[0][:3000], train[1][:3000]
    model.fit(x.reshape(len(x), 784).astype("float32") / 255,
              keras.utils.to_categorical(y, 10), epochs=3, batch_size=128, verbose=0)
    return model


def test_03_3_accepts_a_trained_two_layer_network_with_dropout(fake_mnist, capsys):
    assert passes("03.3", _trained(_deeper(), fake_mnist))
    assert "correct" in capsys.readouterr().out


def test_03_3_accepts_another_design_within_the_budget(fake_mnist):
    assert passes("03.3", _trained(_deeper(units=128, hidden=3, dropout=(0.2,),
                                           activation="gelu", optimizer="rmsprop"), fake_mnist))


@pytest.mark.parametrize("kwargs, words", [
    ({"hidden": 1, "dropout": (0.3,)}, "two hidden Dense"),
    ({"activation": "sigmoid"}, "not sigmoid"),
    ({"units": 512}, "over the budget of 300,000"),
    ({"dropout": ()}, "asks for dropout"),
    ({"dropout": (0.9, 0.9)}, "between 0.1 and 0.6"),
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


# ---------------------------------------------------------------- chapter 03's grading tests
def _graded(name, namespace):
    from utils import grading

    path, = grading.DEFAULT_TESTS.glob("03_*.py")
    return getattr(grading.load_module(path), name)(grading.Answers(namespace))


def _feedback(name, namespace):
    with pytest.raises(AssertionError) as failed:
        _graded(name, namespace)
    return str(failed.value)


def test_03_grading_accepts_the_right_answers(fake_mnist):
    _graded("small_model_within_budget_reaches_the_target", {"small_model": _builder()})
    _graded("standardise_uses_the_training_statistics", {"standardise": _standardise})
    _graded("deeper_network_is_built_and_trained", {"deeper": _trained(_deeper(), fake_mnist)})


@pytest.mark.parametrize("namespace, words", [
    ({"small_model": _builder(units=64)}, "over the budget"),
    ({"small_model": _builder(learning_rate=1e-7)}, "below 92%"),
    ({"small_model": _builder(compile_it=False)}, "compile the model"),
])
def test_03_1_grading_names_the_mistakes(fake_mnist, namespace, words):
    assert words in _feedback("small_model_within_budget_reaches_the_target", namespace)


def test_03_1_grading_feedback_for_a_model_instead_of_a_function(fake_mnist):
    feedback = _feedback("small_model_within_budget_reaches_the_target",
                         {"small_model": _builder()()})
    assert "not a model" in feedback


def test_03_1_grading_reports_an_unanswered_exercise_as_such(fake_mnist):
    def small_model():
        raise NotImplementedError("Exercise 03.1 is not answered yet")

    from utils.checks import NotAnswered
    from utils.grading.api import describe_failure

    with pytest.raises(NotAnswered) as raised:
        _graded("small_model_within_budget_reaches_the_target", {"small_model": small_model})
    assert describe_failure(raised.value, 60).startswith("not answered yet")


@pytest.mark.parametrize("wrong, words", [
    (_own_statistics, "their own statistics"),
    (_per_pixel, "ONE mean"),
    (lambda a, b: _standardise(a, b)[0], "a pair"),
])
def test_03_2_grading_names_the_mistakes(wrong, words):
    assert words in _feedback("standardise_uses_the_training_statistics", {"standardise": wrong})


def test_03_3_grading_names_an_untrained_model(fake_mnist):
    assert "train it with fit" in _feedback("deeper_network_is_built_and_trained",
                                           {"deeper": _deeper()})
