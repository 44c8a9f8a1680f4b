"""Self-checks for chapter 04 (the learning process)."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from utils.checks import Hint, exercise, require
from utils.checks import call as _call


def _number(value, what):
    require(isinstance(value, Real | np.number) and not isinstance(value, bool),
            f"{what} should be a number, got {type(value).__name__}")
    require(math.isfinite(float(value)), f"{what} should be finite, got {value!r}")
    return float(value)


def _diverges(a: float, rate: float, steps: int = 200) -> bool:
    w = 1.0
    for _ in range(steps):
        w -= rate * a * w
    return abs(w) > 1.0


@exercise("04.1")
def largest_stable_rate(function):
    for a in (0.5, 2.0, 20.0, 1000.0):
        rate = _number(_call(function, a), f"largest_stable_rate({a})")
        require(rate > 0, "a learning rate is positive")
        require(not np.isclose(rate * a, 1.0),
                "that rate lands on the minimum in one step, the best rate, not the largest "
                "stable one: a bigger rate overshoots, yet still converges while |1 - rate*a| < 1")
        require(not _diverges(a, rate * 0.99),
                f"for a = {a}, gradient descent already diverges just below your rate: it is "
                "too large")
        require(_diverges(a, rate * 1.01),
                f"for a = {a}, gradient descent still converges just above your rate: the "
                "boundary is further out (how negative may the factor 1 - rate*a become?)")
        require(not _diverges(a, rate * 0.999) and _diverges(a, rate * 1.001, steps=20_000),
                "close, but not exact: find the rate at which the factor (1 - rate*a) stops "
                "shrinking w in size")


@exercise("04.2")
def updates_per_epoch(function):
    for n, batch in ((60_000, 100), (12_000, 32), (100, 100), (7, 10)):
        out = _call(function, n, batch)
        require(isinstance(out, int | np.integer) and not isinstance(out, bool)
                or (isinstance(out, float) and out.is_integer()),
                f"the number of updates is a whole number, got {out!r}")
        require(int(out) == math.ceil(n / batch),
                f"wrong for {n} samples in batches of {batch}"
                + (": the last, smaller batch also makes an update" if int(out) == n // batch
                   else (": one update per batch, not per sample" if int(out) == n else "")))
    require(int(_call(function, 60_001, 100)) == 601,
            "60,001 samples in batches of 100: the last batch holds one sample and still counts")


def _rates(schedule, steps):
    require(callable(schedule), "pass a Keras schedule object (it is called with the step number)")
    try:
        return np.array([float(schedule(step)) for step in steps])
    except Exception as error:
        raise Hint(f"calling your schedule raised {type(error).__name__}: {error}") from None


@exercise("04.3")
def step_schedule(schedule):
    # steps exactly on a boundary are skipped: schedules disagree on which side they belong to
    steps = [0, 1, 500, 999, 1001, 1500, 1999, 2001, 2500, 3001]
    rates = _rates(schedule, steps)
    require(np.isclose(rates[0], 0.05, rtol=1e-4), f"the rate at step 0 should be 0.05, "
            f"got {rates[0]:.4g}")
    require(not np.isclose(rates[2], rates[0] * 0.1 ** 0.5, rtol=1e-3),
            "your rate decays smoothly between the jumps: ask for a staircase")
    require(np.allclose(rates[:4], 0.05, rtol=1e-4),
            "the rate must stay constant until step 1,000")
    require(not np.isclose(rates[4], 0.025, rtol=1e-3),
            "after step 1,000 the rate is halved: the exercise asks to divide it by 10")
    require(np.allclose(rates[4:7], 0.005, rtol=1e-4),
            f"after step 1,000 the rate should be a tenth of the start, got {rates[4]:.4g}")
    require(np.allclose(rates[7:9], 0.0005, rtol=1e-4) and np.isclose(rates[9], 0.00005,
                                                                       rtol=1e-4),
            "the division by 10 repeats every 1,000 steps, not only once")


@exercise("04.4")
def quadrant_network(model):
    from utils import playground

    require(hasattr(model, "layers") and callable(model),
            f"pass the trained Keras model (run.model), got {type(model).__name__}")
    dense = [layer for layer in model.layers if hasattr(layer, "units")]
    require(len(dense) >= 2, "the model needs at least one hidden layer (a lone neuron draws "
            "one line; the quadrants need more)")
    hidden = sum(int(layer.units) for layer in dense[:-1])
    require(hidden <= 12, f"your network has {hidden} hidden neurons; the limit is 12")
    X, y = playground.make_dataset("quadrants", n=2000, noise=0.05, seed=20_240)
    try:
        score = playground.accuracy(model, X, y)
    except Exception as error:
        raise Hint(f"the model could not classify 2-D points ({type(error).__name__}: {error}); "
                   "it needs 2 inputs and 1 sigmoid output") from None
    require(score >= 0.95, f"test accuracy {score:.3f}, below 0.95: train longer, try another "
            "activation or learning rate, or spread your neurons differently")
    return f"test accuracy {score:.3f} with {hidden} hidden neurons."
