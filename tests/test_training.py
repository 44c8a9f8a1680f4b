"""The shared training helpers: the data preparation, the matmul yardstick, the epoch timer and
the sources' CNN."""

import keras
import numpy as np
import pytest

from utils.data import to_images, to_vectors
from utils.training import EpochTimer, matmul_rate, seeds_cnn


def test_digits_become_float32_in_the_unit_interval():
    digits = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    assert np.allclose(to_vectors(digits), [[0.0, 1.0, 0.2, 0.4]])
    assert to_vectors(digits).dtype == np.float32
    assert to_images(digits).shape == (1, 2, 2, 1) and to_images(digits).dtype == np.float32


@pytest.mark.parametrize("prepare, bad", [(to_vectors, np.zeros(3)),
                                          (to_images, np.zeros((2, 784)))])
def test_wrong_shapes_say_what_was_expected(prepare, bad):
    with pytest.raises(ValueError, match="expected images of shape"):
        prepare(bad)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_matmul_rate_is_a_positive_flop_rate(dtype):
    assert 1e6 < matmul_rate(n=256, repeats=2, dtype=dtype) < 1e16


def test_epoch_timer_records_one_time_per_epoch():
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    timer = EpochTimer()
    model.fit(np.zeros((8, 2)), np.zeros(8), epochs=3, verbose=0, callbacks=[timer])
    assert len(timer.seconds) == 3 and all(s > 0 for s in timer.seconds)


def test_the_seeds_cnn_outputs_float32_logits_also_under_mixed_precision():
    assert seeds_cnn().count_params() == 62_346
    assert [layer.name for layer in seeds_cnn(dropout=0.5).layers][-2:] == ["dropout", "logits"]
    mixed = seeds_cnn(dtype="mixed_bfloat16")
    assert mixed.layers[0].compute_dtype == "bfloat16"
    assert mixed(np.zeros((1, 28, 28, 1), "float32")).dtype == "float32"
    assert mixed.layers[-1].get_config()["activation"] == "linear"
