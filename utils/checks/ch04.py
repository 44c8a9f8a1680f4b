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


def _history(value, key):
    """The Keras history dict stored for one combination (a History object is accepted too)."""
    value = getattr(value, "history", value)
    require(isinstance(value, dict),
            f"tuning_results[{key}] should be the history dict train_mlp returns first, got "
            f"{type(value).__name__}" + (": store the whole history, not one number"
                                         if isinstance(value, Real | np.number) else ""))
    require("val_accuracy" in value and len(value["val_accuracy"]) > 0,
            f"the history of {key} has no validation accuracy: train with "
            "validation_data=(x_val, y_val), as train_mlp does")
    finals = {}
    for name in ("val_accuracy", "accuracy", "val_loss"):
        if name in value and len(value[name]) > 0:
            finals[name] = _number(value[name][-1], f"the last {name} of {key}")
    require(0 <= finals["val_accuracy"] <= 1, f"the validation accuracy of {key} is not in [0, 1]")
    finals["best_epoch_val_accuracy"] = max(float(v) for v in value["val_accuracy"])
    return finals


def _combination(key):
    require(isinstance(key, tuple | list) and len(key) == 2,
            f"each key of tuning_results is a pair (learning rate, batch size), got {key!r}")
    rate, batch = key
    rate = _number(rate, "a learning rate")
    require(rate > 0, f"learning rate {rate} in {key!r}: a learning rate is positive")
    require(isinstance(batch, int | np.integer) and not isinstance(batch, bool) and batch >= 1,
            f"batch size {batch!r} in {key!r}: a batch size is a positive whole number")
    return rate, int(batch)


@exercise("04.1")
def tuned_on_validation(answer):
    require(isinstance(answer, tuple) and len(answer) == 2,
            "pass the pair (tuning_results, chosen) to the check")
    results, chosen = answer
    require(isinstance(results, dict), "tuning_results should be a dict "
            "{(learning rate, batch size): history}")
    require(len(results) > 0, "tuning_results is still empty: train one network per "
            "combination of learning rate and batch size and store its history")
    finals = {_combination(key): _history(value, key) for key, value in results.items()}
    rates = {rate for rate, _ in finals}
    batches = {batch for _, batch in finals}
    require(len(rates) >= 2 and len(batches) >= 2,
            f"you tried {len(rates)} learning rate(s) and {len(batches)} batch size(s): try at "
            "least two of each (the best rate may depend on the batch size)")
    missing = [(r, b) for r in sorted(rates) for b in sorted(batches) if (r, b) not in finals]
    if missing:
        raise Hint(f"the grid is incomplete: no run for {missing[0]} (try every combination "
                   "of the rates and batch sizes you chose)")
    chosen = _combination(chosen)
    require(chosen in finals, f"your choice {chosen} is not one of the combinations in "
            "tuning_results")
    val = {key: f["val_accuracy"] for key, f in finals.items()}
    best = max(val.values())
    if val[chosen] < best - 1e-12:
        def argmax(name, sign=1.0):
            having = {key: sign * f[name] for key, f in finals.items() if name in f}
            return max(having, key=having.get) if having else None

        require(chosen != argmax("accuracy") or argmax("accuracy") == argmax("val_accuracy"),
                "you chose on the training accuracy: it rewards the network that fits its "
                "own training images best, not the one that does best on images it has not "
                "seen. Choose on the validation split")
        require(chosen != argmax("val_accuracy", -1.0),
                "you picked the combination with the lowest validation accuracy")
        require(chosen != argmax("best_epoch_val_accuracy"),
                "you chose on the best epoch of each run, but the networks you would keep are "
                "those at the end of training: compare the validation accuracy after the last "
                "epoch")
        require(chosen != argmax("val_loss", -1.0),
                "you chose the lowest validation loss; the exercise asks for the highest "
                "validation accuracy (after the last epoch)")
        raise Hint("another combination in tuning_results has a higher validation accuracy "
                   "after the last epoch than your choice")
    return (f"{len(finals)} combinations compared on the validation split, and the choice "
            "agrees with them. The test set stays untouched until the final evaluation.")


