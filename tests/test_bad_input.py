"""Bad input to the public helpers of utils (property-based, with hypothesis).

Every helper that is given what it cannot use raises TypeError (wrong type) or ValueError (wrong
value) with a message that names what it expected, before it draws or computes anything; and it
still accepts what it can use, so the checks are not too strict.
"""

from __future__ import annotations

import functools
import math
import re

import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import utils  # noqa: E402
from utils import data, playground  # noqa: E402
from utils.plots import plot_digits, plot_probabilities  # noqa: E402

# few examples each (the whole file runs in seconds); no deadline (a first Matplotlib call is
# slow); no example database (nothing written into the repository)
FEW = settings(max_examples=25, deadline=None, database=None)
SOME = settings(max_examples=50, deadline=None, database=None)

REAL_KINDS = "biuf"  # bool, signed and unsigned integers, floats


@pytest.fixture(autouse=True)
def close_figures():
    plt.close("all")
    yield
    plt.close("all")


def assert_nothing_drawn():
    assert plt.get_fignums() == [], "a figure was created before the input was checked"


# --------------------------------------------------------------------------- strategies
not_a_number = st.one_of(
    st.none(), st.text(max_size=5), st.binary(max_size=5), st.complex_numbers(),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                         max_size=2))
non_real_dtypes = st.one_of(
    hnp.scalar_dtypes().filter(lambda dtype: dtype.kind not in REAL_KINDS),  # complex, dates
    hnp.unicode_string_dtypes(max_len=4), hnp.byte_string_dtypes(max_len=4))
small_shapes = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4)


def non_real_arrays(shape):
    """Arrays of strings, bytes, complex numbers, dates or Python objects."""
    return st.one_of(
        hnp.arrays(non_real_dtypes, shape),
        hnp.arrays(np.dtype(object), shape,
                   elements=st.one_of(st.none(), st.text(max_size=3), st.integers())))


@st.composite
def with_a_non_finite_value(draw, shape, dtype=np.float64):
    """A float array of `shape` with at least one NaN, inf or -inf in it."""
    array = draw(hnp.arrays(dtype, shape, elements=st.floats(-1, 1, width=32)))
    index = draw(st.integers(0, array.size - 1))
    array.flat[index] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    return array


image_shapes = st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6))


@st.composite
def valid_images(draw):
    dtype = draw(st.sampled_from([np.uint8, np.int64, np.float32, np.float64, np.bool_]))
    elements = st.floats(0, 1, width=32) if np.dtype(dtype).kind == "f" else None
    return draw(hnp.arrays(dtype, draw(image_shapes), elements=elements))


@st.composite
def probability_vectors(draw, min_size=2, max_size=12):
    weights = draw(st.lists(st.floats(0.01, 1.0), min_size=min_size, max_size=max_size))
    return np.array(weights) / sum(weights)


# --------------------------------------------------------------------------- utils.data
@SOME
@given(bad=st.one_of(st.integers(), st.floats(), st.binary(), st.booleans(),
                     st.lists(st.text(max_size=3), max_size=3)))
def test_load_mnist_rejects_a_data_dir_that_is_not_a_path(bad):
    for load in (data.load_mnist, utils.load_mnist):
        with pytest.raises(TypeError, match=rf"data_dir must be a path or None, got "
                                            rf"{type(bad).__name__}"):
            load(bad, verbose=False)


@FEW
@given(bad=st.one_of(st.integers(), st.none(), st.text(max_size=3), st.floats()))
def test_load_mnist_rejects_a_verbose_that_is_not_a_bool(bad):
    # data_dir is a file: were verbose not checked first, this would be a NotADirectoryError
    with pytest.raises(TypeError, match=r"verbose must be True or False, got"):
        data.load_mnist(__file__, verbose=bad)


@FEW
@given(bad=st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers(), max_size=3),
                     st.tuples(st.text(max_size=3))))
def test_verify_arrays_rejects_what_is_not_a_dict_of_arrays(bad):
    with pytest.raises(TypeError, match=r"arrays must be a dict of numpy arrays named "
                                        r"\['x_test', 'x_train', 'y_test', 'y_train'\], got"):
        data.verify_arrays(bad)


@FEW
@given(bad=st.one_of(st.none(), st.integers(), st.lists(st.integers(), max_size=3)))
def test_verify_arrays_rejects_a_value_that_is_not_an_array(bad):
    with pytest.raises(TypeError, match=r"MNIST x_train: expected a numpy array "
                                        r"\(uint8 \(60000, 28, 28\)\), got"):
        data.verify_arrays({"x_train": bad})


