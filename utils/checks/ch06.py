"""Self-checks for chapter 06 (convolutional neural networks)."""

from __future__ import annotations

import numpy as np

from utils.checks import Hint, call_for_array, exercise, require
from utils.checks import call as _call

PARAMETER_BUDGET = 20_000  # exercise 06.4
STEM_BUDGET = 5_000  # exercise 06.2


def _whole(value, what):
    require(isinstance(value, int | np.integer) and not isinstance(value, bool)
            or isinstance(value, float | np.floating) and float(value).is_integer(),
            f"{what} is a whole number, got {value!r}")
    return int(value)


# --- 06.1 --------------------------------------------------------------------------------------

def measured_patch_width(stack, size=None):
    """The receptive field of unit 0 of the last layer, measured rather than computed: feed a
    1-D input with one bright pixel at a time through windowed sums (each layer's windows and
    strides) and see which pixels reach that unit."""
    if size is None:
        size = 1
        for window, stride in reversed(stack):  # an input long enough for unit 0 to exist
            size = (size - 1) * stride + window
    reached = []
    for pixel in range(size):
        signal = np.zeros(size)
        signal[pixel] = 1.0
        for window, stride in stack:
            count = (len(signal) - window) // stride + 1
            signal = np.array([signal[i * stride:i * stride + window].sum() for i in range(count)])
        if signal[0] > 0:
            reached.append(pixel)
    return max(reached) - min(reached) + 1


RECEPTIVE_FIELD_CASES = [
    [(5, 1)], [(3, 1), (3, 1)], [(5, 1), (2, 2)], [(3, 1), (3, 1), (3, 1)],
    [(5, 1), (2, 2), (5, 1), (2, 2)], [(3, 2), (3, 2)], [(2, 2), (2, 2), (2, 2)],
    [(7, 2), (3, 2), (3, 1), (3, 1)], [(1, 1)], [(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)],
]


def _sum_of_windows(stack):
    return sum(window for window, _ in stack)


def _product_of_windows(stack):
    return int(np.prod([window for window, _ in stack]))


def _strides_ignored(stack):
    return 1 + sum(window - 1 for window, _ in stack)


@exercise("06.1")
def receptive_field(function):
    answers = [_whole(_call(function, [tuple(layer) for layer in stack]),
                      f"receptive_field({stack})") for stack in RECEPTIVE_FIELD_CASES]
    wrong = [(stack, got) for stack, got in zip(RECEPTIVE_FIELD_CASES, answers, strict=True)
             if got != measured_patch_width(stack)]
    if not wrong:
        return "a unit of the seeds' pool2 sees a 16x16 patch of the 28x28 image."
    stack, got = wrong[0]
    where = f"wrong for the stack {stack} (you return {got})"

    def always(mistake):  # the answer follows that mistake on every case
        return all(got == mistake(stack) for stack, got in wrong)

    require(not always(_sum_of_windows), f"{where}: adding the windows counts the pixels that "
            "neighbouring windows share twice")
    require(not always(_product_of_windows), f"{where}: multiplying the windows grows the patch "
            "far too fast; neighbouring windows overlap")
    require(not always(_strides_ignored), f"{where}: right for stride-1 stacks only; after a "
            "layer with stride s, neighbouring units are s times further apart in input pixels, "
            "and the strides compound")
    if all(stride == 1 for _, stride in stack):
        raise Hint(f"{where}: with stride 1 everywhere, each layer of window k widens the "
                   "patch by k - 1 pixels")
    raise Hint(f"{where}: follow the patch width and the distance between neighbouring units "
               "(in input pixels) from the input up; a layer's own stride only matters for "
               "the layers above it")


# --- 06.2 --------------------------------------------------------------------------------------

def _is_model(value):
    return hasattr(value, "layers") and hasattr(value, "count_params") and callable(value)


def _output_shape(model, shape):
    try:
        return tuple(int(size) for size in model(np.zeros((1, *shape), np.float32)).shape[1:])
    except Exception as error:
        raise Hint(f"the model could not run on a batch of {shape} images "
                   f"({type(error).__name__}: {error})") from None


