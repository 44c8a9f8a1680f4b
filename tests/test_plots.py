"""utils.plots: digit grids and probability bar charts draw what they are given, and reject
inputs they cannot draw with a clear message."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from utils.plots import CORRECT_COLOUR, WRONG_COLOUR, plot_digits, plot_probabilities  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _images(count, side=28):
    return np.random.default_rng(0).integers(0, 256, size=(count, side, side)).astype(np.uint8)


def test_plot_digits_draws_one_titled_panel_per_image_and_hides_the_spare_ones():
    fig = plot_digits(_images(7), labels=[0, 1, 2, 3, 4, 5, 6], ncols=4)
    axes = fig.get_axes()
    assert len(axes) == 8
    assert [ax.get_title() for ax in axes[:7]] == [str(k) for k in range(7)]
    assert len(axes[7].get_images()) == 0


def test_plot_digits_accepts_flattened_images():
    fig = plot_digits(_images(3).reshape(3, 784))
    assert fig.get_axes()[0].get_images()[0].get_array().shape == (28, 28)


def test_plot_digits_marks_wrong_predictions_in_red():
    fig = plot_digits(_images(2), labels=[4, 7], predictions=[9, 7])
    first, second = fig.get_axes()
    assert first.get_title() == "4→9" and first.title.get_color() == WRONG_COLOUR
    assert second.get_title() == "7→7" and second.title.get_color() == CORRECT_COLOUR


def test_plot_digits_titles_with_the_predictions_alone_when_no_labels_are_given():
    fig = plot_digits(_images(2), predictions=[3, 8])
    assert [ax.get_title() for ax in fig.get_axes()] == ["3", "8"]


@pytest.mark.parametrize("images, message", [
    (np.zeros((2, 783)), "square number of pixels"),
    (np.zeros((28, 28)), "square number of pixels"),
    (np.zeros((2, 28, 28, 1)), "shape \\(n, height, width\\)"),
    (np.zeros((0, 28, 28)), "empty"),
])
def test_plot_digits_rejects_images_it_cannot_draw(images, message):
    with pytest.raises(ValueError, match=message):
        plot_digits(images)


def test_plot_digits_rejects_labels_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"labels must hold one integer per image, shape \(3,\)"):
        plot_digits(_images(3), labels=[1, 2])


@pytest.mark.parametrize("ncols", [0, -1, 2.5, True])
def test_plot_digits_rejects_a_bad_number_of_columns(ncols):
    with pytest.raises(ValueError, match="ncols must be a positive int"):
        plot_digits(_images(3), ncols=ncols)


def test_plot_probabilities_highlights_the_most_likely_class_and_outlines_the_true_one():
    p = np.array([0.05, 0.0, 0.0, 0.3, 0.0, 0.65, 0.0, 0.0, 0.0, 0.0])
    ax = plot_probabilities(p, true_label=3, title="a 5 or a 3?")
    bars = ax.patches
    assert len(bars) == 10 and ax.get_title() == "a 5 or a 3?"
    assert np.allclose([bar.get_height() for bar in bars], p)
    assert matplotlib.colors.same_color(bars[5].get_facecolor(), CORRECT_COLOUR)
    assert bars[3].get_linewidth() == 2 and bars[5].get_linewidth() != 2


def test_plot_probabilities_draws_into_a_given_axes():
    fig, ax = plt.subplots()
    assert plot_probabilities(np.full(10, 0.1), ax=ax) is ax


@pytest.mark.parametrize("probabilities, message", [
    (np.full((2, 10), 0.05), "one vector"),
    (np.array([1.0]), "one vector"),
    (np.full(10, 0.2), "sum to 1"),
    (np.array([1.5, -0.5]), "non-negative"),
    (np.array([np.nan, 1.0]), "finite"),
])
def test_plot_probabilities_rejects_what_is_not_a_probability_vector(probabilities, message):
    with pytest.raises(ValueError, match=message):
        plot_probabilities(probabilities)


@pytest.mark.parametrize("label", [10, -1, 2.0, "3"])
def test_plot_probabilities_rejects_a_true_label_outside_the_classes(label):
    with pytest.raises(ValueError, match="true_label must be a class index in 0..9"):
        plot_probabilities(np.full(10, 0.1), true_label=label)