@FEW
@given(arrays=st.dictionaries(st.text(max_size=8).filter(lambda key: key != "x_train"),
                              hnp.arrays(np.uint8, (2,)), max_size=4))
def test_verify_arrays_names_the_missing_array(arrays):
    with pytest.raises(ValueError, match=r"MNIST array 'x_train' is missing \(found \["):
        data.verify_arrays(arrays)


@SOME
@given(array=st.one_of(
    hnp.arrays(hnp.scalar_dtypes(), small_shapes),  # wrong shape (and often wrong dtype): empty,
    with_a_non_finite_value((3, 28, 28)),           # scalars, 1-D, 5-D; NaN-containing floats
))
def test_verify_arrays_rejects_an_array_of_the_wrong_shape_or_dtype(array):
    expected = re.escape(f"MNIST x_train: expected uint8 (60000, 28, 28), "
                         f"got {array.dtype} {array.shape}")
    with pytest.raises(ValueError, match=expected):
        data.verify_arrays({name: array for name in data.ARRAY_SHAPES})


@FEW
@given(dtype=hnp.scalar_dtypes().filter(lambda dtype: dtype != np.uint8),
       nan=st.booleans())
def test_verify_arrays_rejects_the_right_shape_in_the_wrong_dtype(dtype, nan):
    value = np.nan if nan and dtype.kind in "fc" else 0
    array = np.broadcast_to(np.array(value).astype(dtype), (60000, 28, 28))  # no memory used
    with pytest.raises(ValueError, match=rf"x_train: expected uint8 \(60000, 28, 28\), got "
                                         rf"{re.escape(str(dtype))} \(60000, 28, 28\)"):
        data.verify_arrays({"x_train": array})


def test_verify_arrays_rejects_the_right_shape_and_dtype_with_other_content():
    with pytest.raises(ValueError, match=r"MNIST x_train: sha256 .* differs from 741c988805d0"):
        data.verify_arrays({name: np.zeros(shape, np.uint8)
                            for name, shape in data.ARRAY_SHAPES.items()})


# --------------------------------------------------------------------------- utils.plots
@SOME
@given(images=hnp.arrays(np.uint8, st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=1, min_side=0, max_side=6),    # a scalar, 1-D
    hnp.array_shapes(min_dims=4, max_dims=5, min_side=1, max_side=3))))  # 4-D, 5-D
def test_plot_digits_rejects_images_of_the_wrong_number_of_dimensions(images):
    shape = re.escape(str(images.shape))
    with pytest.raises(ValueError, match=r"images must have shape \(n, height, width\) or "
                                         rf"\(n, pixels\), got shape {shape}"):
        plot_digits(images)
    assert_nothing_drawn()


@FEW
@given(n=st.integers(1, 4), pixels=st.integers(1, 60).filter(lambda k: math.isqrt(k) ** 2 != k))
def test_plot_digits_rejects_flattened_images_that_are_not_square(n, pixels):
    with pytest.raises(ValueError, match=rf"square number of pixels \(784 for 28x28\), "
                                         rf"got {pixels} per image"):
        plot_digits(np.zeros((n, pixels)))


@FEW
@given(shape=st.one_of(
    st.tuples(st.just(0), st.integers(0, 5), st.integers(0, 5)),  # no images
    st.tuples(st.integers(1, 5), st.just(0), st.integers(0, 5)),  # images without pixels
    st.tuples(st.integers(1, 5), st.integers(1, 5), st.just(0)),
    st.tuples(st.integers(0, 5), st.just(0)),                     # flattened, no pixels
    st.tuples(st.just(0), st.sampled_from([1, 4, 784])),          # flattened, no images
))
def test_plot_digits_rejects_empty_images(shape):
    with pytest.raises(ValueError, match=r"no images to plot \(got an empty array of shape"):
        plot_digits(np.zeros(shape))
    assert_nothing_drawn()


@SOME
@given(images=st.one_of(non_real_arrays(image_shapes),
                        non_real_arrays(st.tuples(st.integers(1, 3), st.just(16)))))
def test_plot_digits_rejects_images_that_are_not_numbers(images):
    with pytest.raises(TypeError, match=r"images must hold numbers \(pixel intensities\), got "
                                        rf"dtype {re.escape(str(images.dtype))}"):
        plot_digits(images)
    assert_nothing_drawn()


