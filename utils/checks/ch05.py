"""Self-checks for chapter 05 (generalization)."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from utils.checks import Hint, exercise, require
from utils.checks import call as _call


def keras_early_stopping(val_losses, patience):
    """What Keras' EarlyStopping(monitor="val_loss", patience=patience,
    restore_best_weights=True) does on these validation losses: (epochs trained, epoch whose
    weights the model ends with), both counted from 1. Runs the real callback."""
    import keras

    model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(1)])
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                            restore_best_weights=True)
    model.stop_training = False
    stopper.set_model(model)
    stopper.on_train_begin()
    trained = 0
    for epoch, loss in enumerate(val_losses):
        model.layers[0].bias.assign([float(epoch)])  # the weights remember their epoch
        stopper.on_epoch_end(epoch, {"val_loss": float(loss)})
        trained = epoch + 1
        if model.stop_training:
            break
    stopper.on_train_end()
    return trained, int(round(float(model.layers[0].bias.numpy()[0]))) + 1


def _stopping_cases():
    """Validation-loss curves with the traps in them: ties, a late improvement, no stop."""
    rng = np.random.default_rng(5)
    cases = [
        ([0.9, 0.7, 0.6, 0.65, 0.62, 0.61, 0.64, 0.7, 0.8], 3),   # plain: best at epoch 3
        ([0.9, 0.7, 0.7, 0.7, 0.7, 0.5, 0.6], 3),                 # equal is not better
        ([0.9, 0.8, 0.85, 0.84, 0.79, 0.9, 0.91, 0.95, 0.99], 3),  # improves late, within patience
        ([0.9, 0.8, 0.7, 0.6, 0.5], 2),                            # never stops early
        ([0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 1),                       # best is the first epoch
    ]
    for _ in range(6):
        curve = 1 / np.arange(1, 21) + 0.02 * np.arange(20) / 20 + rng.normal(0, 0.03, 20)
        cases.append((list(np.round(curve, 3)), int(rng.integers(1, 6))))
    return cases


def _epoch(value, what):
    require(isinstance(value, int | np.integer) and not isinstance(value, bool),
            f"{what} should be a whole number (an epoch, counted from 1), got {value!r}")
    return int(value)


@exercise("05.1")
def early_stopping_epochs(function):
    for losses, patience in _stopping_cases():
        got = _call(function, list(losses), patience)
        require(isinstance(got, tuple | list) and len(got) == 2,
                "return a pair (epochs trained, epoch whose weights the model keeps)")
        trained, kept = (_epoch(got[0], "the epochs trained"),
                         _epoch(got[1], "the epoch whose weights are kept"))
        expected = keras_early_stopping(losses, patience)
        if (trained, kept) == expected:
            continue
        best = int(np.argmin(losses)) + 1
        require(kept != best - 1 and trained != expected[0] - 1,
                "count epochs from 1, as Keras prints them (epoch 1 is the first)")
        require(not (kept == len(losses) and expected[1] != len(losses)),
                "with restore_best_weights=True the model ends with the best epoch's "
                "weights, not the last epoch's")
        require(trained != best or expected[0] == best,
                "training does not stop at the best epoch: the callback only knows it was the "
                "best after `patience` more epochs without improvement")
        require(kept == expected[1],
                f"for the losses {losses} with patience {patience}, the epoch you keep is "
                "not the one with the lowest validation loss so far when training stops "
                "(a tie is not an improvement)")
        raise Hint(f"for the losses {losses} with patience {patience} you stop after epoch "
                   f"{trained}: count the epochs without improvement since the best one (a tie "
                   "is not an improvement), and stop once there have been `patience` of them")
    return "the same epochs as Keras' EarlyStopping, ties and late improvements included."


def _final(history, name, key):
    history = getattr(history, "history", history)
    require(isinstance(history, dict), f"decay_results[{key!r}] should be the history dict "
            f"train returns, got {type(history).__name__}")
    require(name in history and len(history[name]) > 0,
            f"the history of {key!r} has no {name!r}: train with the chapter's train(), which "
            "records it")
    value = float(history[name][-1])
    require(math.isfinite(value), f"the last {name} of {key!r} is not finite")
    return value


@exercise("05.2")
def decay_chosen_on_cross_entropy(answer):
    require(isinstance(answer, tuple) and len(answer) == 2,
            "pass the pair (decay_results, chosen_decay) to the check")
    results, chosen = answer
    require(isinstance(results, dict) and results, "decay_results should be a dict "
            "{weight decay: history}, with one run per value")
    for key in results:
        require(isinstance(key, Real | np.number) and not isinstance(key, bool) and key >= 0,
                f"each key of decay_results is a weight decay, a number ≥ 0; got {key!r}")
    positive = sorted(float(key) for key in results if key > 0)
    require(len(positive) >= 3, f"you tried {len(positive)} positive weight decay(s): try at "
            "least three")
    require(positive[-1] >= 30 * positive[0], "your weight decays span less than a factor of "
            "30: spread them out (for instance by factors of 3 or 10)")
    require(chosen in results, f"your choice {chosen!r} is not one of the keys of decay_results")
    cross_entropy = {key: _final(h, "val_cross_entropy", key) for key, h in results.items()}
    best = min(cross_entropy, key=cross_entropy.get)
    if cross_entropy[chosen] > cross_entropy[best] + 1e-12:
        with_penalty = {key: _final(h, "val_loss", key) for key, h in results.items()}
        training = {key: _final(h, "loss", key) for key, h in results.items()}
        require(chosen != min(with_penalty, key=with_penalty.get),
                "you compared val_loss, which includes the penalty λ·Σw²: a larger λ adds a "
                "larger term, so the comparison is not fair. Compare the validation "
                "cross-entropy alone")
        require(chosen != min(training, key=training.get),
                "you chose on the training loss: choose on the validation split")
        raise Hint("another weight decay has a lower validation cross-entropy after the last "
                   "epoch than your choice")
    return f"{len(results)} weight decays compared on the validation cross-entropy."


WIDTHS_05_3 = [512, 64] * 10  # hidden layers of exercise 05.3, 784 inputs first


def signal_ratio(model, images):
    """Standard deviation of the last hidden layer's activations over the first's, on images."""
    import keras

    hidden = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][:-1]
    values, spreads = images, []
    for layer in hidden:
        values = layer(values)
        spreads.append(float(keras.ops.std(values)))
    return spreads[-1] / spreads[0]


@exercise("05.3")
def deep_network_keeps_its_signal(model):
    import keras

    require(isinstance(model, keras.Model), f"deep_relu should be a Keras model, got "
            f"{type(model).__name__}")
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    require(len(dense) == len(WIDTHS_05_3) + 1, f"the network should have {len(WIDTHS_05_3)} "
            f"hidden Dense layers and one output layer, got {len(dense)} Dense layers")
    widths = [layer.units for layer in dense]
    require(widths == WIDTHS_05_3 + [10], "the widths should alternate 512 and 64, starting "
            f"with 512, then 10 outputs; got {widths}")
    for layer in dense[:-1]:
        require(layer.get_config()["activation"] == "relu", "every hidden layer uses ReLU")
        initializer = layer.kernel_initializer
        require(isinstance(initializer, keras.initializers.RandomNormal)
                and not isinstance(initializer, keras.initializers.VarianceScaling),
                "initialise every kernel with keras.initializers.RandomNormal(stddev=...), "
                "choosing each layer's stddev yourself")
    rng = np.random.default_rng(0)
    images = rng.random((256, 784)).astype("float32")
    ratio = signal_ratio(model, images)
    if ratio < 0.25:  # it may underflow to exactly 0 (float32)
        shrinks = "to nothing" if ratio == 0 else f"{1 / ratio:.3g}x"
        raise Hint(f"the signal shrinks {shrinks} from the first hidden layer to the last: some "
                   "layers' weights are too small for their number of inputs")
    if ratio > 4:
        raise Hint(f"the signal grows {ratio:.3g}x from the first hidden layer to the last: "
                   "some layers' weights are too large for their number of inputs")
    return f"the signal stays within {max(ratio, 1 / ratio):.2f}x over 20 layers."


QUADRANT_NEURONS = 3  # exercise 05.4: at most this many hidden neurons in all
QUADRANT_BAR = 0.95  # ... and at least this accuracy on fresh quadrant points


def judge_quadrant_network(model, seed):
    """The verdict on exercise 05.4's trained model, on fresh quadrant points drawn from `seed`
    (the self-check's and the grader's differ); a remark, or Hint."""
    from utils import playground

    require(hasattr(model, "layers") and callable(model),
            f"pass the trained Keras model (run.model), got {type(model).__name__}")
    dense = [layer for layer in model.layers if hasattr(layer, "units")]
    require(len(dense) >= 2, "the model needs at least one hidden layer (a lone neuron draws "
            "one line; the quadrants need more)")
    hidden = sum(int(layer.units) for layer in dense[:-1])
    require(hidden <= QUADRANT_NEURONS, f"your network has {hidden} hidden neurons; the limit "
            f"is {QUADRANT_NEURONS}")
    X, y = playground.make_dataset("quadrants", n=3000, noise=0.05, seed=seed)
    try:
        score = playground.accuracy(model, X, y)
    except Exception as error:
        raise Hint(f"the model could not classify 2-D points ({type(error).__name__}: {error}); "
                   "it needs 2 inputs and 1 sigmoid output") from None
    require(score >= QUADRANT_BAR, f"accuracy {score:.3f} on fresh quadrant points, below "
            f"{QUADRANT_BAR}. With so few neurons, training often ends in a poor local minimum: "
            "what did section 1 do about that on the circles? Then consider the activation, "
            "the learning rate and the number of steps")
    return f"accuracy {score:.3f} on fresh points with {hidden} hidden neurons."


@exercise("05.4")
def quadrant_network(model):
    return judge_quadrant_network(model, 20_240)
