"""Grading tests for chapter 04 (the learning process), run by `make grade`.

Each test runs in the submission's kernel after all of its cells and receives `answers`, the
notebook's variables by name. A failed `assert` scores 0 and its message is the feedback: it
names the mistake (the ones learners make) without giving the answer away.
"""

import math

import numpy as np

from utils.grading import graded

# The chapter's MNIST experiments on 2,000 images for one epoch, with fewer learning rates and
# batch sizes, and small playgrounds on two of the four data sets: the chapter then asserts only
# what that size can show. Exercise 04.4 trains with the chapter's own train_playground, so its
# network gets PLAYGROUND_STEPS steps too: 1,000 are plenty for the quadrants.
PARAMETERS = {"TRAIN_SAMPLES": 2000, "EPOCHS": 1, "PLAYGROUND_POINTS": 200,
              "PLAYGROUND_STEPS": 1000, "BATCH_SIZES": [32, 2048],
              "LEARNING_RATES": [0.001, 0.1, 3.0], "PLAYGROUND_DATASETS": ["blobs", "circles"]}
CELL_TIMEOUT = 120  # seconds; generous, so that a loaded machine changes no status
NOTEBOOK_TIMEOUT = 600
TEST_TIMEOUT = 20


def _diverges(a, rate, steps=400):
    w = 1.0
    for _ in range(steps):
        w -= rate * a * w
    return abs(w) > 1.0


@graded("04.1", points=2)
def largest_stable_rate_is_the_edge_of_divergence(answers):
    largest_stable_rate = answers["largest_stable_rate"]
    for a in (0.25, 3.0, 50.0, 4096.0):
        rate = float(largest_stable_rate(a))
        assert rate > 0, f"largest_stable_rate({a}) = {rate}: a learning rate is positive"
        assert not math.isclose(rate * a, 1.0, rel_tol=1e-6), (
            "that rate reaches the minimum in one step: the best rate, not the largest stable "
            "one")
        assert not _diverges(a, rate * 0.995) and _diverges(a, rate * 1.005), (
            f"for a = {a}, gradient descent does not change from converging to diverging at "
            "your rate")


@graded("04.2", points=1)
def updates_per_epoch_counts_the_last_smaller_batch(answers):
    updates_per_epoch = answers["updates_per_epoch"]
    for n, batch in ((50_000, 128), (1000, 1000), (999, 1000), (1001, 1000), (5, 2)):
        got = updates_per_epoch(n, batch)
        assert float(got) == math.ceil(n / batch), (
            f"updates_per_epoch({n}, {batch}) = {got}"
            + (": the last, smaller batch makes an update too" if float(got) == n // batch
               else ""))


@graded("04.3", points=2)
def schedule_divides_by_ten_in_steps_of_1000(answers):
    schedule = answers["my_schedule"]
    steps = [0, 250, 998, 1002, 1700, 2002, 2999, 3002, 4500]
    rates = np.array([float(schedule(step)) for step in steps])
    expected = np.array([0.05, 0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005, 0.00005, 0.000005])
    assert np.isclose(rates[0], 0.05, rtol=1e-4), f"the rate at step 0 is {rates[0]:.4g}"
    assert np.allclose(rates[:3], 0.05, rtol=1e-4), (
        "the rate changes before step 1,000: a smooth decay, where a staircase was asked for")
    assert np.allclose(rates, expected, rtol=1e-4), (
        "the rate should be divided by 10 at every multiple of 1,000 steps, and stay constant "
        "in between")


@graded("04.4", points=3)
def quadrant_network_is_small_and_accurate(answers):
    from utils import playground

    model = answers["quadrant_model"]
    dense = [layer for layer in model.layers if hasattr(layer, "units")]
    assert len(dense) >= 2, "the model needs a hidden layer: one neuron draws one line"
    hidden = sum(int(layer.units) for layer in dense[:-1])
    assert hidden <= 12, f"{hidden} hidden neurons; the limit is 12"
    X, y = playground.make_dataset("quadrants", n=3000, noise=0.05, seed=4_404)
    score = playground.accuracy(model, X, y)
    assert score >= 0.95, (
        f"{score:.3f} on fresh quadrant points, below 0.95 (under the grader, "
        "train_playground takes 1,000 steps: enough for a well-chosen network)")
