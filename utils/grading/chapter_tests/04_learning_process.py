"""Grading tests for chapter 04 (the learning process), run by `make grade`.

Each test runs in the judge, a process of its own, after all of the submission's cells, and
receives `answers`, the notebook's variables by name, carried over as data
(`utils.grading.judge`). A failed `assert` scores 0 and its message is the feedback: it
names the mistake (the ones learners make) without giving the answer away.
"""

import numpy as np

from utils.grading import graded, passes, trained_alike

# The chapter's MNIST experiments on 2,000 images for one epoch, with fewer learning rates and
# batch sizes, one seed for the large-batch runs (on 4,096 images) and the optimizers, only the
# deepest networks of sigmoid against ReLU, three widths, and a short hand-written loop on fewer
# points. The chapter's claims are about its defaults: at this size they run as notices. 04.1
# trains with train_mlp, so at this size too.
PARAMETERS = {"TRAIN_SAMPLES": 2000, "EPOCHS": 1, "PLAYGROUND_POINTS": 200,
              "BATCH_SIZES": [32, 2048], "LEARNING_RATES": [0.001, 0.1, 3.0],
              "HAND_STEPS": 200, "REPEATS": 1, "LARGE_BATCH_SAMPLES": 4096,
              "DEPTHS": [5], "WIDTHS": [4, 16, 64]}
CELL_TIMEOUT = 120  # seconds; generous, so that a loaded machine changes no status
NOTEBOOK_TIMEOUT = 600
TEST_TIMEOUT = 20


@graded("04.1", points=3)
def learning_rate_and_batch_size_chosen_on_validation(answers):
    results, chosen = answers["tuning_results"], answers["chosen"]
    assert chosen is not Ellipsis and results, (
        "tuning_results is empty or chosen is still `...`: train every combination first")
    passes("04.1", (results, chosen))
    trained_alike(results, "val_accuracy", answers["EPOCHS"], "use train_mlp")


@graded("04.2", points=3)
def hidden_layer_gradients_match_finite_differences(answers):
    from utils.checks import ch04

    gradients = answers["hidden_layer_gradients"]
    for seed, n, hidden in ((7, 5, 2), (2024, 13, 4), (11, 30, 8)):
        params, X, y = ch04.random_network(seed, n, hidden)
        out = gradients(*[p.copy() for p in params], X.copy(), y.copy())
        assert isinstance(out, tuple | list) and len(out) == 4, (
            "return the four gradients (dW1, db1, dW2, db2), in that order")
        got = []
        for name, value, param in zip(("dW1", "db1", "dW2", "db2"), out, params, strict=True):
            value = np.asarray(value, dtype=float)
            if name.startswith("db") and value.size == param.size:
                value = value.reshape(param.shape)
            assert value.shape == param.shape, (
                f"with {n} points and {hidden} hidden neurons, {name} has shape {value.shape}; "
                f"its parameter has shape {param.shape}")
            got.append(value)
        hint = ch04.gradient_mistake(got, ch04.numeric_gradients(params, X, y), n)
        assert hint is None, f"with {n} points and {hidden} hidden neurons: {hint}"


@graded("04.3", points=2)
def adam_steps_follow_adams_path(answers):
    from utils.checks import ch04

    ch04.judge_adam(answers["adam_step"], 31)  # the self-check's verdict, on other bowls

