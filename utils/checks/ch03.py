"""Self-checks for chapter 03 (the first Keras network on MNIST)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from utils.checks import Hint, call, exercise, graded_by_the_judge, require

HELD_BACK = 5000  # the last 5,000 training images: no exercise trains on them, no choice uses them
DEEPER_BUDGET = 300_000  # exercise 03.3: parameters at most
# Exercise 03.1: a parameter budget, and a fixed way to train the learner's model.
BUDGET = 20_000
TARGET = 0.92
RECIPE_IMAGES, RECIPE_EPOCHS, RECIPE_BATCH, RECIPE_SEED = 10_000, 2, 128, 0
# Accuracy by (function, model design): the recipe is seeded, so a second measurement of the
# same design (the grader's, after the notebook's own check) would give the same number.
_MEASURED: dict[tuple[int, str], float] = {}


def _flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), 784).astype("float32") / 255


def held_back() -> tuple[np.ndarray, np.ndarray]:
    """The last HELD_BACK training images (flattened, scaled to [0, 1]) and their labels."""
    from utils.data import load_mnist

    (x_train, y_train), _ = load_mnist(verbose=False)
    return _flat(x_train[-HELD_BACK:]), np.asarray(y_train[-HELD_BACK:])


def held_back_accuracy(model: Any) -> float:
    """The share of the held-back images a model classifies right (a hint if it cannot)."""
    import keras

    images, labels = held_back()
    try:  # one eager forward pass: cheaper than tracing `predict` for a single call
        outputs = keras.ops.convert_to_numpy(model(images, training=False))
    except Exception as error:
        raise Hint(f"running the model on flattened images failed: {type(error).__name__}: "
                   f"{error}") from None
    require(outputs.shape == (len(images), 10),
            f"the model should output 10 probabilities per image, got shape {outputs.shape}")
    return float(np.mean(np.argmax(outputs, axis=1) == labels))


def _activation_names(layers: list[Any]) -> list[str]:
    return [getattr(layer.activation, "__name__", str(layer.activation)) for layer in layers]


def _design(model: Any) -> str:
    """The model's architecture and optimizer settings, without the names Keras numbers."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: strip(item) for key, item in value.items() if key != "name"}
        if isinstance(value, list | tuple):
            return [strip(item) for item in value]
        return value

    return json.dumps([strip(model.get_config()), strip(model.optimizer.get_config()),
                       getattr(model, "loss", None)], default=str, sort_keys=True)


def train_by_the_recipe(small_model: Any) -> tuple[Any, float]:
    """Build a fresh model with `small_model()`, train it the fixed way, measure it.

    Returns (model, accuracy on the held-back images); raises Hint for what is wrong. A design
    already measured for the same function is not trained again: the seeded recipe would give
    the same accuracy.
    """
    import keras

    from utils.data import load_mnist

    keras.utils.set_random_seed(RECIPE_SEED)
    model = call(small_model)
    require(isinstance(model, keras.Model),
            f"small_model() should return a Keras model, got {type(model).__name__}")
    require(len(model.inputs or []) == 1 and tuple(model.inputs[0].shape) == (None, 784),
            "the model should read flattened images: start it with keras.Input(shape=(784,))")
    parameters = model.count_params()
    require(parameters <= BUDGET,
            f"your model has {parameters:,} parameters, over the budget of {BUDGET:,}; count "
            "them layer by layer (section 3) and make the hidden layer narrower")
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    require(bool(dense) and dense[-1].units == 10,
            "the last layer should be Dense with 10 neurons, one per digit")
    require(getattr(model, "optimizer", None) is not None,
            "compile the model (loss, optimizer, metrics) inside small_model()")
    require(int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0,
            "small_model() returned a model that has already been trained: build and compile "
            "a NEW model inside the function each time it is called")
    key = (id(small_model), _design(model))
    if key in _MEASURED:
        return model, _MEASURED[key]
    (x_train, y_train), _ = load_mnist(verbose=False)
    images = _flat(x_train[:RECIPE_IMAGES])
    targets = keras.utils.to_categorical(y_train[:RECIPE_IMAGES], num_classes=10)
    try:
        model.fit(images, targets, epochs=RECIPE_EPOCHS, batch_size=RECIPE_BATCH, verbose=0)
    except Exception as error:
        raise Hint(f"training your model on one-hot labels failed ({type(error).__name__}: "
                   f"{error}); compile it with loss='categorical_crossentropy'") from None
    _MEASURED[key] = held_back_accuracy(model)
    return model, _MEASURED[key]


@exercise("03.1")
def small_network(small_model):
    import keras

    require(not isinstance(small_model, keras.Model),
            "pass the function that builds the model (small_model, without brackets), not a "
            "model: the check builds and trains a fresh one itself")
    if graded_by_the_judge():
        return "the grader trains it by the recipe itself."
    model, accuracy = train_by_the_recipe(small_model)
    if accuracy >= TARGET:
        return (f"{model.count_params():,} parameters, {accuracy:.1%} on the {HELD_BACK:,} "
                "held-back images.")
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    hidden = _activation_names(dense[:-1])
    optimizer = type(model.optimizer).__name__
    advice = []
    if not dense[:-1]:
        advice.append("a hidden layer lets the model combine pixels into strokes")
    if any(name in ("sigmoid", "linear") for name in hidden):
        advice.append(f"your hidden activations are {hidden}: sigmoid saturates and a linear "
                      "layer adds nothing; section 6 found a better one")
    if optimizer == "SGD":
        advice.append("plain SGD learns slowly in two short epochs; section 6 found a better "
                      "optimizer")
    if not advice:
        advice.append("compare a few widths within the budget and two or three learning "
                      "rates on the validation split, and keep the best")
    raise Hint(f"trained the check's way, your model gets {accuracy:.1%} of the held-back "
               f"images right, below {TARGET:.0%}: " + "; ".join(advice))