@exercise("06.2")
def strided_stem(answer):
    require(isinstance(answer, tuple) and len(answer) == 2,
            "pass the pair (stem, stem_parameters), as the cell does")
    stem, counted = answer
    require(_is_model(stem), f"stem should be a keras.Sequential model, got "
            f"{type(stem).__name__}")
    kinds = [type(layer).__name__ for layer in stem.layers]
    require(not any("Pool" in kind for kind in kinds), "no pooling layers: let the strides of "
            "the convolutions do the shrinking")
    require(kinds.count("Conv2D") >= 2, f"use at least two Conv2D layers (found {kinds})")
    require(all(kind in ("Conv2D", "ReLU", "Activation", "BatchNormalization") for kind in kinds),
            f"only Conv2D layers (and activations) in the stem, found {kinds}")
    h, w, channels = _output_shape(stem, (28, 28, 1))
    if (h, w) != (7, 7):
        require(h != 28, f"the output is {h}x{w}: stride-1 convolutions with padding='same' do "
                "not shrink the image; use strides")
        require(h != 14, f"the output is {h}x{w}: one layer with stride 2 halves 28 to 14; "
                "7 is 28 / 4")
        require(h >= 7, f"the output is {h}x{w}, smaller than 7x7: with padding='valid' every "
                "layer also loses its window's border before striding; padding='same' does not")
        raise Hint(f"the output is {h}x{w}, not 7x7: work out each layer's output size "
                   "(window, stride, padding) from 28 down")
    require(channels == 32, f"the output has {channels} channels, not 32: the last Conv2D's "
            "number of filters sets them")
    params = int(stem.count_params())
    require(params <= STEM_BUDGET, f"{params:,} parameters, over the budget of {STEM_BUDGET:,}: "
            "a layer costs about filters x window x window x (channels of the layer below); "
            "use fewer filters in the first layer, or smaller windows")
    counted = _whole(counted, "stem_parameters")
    if counted != params:
        convs = [layer for layer in stem.layers if type(layer).__name__ == "Conv2D"]
        biases = sum(int(layer.filters) for layer in convs if layer.use_bias)
        require(counted != params - biases, f"stem_parameters is {counted:,}: the biases are "
                "missing (one per filter)")
        require(counted <= params, f"stem_parameters is {counted:,}, more than the model has")
        raise Hint(f"stem_parameters is {counted:,}, but your model has another count: each "
                   "filter spans all the channels of the layer below it, plus one bias")
    return f"28x28x1 -> 7x7x32 with {params:,} parameters."


# --- 06.3 --------------------------------------------------------------------------------------

def _max_pool(maps, size):
    h, w, c = maps.shape[0] // size, maps.shape[1] // size, maps.shape[2]
    return maps[:h * size, :w * size].reshape(h, size, w, size, c).max(axis=(1, 3))


def _spread(grad_out, shape, size):
    """grad_out repeated over each size x size block, zero on the leftover rows and columns."""
    full = np.zeros(shape)
    h, w = grad_out.shape[0] * size, grad_out.shape[1] * size
    full[:h, :w] = np.repeat(np.repeat(grad_out, size, axis=0), size, axis=1)
    return full


def max_pool_gradient(maps, size, grad_out):
    """The reference: d(sum(grad_out * max_pool(maps, size))) / d(maps)."""
    h, w = grad_out.shape[0] * size, grad_out.shape[1] * size
    winners = np.zeros(maps.shape, dtype=bool)
    winners[:h, :w] = maps[:h, :w] == _spread(_max_pool(maps, size), (h, w, maps.shape[2]), size)
    return np.where(winners, _spread(grad_out, maps.shape, size), 0.0)