@FEW
@given(images=st.one_of(with_a_non_finite_value(image_shapes),
                        with_a_non_finite_value(st.just((2, 784)), np.float32)))
def test_plot_digits_rejects_images_with_nan_or_inf(images):
    with pytest.raises(ValueError, match="images must hold finite pixel intensities, got NaN or "
                                         "inf values"):
        plot_digits(images)
    assert_nothing_drawn()


@FEW
@given(n=st.integers(1, 5), data_=st.data(), which=st.sampled_from(["labels", "predictions"]))
def test_plot_digits_rejects_labels_of_the_wrong_length(n, data_, which):
    values = data_.draw(st.one_of(
        st.lists(st.integers(0, 9), max_size=8).filter(lambda values: len(values) != n),
        hnp.arrays(np.int64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=3))
        .filter(lambda values: values.shape != (n,))))
    shape = re.escape(str(np.asarray(values).shape))
    with pytest.raises(ValueError, match=rf"{which} must hold one integer per image, shape "
                                         rf"\({n},\), got shape {shape}"):
        plot_digits(np.zeros((n, 4, 4)), **{which: values})
    assert_nothing_drawn()


@SOME
@given(n=st.integers(1, 5), data_=st.data(), which=st.sampled_from(["labels", "predictions"]))
def test_plot_digits_rejects_labels_that_are_not_integers(n, data_, which):
    values = data_.draw(st.one_of(
        st.lists(st.one_of(st.floats(), st.text(max_size=2), st.booleans()), min_size=n,
                 max_size=n).filter(lambda values: np.asarray(values).shape == (n,)),
        non_real_arrays(st.just((n,))),
        hnp.arrays(st.sampled_from([np.float32, np.float64, np.bool_]), (n,))))
    dtype = re.escape(str(np.asarray(values).dtype))
    with pytest.raises(TypeError, match=rf"{which} must hold one integer per image, got dtype "
                                        rf"{dtype}"):
        plot_digits(np.zeros((n, 4, 4)), **{which: values})
    assert_nothing_drawn()


@FEW
@given(images=valid_images(), data_=st.data(), flatten=st.booleans())
def test_plot_digits_draws_valid_images_with_integer_labels(images, data_, flatten):
    n, height, width = images.shape
    labels = data_.draw(hnp.arrays(st.sampled_from([np.uint8, np.int64]), (n,),
                                   elements=st.integers(0, 9)))
    if flatten:
        images = np.repeat(images[:, :1, :1], 9, axis=1).reshape(n, 9)  # 3x3 images, flattened
    axes = plot_digits(images, labels=labels, ncols=3).get_axes()
    plt.close("all")
    assert sum(len(ax.get_images()) for ax in axes) == n
    assert [ax.get_title() for ax in axes[:n]] == [str(label) for label in labels]


@SOME
@given(probabilities=st.one_of(non_real_arrays(st.integers(0, 12).map(lambda k: (k,))),
                               st.lists(st.text(max_size=3), min_size=2, max_size=5),
                               st.lists(st.complex_numbers(), min_size=2, max_size=5)))
def test_plot_probabilities_rejects_what_is_not_numbers(probabilities):
    dtype = re.escape(str(np.asarray(probabilities).dtype))
    with pytest.raises(TypeError, match=rf"probabilities must be numbers, got dtype {dtype}"):
        plot_probabilities(probabilities)
    assert_nothing_drawn()


@FEW
@given(probabilities=st.one_of(
    hnp.arrays(np.float64, st.sampled_from([(), (0,), (1,)]), elements=st.just(1.0)),
    hnp.arrays(np.float64, st.sampled_from([(2, 5), (5, 2), (1, 10), (2, 2, 2)]),
               elements=st.just(0.1))))
def test_plot_probabilities_rejects_what_is_not_one_vector(probabilities):
    shape = re.escape(str(probabilities.shape))
    with pytest.raises(ValueError, match=r"probabilities must be one vector with a value per "
                                         rf"class, got shape {shape}"):
        plot_probabilities(probabilities)
    assert_nothing_drawn()


def negative_but_summing_to_1(vector_and_amount):
    """Move all of the last class's probability and `amount` more to the first class."""
    p, amount = vector_and_amount
    moved = p[-1] + amount
    p = p.copy()
    p[0] += moved
    p[-1] -= moved  # now -amount
    return p


