"""Self-checks for chapter 03 (the first Keras network on MNIST)."""

from __future__ import annotations

from typing import Any

import numpy as np

from utils.checks import Hint, call, exercise, require

CHECK_IMAGES = 2000  # test images the trained model of exercise 03.3 is evaluated on
HIDDEN_UNITS = 256


def _reference_count(sizes: list[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


@exercise("03.1")
def parameter_count(dense_parameter_count):
    cases = [[784, 10, 10], [784, 512, 10], [784, 256, 256, 10], [3, 1], [20, 7, 5, 3, 2]]
    for sizes in cases:
        try:
            answer = call(dense_parameter_count, list(sizes))
        except Hint as hint:
            raise Hint(f"for {sizes} {hint}") from None
        require(isinstance(answer, int | np.integer) and not isinstance(answer, bool),
                f"return a whole number (int), got {type(answer).__name__} for {sizes}")
        answer = int(answer)
        expected = _reference_count(sizes)
        if answer == expected:
            continue
        weights_only = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
        require(answer != weights_only,
                f"for {sizes} you count only the weights: every neuron also has a bias")
        require(answer != expected + sizes[0],
                f"for {sizes} you give the input biases too, but the input is data, not a layer "
                "of neurons")
        biases_per_input = weights_only + sum(sizes[:-1])
        require(answer != biases_per_input,
                f"for {sizes} you give a bias to each INPUT of a layer; a bias belongs to each "
                "neuron, that is to each output")
        raise Hint(f"for {sizes} your count is {answer:,}, which is not right; each layer has one "
                   "weight per (input, neuron) pair plus one bias per neuron, and the layers "
                   "follow one another")


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
    require(len(dense) == 3, f"expected two hidden Dense layers and one output Dense layer, "
            f"found {len(dense)} Dense layer(s)")
    hidden, output = dense[:2], dense[2]
    require(all(layer.units == HIDDEN_UNITS for layer in hidden),
            f"each hidden layer should have {HIDDEN_UNITS} neurons, got "
            f"{[layer.units for layer in hidden]}")
    names = [getattr(layer.activation, "__name__", str(layer.activation)) for layer in hidden]
    require(all(name not in ("sigmoid", "linear") for name in names),
            f"the hidden activations are {names}: choose a non-linear activation other than "
            "sigmoid")
    require(output.units == 10 and getattr(output.activation, "__name__", "") == "softmax",
            "the last layer should be 10 neurons with softmax, one probability per digit")
    require(len(dropout) >= 2, f"put a Dropout layer after each hidden layer; found "
            f"{len(dropout)}")
    require(all(0.1 <= layer.rate <= 0.6 for layer in dropout),
            f"dropout rates {[layer.rate for layer in dropout]}: keep them between 0.2 and 0.5 "
            "(0.1 to 0.6 accepted)")
    order = [type(layer).__name__ for layer in deeper.layers
             if isinstance(layer, keras.layers.Dense | keras.layers.Dropout)]
    require(order[:4] == ["Dense", "Dropout", "Dense", "Dropout"],
            f"layer order {order}: each Dropout should follow a hidden Dense layer")
    optimizer = getattr(deeper, "optimizer", None)
    require(optimizer is not None and getattr(deeper, "compiled", True),
            "compile the model (loss, optimizer, metrics) before training it")
    require(type(optimizer).__name__ != "SGD",
            "use an adaptive optimizer such as Adam or RMSprop, not plain SGD")
    require(deeper.count_params() == _reference_count([784, HIDDEN_UNITS, HIDDEN_UNITS, 10]),
            f"the parameter count {deeper.count_params():,} does not match the architecture "
            "asked for")

    from utils.data import load_mnist

    (_, _), (x_test, y_test) = load_mnist(verbose=False)
    images = x_test[:CHECK_IMAGES].reshape(CHECK_IMAGES, 784).astype("float32") / 255
    probabilities = np.asarray(deeper.predict(images, verbose=0))
    require(probabilities.shape == (CHECK_IMAGES, 10),
            f"the model should output 10 probabilities per image, got {probabilities.shape}")
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == y_test[:CHECK_IMAGES]))
    require(accuracy > 0.9,
            f"the architecture is right, but it gets only {accuracy:.1%} of {CHECK_IMAGES:,} test "
            "images right: train it with fit on X_train and Y_train (inputs scaled to [0, 1])")
    return f"{accuracy:.1%} on the first {CHECK_IMAGES:,} test images."