_GRADIENT_NAMES = ("dW1", "db1", "dW2", "db2")


def _forward_loss(params, X, y):
    W1, b1, W2, b2 = params
    hidden = np.tanh(X @ W1 + b1)
    p = 1 / (1 + np.exp(-(hidden @ W2 + b2)[:, 0]))
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def numeric_gradients(params, X, y, eps=1e-6):
    """Central finite differences of the mean binary cross-entropy, one parameter entry at a
    time: slow, simple, and independent of any formula for the gradient."""
    grads = []
    for index, value in enumerate(params):
        grad = np.zeros_like(value)
        for position in np.ndindex(value.shape):
            shifted = [p.copy() for p in params]
            shifted[index][position] = value[position] + eps
            up = _forward_loss(shifted, X, y)
            shifted[index][position] = value[position] - eps
            grad[position] = (up - _forward_loss(shifted, X, y)) / (2 * eps)
        grads.append(grad)
    return grads


def random_network(seed, n=7, hidden=3):
    """Random parameters (W1, b1, W2, b2), points X (n, 2) and labels y (n,) in {0, 1}."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=(2, hidden)), rng.normal(size=hidden),
              rng.normal(size=(hidden, 1)), rng.normal(size=1)]
    X = rng.normal(size=(n, 2))
    y = (rng.random(n) < 0.5).astype(float)
    y[:2] = [0.0, 1.0]  # both classes, always
    return params, X, y


def gradient_mistake(got, expected, n):
    """A hint for gradients `got` that differ from the finite differences `expected`, or None."""
    close = [np.allclose(g, e, rtol=1e-4, atol=1e-7) for g, e in zip(got, expected, strict=True)]
    if all(close):
        return None
    if all(np.allclose(g, -e, rtol=1e-4, atol=1e-7) for g, e in zip(got, expected, strict=True)):
        return ("your gradients have the wrong sign: the gradient points to where the loss "
                "grows")
    if all(np.allclose(g, n * e, rtol=1e-4, atol=1e-7) for g, e in zip(got, expected,
                                                                      strict=True)):
        return (f"your gradients are {n} times too large, {n} being the number of points: the "
                "loss is the mean over the points, not their sum")
    if close[2] and close[3]:
        return ("the output layer's gradients (dW2, db2) are right, the hidden layer's are not: "
                "carry the output error back through W2, then through the tanh of every "
                "hidden neuron (its derivative, at that neuron's value)")
    if close[2] != close[3]:
        wrong = "dW2" if not close[2] else "db2"
        return (f"{wrong} is wrong while the other output-layer gradient is right: look at how "
                "the output error reaches that parameter")
    return ("the output layer's gradients are already off: start from the error of the output "
            "neuron for the cross-entropy cost (chapter 01), averaged over the points")


@exercise("04.2")
def hidden_layer_gradients(function):
    for seed, n, hidden in ((4, 7, 3), (40, 11, 5)):
        params, X, y = random_network(seed, n, hidden)
        out = _call(function, *[p.copy() for p in params], X.copy(), y.copy())
        require(isinstance(out, tuple | list) and len(out) == 4,
                "return the four gradients (dW1, db1, dW2, db2), in that order")
        got = []
        for name, value, param in zip(_GRADIENT_NAMES, out, params, strict=True):
            try:
                value = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                raise Hint(f"{name} should be an array of numbers") from None
            if name.startswith("db") and value.size == param.size:
                value = value.reshape(param.shape)  # (k,), (1, k) or a scalar: all fine
            if value.shape != param.shape:
                extra = ""
                if name == "db1" and value.ndim == 2 and value.shape[0] == n:
                    extra = ": a bias gets one number per neuron, adding up all the points"
                elif n in value.shape:
                    extra = (": an (n, 1) array met an (n,) one somewhere, and NumPy broadcast "
                             "them to (n, n)")
                elif value.shape == param.shape[::-1]:
                    extra = ": a transpose?"
                raise Hint(f"{name} has shape {value.shape}, its parameter {param.shape} (with "
                           f"{n} points and {hidden} hidden neurons){extra}")
            require(np.all(np.isfinite(value)), f"{name} holds nan or inf")
            got.append(value)
        hint = gradient_mistake(got, numeric_gradients(params, X, y), n)
        require(hint is None, hint or "")
    return "Your gradients agree with finite differences."


def adam_reference(w, g, m, v, t, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7, *,
                   corrected=True, average=True):
    """One Adam step (Kingma & Ba, 2015, Algorithm 1): the new (w, m, v). `corrected=False`
    skips the bias correction and `average=False` steps along g (RMSprop): two usual slips."""
    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g * g
    m_hat, v_hat = (m / (1 - beta_1 ** t), v / (1 - beta_2 ** t)) if corrected else (m, v)
    step = m_hat if average else g
    return w - learning_rate * step / (np.sqrt(v_hat) + epsilon), m, v


def _adam_path(step, curvatures, start, rate, steps, **slip):
    """The weights along `steps` Adam steps on the bowl sum(curvatures * w**2) / 2, by `step`."""
    w, m, v, path = start.copy(), np.zeros_like(start), np.zeros_like(start), [start.copy()]
    for t in range(1, steps + 1):
        out = step(w.copy(), curvatures * w, m.copy(), v.copy(), t, rate, **slip)
        require(isinstance(out, tuple | list) and len(out) == 3,
                "return the three arrays (w, m, v) after the step")
        w, m, v = (np.asarray(part, dtype=float) for part in out)
        require(w.shape == start.shape and m.shape == start.shape and v.shape == start.shape,
                f"with {start.size} weights, w, m and v should each have shape {start.shape}")
        path.append(w)
    return np.array(path)


def judge_adam(adam_step, seed):
    """The verdict on `adam_step` (exercise 04.3): 25 steps on bowls drawn from `seed` (the
    self-check's and the grader's differ), compared with Adam's own; a remark, or Hint."""
    require(callable(adam_step), f"adam_step should be a function, got {type(adam_step)}")
    rng = np.random.default_rng(seed)
    for dims in (2, 5):
        curvatures = np.exp(rng.uniform(-3, 3, dims))  # steep and flat directions at once
        start, rate = rng.uniform(-2, 2, dims), float(rng.choice([0.01, 0.1]))
        want = _adam_path(adam_reference, curvatures, start, rate, 25)
        with np.errstate(all="ignore"):
            got = _adam_path(lambda *a: _call(adam_step, *a), curvatures, start, rate, 25)
        if np.allclose(got, want, rtol=1e-3, atol=1e-5):
            continue
        where = f"with {dims} weights, learning rate {rate}"
        require(np.all(np.isfinite(got)), f"{where} the weights become nan or inf: t counts "
                "the steps from 1 (1 - beta**0 is 0)")
        for slip, hint in [({"corrected": False}, "the first steps have the wrong length: m and v "
                            "start at 0, so their early averages are too small. Correct both"),
                           ({"average": False}, "each step follows the gradient g itself (that "
                            "is RMSprop): Adam steps along the running average m")]:
            near = _adam_path(adam_reference, curvatures, start, rate, 25, **slip)
            require(not np.allclose(got, near, rtol=1e-3, atol=1e-5), f"{where}: {hint}")
        first = int(np.argmax(~np.all(np.isclose(got, want, rtol=1e-3, atol=1e-5), axis=1)))
        raise Hint(f"{where} your weights leave Adam's path at step {first}. Compare each line "
                   "with Algorithm 1 of the paper: two running averages, their bias correction, "
                   "and the step")
    return "Your steps follow Adam's path on two bowls."


@exercise("04.3")
def adam_by_hand(adam_step):
    return judge_adam(adam_step, 3)