@SOME
@given(probabilities=st.one_of(
    hnp.arrays(np.float64, st.integers(2, 12), elements=st.floats(0, 10))
    .filter(lambda p: abs(p.sum() - 1) > 2e-3),                               # wrong sum
    st.tuples(probability_vectors(), st.floats(0.01, 5)).map(negative_but_summing_to_1),
    with_a_non_finite_value(st.integers(2, 12).map(lambda k: (k,)))))         # NaN, inf
def test_plot_probabilities_rejects_what_is_not_a_probability_distribution(probabilities):
    with pytest.raises(ValueError, match=r"probabilities must be finite, non-negative and sum "
                                         r"to 1; got sum"):
        plot_probabilities(probabilities)
    assert_nothing_drawn()


@SOME
@given(probabilities=probability_vectors(), data_=st.data())
def test_plot_probabilities_rejects_a_true_label_that_is_not_a_class_index(probabilities,
                                                                           data_):
    classes = len(probabilities)
    label = data_.draw(st.one_of(
        st.integers().filter(lambda k: not 0 <= k < classes), st.booleans(), st.floats(),
        st.text(max_size=2), st.just(np.float64(1.0))))
    with pytest.raises(ValueError, match=rf"true_label must be a class index in "
                                         rf"0\.\.{classes - 1}, got"):
        plot_probabilities(probabilities, true_label=label)
    assert_nothing_drawn()


@FEW
@given(probabilities=probability_vectors(), data_=st.data(), as_list=st.booleans())
def test_plot_probabilities_draws_valid_probabilities(probabilities, data_, as_list):
    label = data_.draw(st.integers(0, len(probabilities) - 1))
    ax = plot_probabilities(probabilities.tolist() if as_list else probabilities,
                            true_label=np.int64(label) if as_list else label)
    plt.close("all")
    assert np.allclose([bar.get_height() for bar in ax.patches], probabilities)
    assert ax.patches[label].get_linewidth() == 2


# --------------------------------------------------------------------------- utils.playground
GENERATORS = [playground.blobs, playground.circles, playground.quadrants, playground.spirals,
              functools.partial(playground.make_dataset, "xor"),
              functools.partial(playground.make_dataset, "spirals")]
generators = st.sampled_from(GENERATORS)


@SOME
@given(make=generators, n=st.one_of(st.floats(), st.text(max_size=3), st.none(), st.booleans(),
                                    st.integers(4, 10).map(float), st.integers(-5, 3)))
def test_data_sets_reject_a_bad_number_of_points(make, n):
    if isinstance(n, int) and not isinstance(n, bool):
        with pytest.raises(ValueError, match=rf"n \(the number of points\) must be at least 4, "
                                             rf"got {n}"):
            make(n=n)
    else:
        with pytest.raises(TypeError, match=r"n \(the number of points\) must be an int, got"):
            make(n=n)


@SOME
@given(make=generators, noise=st.one_of(
    st.floats().filter(lambda x: not 0 <= x <= 1),  # negative, above 1, NaN, inf
    not_a_number, st.booleans()))
def test_data_sets_reject_a_bad_noise(make, noise):
    if isinstance(noise, float):
        with pytest.raises(ValueError, match=r"noise must be between 0 and 1 \(the standard "
                                             r"deviation"):
            make(n=10, noise=noise)
    else:
        with pytest.raises(TypeError, match=r"noise must be a number between 0 and 1, got"):
            make(n=10, noise=noise)


@FEW
@given(make=generators, seed=st.one_of(st.integers(max_value=-1), st.floats(), st.booleans(),
                                       st.text(max_size=3), st.lists(st.integers(), max_size=2)))
def test_data_sets_reject_a_bad_seed(make, seed):
    with pytest.raises(ValueError, match=r"seed must be a non-negative int or None, got"):
        make(n=10, seed=seed)


@FEW
@given(name=st.one_of(st.text(max_size=10), st.none(), st.integers()))
def test_make_dataset_rejects_an_unknown_name(name):
    known = set(playground.DATASETS) | set(playground.ALIASES)
    if isinstance(name, str) and name.lower() in known:
        return
    error, message = ((ValueError, "unknown data set .*; choose one of") if isinstance(name, str)
                      else (TypeError, "data set name must be a string, one of"))
    with pytest.raises(error, match=message):
        playground.make_dataset(name)


@FEW
@given(make=generators, n=st.integers(4, 200), noise=st.floats(0, 1),
       seed=st.one_of(st.none(), st.integers(0, 2**32)))