@exercise("03.2")
def standardisation(standardise):
    rng = np.random.default_rng(5)
    train = rng.integers(0, 256, size=(50, 6, 6)).astype(np.uint8)
    train[:, 0, :] = 0  # a blank border row, as in MNIST
    test = np.clip(rng.normal(160, 40, size=(20, 6, 6)), 0, 255).astype(np.uint8)
    result = call(standardise, train.copy(), test.copy())
    require(isinstance(result, tuple | list) and len(result) == 2,
            "return a pair: (standardised train, standardised test)")
    out_train, out_test = (np.asarray(part) for part in result)
    require(out_train.shape == train.shape and out_test.shape == test.shape,
            f"keep the shapes: got {out_train.shape} and {out_test.shape} for inputs of shapes "
            f"{train.shape} and {test.shape}")
    require(out_train.dtype == np.float32 and out_test.dtype == np.float32,
            f"return float32 arrays (half the memory of float64, and what Keras computes in); "
            f"got {out_train.dtype} and {out_test.dtype}")
    require(np.all(np.isfinite(out_train)) and np.all(np.isfinite(out_test)),
            "your result contains inf or nan: a pixel that is blank in every image has a "
            "standard deviation of 0; use ONE mean and ONE standard deviation over all pixels")
    require(abs(float(out_train.mean())) < 1e-4 and abs(float(out_train.std()) - 1) < 1e-4,
            "the standardised training images should have mean 0 and standard deviation 1 over "
            "all their pixels together")
    own_stats = (test.astype(np.float64) - test.mean()) / test.std()
    require(not np.allclose(out_test, own_stats, atol=1e-4),
            "the test images were standardised with their OWN mean and standard deviation. A "
            "deployed model never sees the whole test set at once: reuse the training statistics")
    require(np.isclose(float(out_test.mean()), (test.mean() - train.mean()) / train.std(),
                       atol=1e-3),
            "the test images must be transformed exactly like the training images, with the "
            "same two numbers")


def _dense_and_dropout(model: Any) -> tuple[list[Any], list[Any]]:
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    dense = [layer for layer in layers if isinstance(layer, keras.layers.Dense)]
    dropout = [layer for layer in layers if isinstance(layer, keras.layers.Dropout)]
    return dense, dropout


@exercise("03.3")
def deeper_network(deeper):
    import keras

    require(isinstance(deeper, keras.Model),
            f"pass the trained Keras model itself, got {type(deeper).__name__}")
    require(deeper.built and len(deeper.inputs or []) == 1,
            "build the model with keras.Input(shape=(784,)) as its first entry")
    require(tuple(deeper.inputs[0].shape) == (None, 784),
            f"the model should read flattened images, input shape (None, 784); got "
            f"{tuple(deeper.inputs[0].shape)}")
    dense, dropout = _dense_and_dropout(deeper)
    require(len(dense) >= 3, f"a deeper network has at least two hidden Dense layers before the "
            f"output layer; found {len(dense)} Dense layer(s) in all")
    hidden, output = dense[:-1], dense[-1]
    names = [getattr(layer.activation, "__name__", str(layer.activation)) for layer in hidden]
    require(all(name not in ("sigmoid", "linear") for name in names),
            f"the hidden activations are {names}: section 6 showed why not sigmoid (and a linear "
            "layer adds no depth); choose another")
    require(output.units == 10 and getattr(output.activation, "__name__", "") == "softmax",
            "the last layer should be 10 neurons with softmax, one probability per digit")
    require(dropout, "the exercise asks for dropout: put a Dropout layer after a hidden layer")
    require(all(0.1 <= layer.rate <= 0.6 for layer in dropout),
            f"dropout rates {[layer.rate for layer in dropout]}: between 0.1 and 0.6, please "
            "(higher silences most of the layer)")
    require(deeper.count_params() <= DEEPER_BUDGET,
            f"{deeper.count_params():,} parameters, over the budget of {DEEPER_BUDGET:,}")
    optimizer = getattr(deeper, "optimizer", None)
    require(optimizer is not None and getattr(deeper, "compiled", True),
            "compile the model (loss, optimizer, metrics) before training it")
    require(type(optimizer).__name__ != "SGD",
            "use an adaptive optimizer such as Adam or RMSprop, not plain SGD")

    accuracy = held_back_accuracy(deeper)
    require(accuracy > 0.8,
            f"the design is allowed, but it gets only {accuracy:.1%} of the {HELD_BACK:,} "
            "held-back images right: train it with fit on X_fit and Y_fit (inputs scaled to "
            "[0, 1])")
    return f"{accuracy:.1%} on the {HELD_BACK:,} held-back images."