def judge_pool_gradient(function, seed):
    """The verdict on `max_pool_backward` (exercise 06.3) on maps drawn from `seed` (the
    self-check's and the grader's differ): a remark, or Hint."""
    rng = np.random.default_rng(seed)
    for shape, size in [((4, 4, 1), 2), ((9, 7, 2), 3), ((6, 6, 3), 2), ((5, 8, 2), 2)]:
        maps = rng.normal(size=shape)  # ties have probability 0: one winner per block
        grad_out = rng.normal(size=(shape[0] // size, shape[1] // size, shape[2]))
        got = call_for_array(function, maps.copy(), size, grad_out.copy())
        want = max_pool_gradient(maps, size, grad_out)
        where = f"for maps of shape {shape} and size {size}"
        require(got.shape == maps.shape, f"{where} the gradient should have the maps' shape "
                f"{shape}, one number per input, got {got.shape}")
        if np.allclose(got, want, atol=1e-8):
            continue
        require(not np.allclose(got, _spread(grad_out, shape, size) / size**2, atol=1e-8),
                f"{where} you share each gradient equally over its block: that is the "
                "gradient of AVERAGE pooling; which inputs does a maximum depend on?")
        require(not np.allclose(got, _spread(grad_out, shape, size), atol=1e-8),
                f"{where} every input of a block gets its block's gradient; nudge an input that "
                "is not the largest: does the output move?")
        leftover = np.ones(shape, dtype=bool)
        leftover[:grad_out.shape[0] * size, :grad_out.shape[1] * size] = False
        require(np.allclose(got[~leftover], want[~leftover], atol=1e-8),
                f"wrong values {where}: compare with finite differences of "
                "sum(grad_out * max_pool(maps, size))")
        raise Hint(f"{where} the rows and columns that no block covers get a gradient: they "
                   "never reach the output")
    return None


@exercise("06.3")
def pooling_gradient(function):
    return judge_pool_gradient(function, 5)


# --- 06.4 --------------------------------------------------------------------------------------

def compact_design_problem(model) -> str | None:
    """What is wrong with a model for exercise 06.4 (before any training), or None."""
    if not _is_model(model):
        return f"build_compact_cnn() should return a Keras model, got {type(model).__name__}"
    kinds = [type(layer).__name__ for layer in model.layers]
    if not any(kind.startswith("Conv") for kind in kinds):
        return f"a CNN needs convolution layers (Conv2D); found {kinds}"
    inputs = getattr(model, "inputs", None)
    if not inputs or tuple(inputs[0].shape[1:]) != (28, 28, 1):
        return "the model should start with keras.Input(shape=(28, 28, 1))"
    params = int(model.count_params())
    if params > PARAMETER_BUDGET:
        return (f"{params:,} parameters, over the budget of {PARAMETER_BUDGET:,}: "
                "model.summary() shows which layers hold them")
    if getattr(model, "optimizer", None) is None:
        return ("compile the model inside build_compact_cnn(): an optimizer, "
                "loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True) and "
                "metrics=['accuracy']")
    import keras

    images = np.random.default_rng(54).random((2, 28, 28, 1)).astype(np.float32)
    try:
        outputs = np.asarray(keras.ops.convert_to_numpy(model(images)), dtype=float)
    except Exception as error:
        return f"the model could not run on 28x28x1 images ({type(error).__name__}: {error})"
    if outputs.shape != (2, 10):
        return f"the model should output 10 numbers per image, got shape {outputs.shape[1:]}"
    probabilities = bool(np.all(outputs >= 0) and np.allclose(outputs.sum(axis=1), 1, atol=1e-3))
    from_logits = loss_from_logits(getattr(model, "loss", None))
    if from_logits and probabilities:
        return ("the last layer already applies a softmax and the loss (from_logits=True) applies "
                "another: leave the last Dense(10) without activation, its outputs are the logits")
    if from_logits is False and not probabilities:
        return ("the last layer outputs logits (no softmax), but the loss expects probabilities: "
                "compile with keras.losses.SparseCategoricalCrossentropy(from_logits=True)")
    return None


def loss_from_logits(loss) -> bool | None:
    """Whether a compiled loss reads logits (True), probabilities (False), or None if unknown."""
    if isinstance(loss, str):
        return False if "crossentropy" in loss else None
    try:
        config = loss.get_config()
    except Exception:
        return None
    return bool(config["from_logits"]) if "from_logits" in config else None


def validation_accuracy(model, x_val, y_val) -> float:
    predicted = np.argmax(model.predict(x_val, verbose=0, batch_size=1000), axis=1)
    return float(np.mean(predicted == np.asarray(y_val)))


@exercise("06.4")
def compact_cnn(run):
    require(isinstance(run, tuple) and len(run) == 4,
            "pass what train_compact(build_compact_cnn) returns, as the cell does")
    model, x_val, y_val, target = run
    problem = compact_design_problem(model)
    require(problem is None, str(problem))
    accuracy = validation_accuracy(model, x_val, y_val)
    params = int(model.count_params())
    if accuracy < target:
        require(accuracy > 0.2, f"validation accuracy {accuracy:.4f}, about chance: the network "
                "did not learn; check the loss (integer labels and logits need "
                "SparseCategoricalCrossentropy(from_logits=True)) and that the learning rate is "
                "not far too high")
        raise Hint(f"validation accuracy {accuracy:.4f}, below the bar of {target:.1%}, with "
                   f"{params:,} parameters: spend the budget on filters rather than on a big "
                   "Dense layer; batch normalisation after each convolution and dropout before "
                   "the classifier usually help; Adam with its default rate is a good start")
    return f"validation accuracy {accuracy:.4f} with {params:,} parameters."