def test_data_sets_accept_every_valid_size_noise_and_seed(make, n, noise, seed):
    X, y = make(n=n, noise=noise, seed=seed)
    assert X.shape == (n, 2) and X.dtype == np.float32 and np.all(np.isfinite(X))
    assert y.shape == (n,) and set(np.unique(y)) == {0, 1}


class FakeModel:
    """A stand-in for a Keras model: `.predict` only, and it counts its calls."""

    def __init__(self):
        self.calls = 0

    def predict(self, X):
        self.calls += 1
        return 1 / (1 + np.exp(-5 * (X[:, 0] + X[:, 1])))


def call(function, model, X, y):
    if function == "predict_proba":
        return playground.predict_proba(model, X)
    if function == "accuracy":
        return playground.accuracy(model, X, y)
    return playground.plot_decision_boundary(model, X, y, resolution=5)


functions = st.sampled_from(["predict_proba", "accuracy", "plot_decision_boundary"])
finite_points = st.integers(1, 20).flatmap(
    lambda n: hnp.arrays(np.float64, (n, 2), elements=st.floats(-2, 2)))


def labels_for(X):
    return np.arange(len(X)) % 2


@SOME
@given(function=functions, X=hnp.arrays(np.float64, small_shapes, elements=st.floats(-1, 1))
       .filter(lambda X: X.ndim != 2 or X.shape[1] != 2 or len(X) == 0))
def test_playground_rejects_points_that_are_not_n_by_2(function, X):
    model = FakeModel()
    with pytest.raises(ValueError, match=r"X must be an array of 2-D points, shape \(n, 2\); "
                                         rf"got shape {re.escape(str(X.shape))}"):
        call(function, model, X, np.zeros(X.shape[:1]))
    assert model.calls == 0
    assert_nothing_drawn()


@FEW
@given(function=functions, X=st.integers(1, 6).flatmap(lambda n: non_real_arrays((n, 2))))
def test_playground_rejects_points_that_are_not_numbers(function, X):
    model = FakeModel()
    with pytest.raises(TypeError, match=r"X must hold numbers \(2-D points, shape \(n, 2\)\), got "
                                        rf"dtype {re.escape(str(X.dtype))}"):
        call(function, model, X, labels_for(X))
    assert model.calls == 0


@FEW
@given(function=functions, X=st.one_of(
    st.integers(1, 6).flatmap(lambda n: with_a_non_finite_value((n, 2))),
    st.just(np.array([[1e300, 0.0]]))))  # finite as float64, inf as float32
def test_playground_rejects_points_with_nan_or_inf(function, X):
    model = FakeModel()
    with pytest.raises(ValueError, match=r"X must hold finite coordinates \(as float32\), got NaN "
                                         r"or inf values"):
        with np.errstate(over="ignore"):
            call(function, model, X, labels_for(X))
    assert model.calls == 0
    assert_nothing_drawn()


@FEW
@given(function=st.sampled_from(["accuracy", "plot_decision_boundary"]), X=finite_points,
       data_=st.data())
def test_playground_rejects_labels_of_the_wrong_length(function, X, data_):
    m = data_.draw(st.integers(0, 25).filter(lambda m: m != len(X)))
    with pytest.raises(ValueError, match=rf"X has {len(X)} points but y has {m} labels"):
        call(function, FakeModel(), X, np.zeros(m))


@SOME
@given(function=st.sampled_from(["accuracy", "plot_decision_boundary"]), X=finite_points,
       data_=st.data())
def test_playground_rejects_labels_that_are_not_0_or_1(function, X, data_):
    model = FakeModel()
    y = data_.draw(st.one_of(
        hnp.arrays(np.float64, (len(X),), elements=st.sampled_from([0.0, 1.0, 0.5, 2.0, -1.0,
                                                                    math.nan, math.inf])),
        hnp.arrays(np.int64, (len(X),), elements=st.integers(-3, 9)))
        .filter(lambda y: not np.all((y == 0) | (y == 1))))
    with pytest.raises(ValueError, match=r"y must hold the class labels 0 and 1 only, got the "
                                         r"values \["):
        call(function, model, X, y)
    assert model.calls == 0
    assert_nothing_drawn()


@FEW
@given(function=st.sampled_from(["accuracy", "plot_decision_boundary"]), data_=st.data(),
       X=finite_points)
