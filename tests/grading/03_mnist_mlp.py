"""Grading tests for chapter 03 (the first neural network on MNIST), run by `make grade`.

Each test runs in the submission's kernel after all of its cells and receives `answers`, the
notebook's variables by name. A failed `assert` scores 0 and its message is the feedback.
"""

import numpy as np

from utils.grading import graded

# The chapter's experiments on 6,000 images for one epoch each (the chapter then asserts only
# what that size can show), and one epoch for the exercise's network.
PARAMETERS = {"TRAIN_SAMPLES": 6000, "EXPERIMENT_EPOCHS": 1, "EPOCHS": 1}
CELL_TIMEOUT = 120  # seconds; generous, so that a loaded machine changes no status
NOTEBOOK_TIMEOUT = 480
TEST_TIMEOUT = 30


@graded("03.1", points=2)
def parameter_count_of_dense_stacks(answers):
    count = answers["dense_parameter_count"]
    for sizes, expected in [([784, 10, 10], 7960), ([784, 512, 10], 407050), ([3, 1], 4),
                            ([10, 20, 30, 5], 1005)]:
        got = count(list(sizes))
        assert got == expected, (
            f"dense_parameter_count({sizes}) gave {got}; each layer has one weight per input and "
            "neuron, plus one bias per neuron")


@graded("03.2", points=2)
def standardise_uses_the_training_statistics(answers):
    standardise = answers["standardise"]
    rng = np.random.default_rng(3)
    train = rng.integers(0, 256, size=(50, 28, 28)).astype(np.uint8)
    test = rng.integers(100, 256, size=(20, 28, 28)).astype(np.uint8)
    new_train, new_test = standardise(train, test)
    new_train, new_test = np.asarray(new_train), np.asarray(new_test)
    assert new_train.shape == train.shape and new_test.shape == test.shape, "keep the shapes"
    assert new_train.dtype == np.float32 and new_test.dtype == np.float32, "return float32"
    assert abs(float(new_train.mean())) < 1e-3 and abs(float(new_train.std()) - 1) < 1e-3, (
        "the standardised training images should have mean 0 and standard deviation 1")
    assert float(new_test.mean()) > 0.3, (
        "the test images were standardised with their own statistics; use the training ones")


@graded("03.3", points=3)
def deeper_network_is_built_and_trained(answers):
    import keras

    deeper = answers["deeper"]
    dense = [layer for layer in deeper.layers if isinstance(layer, keras.layers.Dense)]
    dropout = [layer for layer in deeper.layers if isinstance(layer, keras.layers.Dropout)]
    assert [layer.units for layer in dense] == [256, 256, 10], (
        "expected two hidden Dense layers of 256 neurons and a 10-neuron output")
    assert len(dropout) == 2, "expected a Dropout layer after each hidden layer"
    assert deeper.count_params() == 269322, "the parameter count does not match the design"
    x_test, y_test = answers["X_test"][:2000], answers["y_test"][:2000]
    accuracy = float(np.mean(np.argmax(deeper.predict(x_test, verbose=0), axis=1) == y_test))
    assert accuracy > 0.9, f"after training, test accuracy is {accuracy:.2f}; expected > 0.9"