def test_playground_rejects_labels_that_are_not_numbers(function, data_, X):
    y = data_.draw(non_real_arrays(st.just((len(X),))))
    with pytest.raises(TypeError, match=rf"y must hold the class labels 0 and 1, got dtype "
                                        rf"{re.escape(str(y.dtype))}"):
        call(function, FakeModel(), X, y)
    assert_nothing_drawn()


@FEW
@given(limit=st.one_of(st.floats().filter(lambda x: not (x > 0 and math.isfinite(x))),
                       st.integers(max_value=0), not_a_number, st.booleans()))
def test_plot_decision_boundary_rejects_a_bad_limit(limit):
    X = np.array([[0.0, 0.5], [0.5, 0.0]])
    if isinstance(limit, int | float) and not isinstance(limit, bool):
        error, message = ValueError, r"limit \(half the width of the plotted square\) must be a"
    else:
        error, message = TypeError, r"limit must be a positive number, got"
    with pytest.raises(error, match=message):
        playground.plot_decision_boundary(FakeModel(), X, [0, 1], resolution=5, limit=limit)
    assert_nothing_drawn()


@FEW
@given(resolution=st.one_of(st.integers(max_value=1), st.floats(), st.booleans(),
                            st.text(max_size=2), st.none()))
def test_plot_decision_boundary_rejects_a_bad_resolution(resolution):
    with pytest.raises(ValueError, match=r"resolution must be an int >= 2, got"):
        playground.plot_decision_boundary(FakeModel(), np.zeros((2, 2)), [0, 1],
                                          resolution=resolution)
    assert_nothing_drawn()


@FEW
@given(model=st.one_of(st.none(), st.integers(), st.text(max_size=3), st.floats()))
def test_predict_proba_rejects_a_model_that_cannot_predict(model):
    with pytest.raises(TypeError, match=r"model must be a Keras model or a function of the "
                                        r"points, got"):
        playground.predict_proba(model, np.zeros((3, 2)))


@FEW
@given(X=finite_points, data_=st.data(), as_list=st.booleans())
def test_playground_accepts_valid_points_and_labels(X, data_, as_list):
    y = data_.draw(hnp.arrays(st.sampled_from([np.int64, np.uint8, np.float32, np.bool_]),
                              (len(X),), elements=st.sampled_from([0, 1])))
    model = FakeModel()
    expected = np.mean((model.predict(X.astype(np.float32)) >= 0.5) == (y == 1))
    points, labels = (X.tolist(), y.tolist()) if as_list else (X, y)
    assert playground.accuracy(model, points, labels) == pytest.approx(expected)
    assert playground.predict_proba(model, points).shape == (len(X),)
    ax = playground.plot_decision_boundary(model, points, labels, resolution=5, limit=2)
    plt.close("all")
    assert ax.get_xlim() == (-2, 2) and len(ax.collections) >= 2


# --------------------------------------------------------------------------- utils.notebook
@SOME
@given(name=st.one_of(
    st.text(max_size=12).filter(lambda name: not re.fullmatch(r"[a-z][a-z0-9_]*", name)),
    st.from_regex(r"[a-z][a-z0-9_]{0,8}\n", fullmatch=True),  # a trailing newline
    st.none(), st.integers(), st.binary(max_size=4)))
def test_record_rejects_a_name_that_is_not_snake_case(name):
    with pytest.raises(ValueError, match=r"metric name must be snake_case text like "
                                         r"'test_accuracy', got"):
        utils.record(name, 0.5)


@SOME
@given(value=st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, np.float32(np.nan),
                                        np.float64(-np.inf)]),
                       not_a_number, st.booleans()))
def test_record_rejects_a_value_that_is_not_a_finite_number(value):
    with pytest.raises(ValueError, match=r"metric 'test_accuracy' must be a finite number, got"):
        utils.record("test_accuracy", value)


@FEW
@given(name=st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
       value=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**6, 10**6),
                       st.floats(-1e6, 1e6).map(np.float32)))
def test_record_accepts_a_snake_case_name_and_a_finite_number(name, value):
    assert utils.record(name, value) == float(value)


@FEW
@given(seed=st.one_of(st.integers(max_value=-1), st.floats(), st.booleans(), st.none(),
                      st.text(max_size=3), st.lists(st.integers(), max_size=2)))
def test_setup_notebook_rejects_a_bad_seed(seed):
    with pytest.raises(ValueError, match=r"seed must be a non-negative int, got"):
        utils.setup_notebook(seed, keras=False)
