"""Answers carried as data between the submission's kernel and the judge (see `judge`).

The judge decides every verdict in a process of its own that never runs the submission's code.
What it needs from the notebook crosses over as data, in a folder of three kinds of files:
`spec.json` (the shape of a value: numbers, strings, lists, dicts...), `arrays.npz` (its NumPy
arrays, read back without pickle) and `*.keras` files (its Keras models: their layers and
weights, read back in Keras' safe mode). A function crosses as a handle: the judge calls it by
sending its arguments over the same way, and the kernel sends back what it returned or raised.

`serve` is what the kernel runs; it trusts nothing and is trusted by nothing: whatever the
submission changes in it, the judge only ever reads data.
"""

from __future__ import annotations

import inspect
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

SPEC, ARRAYS = "spec.json", "arrays.npz"
MAX_DEPTH = 20  # nesting of lists and dicts carried


class Unsupported(TypeError):
    """A value that cannot cross as data."""


class Packer:
    """Turn a value into a JSON-able spec, arrays and model files in `folder` (one direction)."""

    def __init__(self, folder: Path, handles: dict[int, Any] | None = None):
        self.folder, self.handles = folder, handles
        self.arrays: dict[str, Any] = {}
        self.models = 0

    def pack(self, value: Any, depth: int = 0) -> dict[str, Any]:
        import numpy as np

        if depth > MAX_DEPTH:
            raise Unsupported(f"nested more than {MAX_DEPTH} levels deep")
        if value is None or value is Ellipsis:
            return {"t": "none" if value is None else "ellipsis"}
        if isinstance(value, bool | np.bool_):
            return {"t": "bool", "v": bool(value)}
        if isinstance(value, int | np.integer):
            return {"t": "int", "v": str(int(value))}  # any size, exactly
        if isinstance(value, float | np.floating):
            return {"t": "float", "v": repr(float(value))}  # nan and inf too
        if isinstance(value, str):
            return {"t": "str", "v": value}
        if isinstance(value, list | tuple | set | frozenset):
            kind = "list" if isinstance(value, list) else "tuple" if isinstance(
                value, tuple) else "set"
            items = sorted(value, key=repr) if kind == "set" else value
            return {"t": kind, "v": [self.pack(item, depth + 1) for item in items]}
        if isinstance(value, dict):
            return {"t": "dict", "v": [[self.pack(k, depth + 1), self.pack(v, depth + 1)]
                                       for k, v in value.items()]}
        model = _keras_model(value)
        if model is not None:
            self.models += 1
            name = f"model-{self.models}.keras"
            model.save(self.folder / name)
            return {"t": "model", "v": name}
        history = getattr(value, "history", None)  # a keras History: its per-epoch numbers
        if isinstance(history, dict) and type(value).__name__ == "History":
            return self.pack(history, depth)
        if callable(value) and self.handles is not None:
            self.handles[id(value)] = value
            return {"t": "function", "v": str(id(value)), "name": getattr(value, "__name__", ""),
                    "source": _source(value)}
        array = _as_array(value)
        if array is not None:
            if array.dtype.hasobject:
                raise Unsupported("an array of Python objects")
            key = f"a{len(self.arrays)}"
            self.arrays[key] = array
            return {"t": "array" if array.ndim or isinstance(value, np.ndarray) else "scalar",
                    "v": key}
        raise Unsupported(f"a {type(value).__name__}")

    def write(self, spec: dict[str, Any]) -> None:
        import numpy as np

        np.savez(self.folder / ARRAYS, **self.arrays)
        (self.folder / SPEC).write_text(json.dumps(spec))


def _keras_model(value: Any) -> Any:
    keras = sys.modules.get("keras")  # not imported: not a Keras model (and no import here)
    return value if keras is not None and isinstance(value, keras.Model) else None


def _as_array(value: Any) -> Any:
    """A NumPy array of a tensor, variable or array-like with a dtype; None for anything else."""
    import numpy as np

    if isinstance(value, np.ndarray | np.generic):
        return np.asarray(value)
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        try:
            return np.asarray(value)
        except Exception:
            return None
    return None


def _source(function: Any) -> str | None:
    try:
        return textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return None


def unpack(folder: Path, spec: dict[str, Any], make_function: Any) -> Any:
    """The value a spec describes (the judge's side: no pickle, models in safe mode)."""
    import numpy as np

    with np.load(folder / ARRAYS, allow_pickle=False) as arrays:
        loaded = {key: arrays[key] for key in arrays.files}

    def build(node: dict[str, Any], depth: int = 0) -> Any:
        if depth > MAX_DEPTH + 1:
            raise Unsupported("too deeply nested")
        kind, value = node.get("t"), node.get("v")
        if kind in ("none", "ellipsis"):
            return None if kind == "none" else Ellipsis
        if kind == "bool":
            return bool(value)
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "str":
            return str(value)
        if kind in ("list", "tuple", "set"):
            items = [build(item, depth + 1) for item in value]
            return {"list": list, "tuple": tuple, "set": set}[kind](items)
        if kind == "dict":
            return {build(k, depth + 1): build(v, depth + 1) for k, v in value}
        if kind in ("array", "scalar"):
            array = loaded[str(value)]
            return array if kind == "array" else array[()]
        if kind == "model":
            return load_model(folder / Path(str(value)).name)
        if kind == "function":
            return make_function(str(value), str(node.get("name") or ""), node.get("source"))
        raise Unsupported(f"unknown kind {kind!r}")

    return build(spec)


def load_model(path: Path) -> Any:
    """A Keras model from a `.keras` file, in safe mode: built-in layers only, no code run."""
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:
        raise Unsupported(
            f"the model could not be read back with Keras' built-in layers, losses and "
            f"optimizers ({type(error).__name__}: {' '.join(str(error).split())[:200]})") from None


# The kernel's side.

_handles: dict[int, Any] = {}


def serve(folder: str) -> None:
    """Answer one request of the judge: `request.json` in `folder` -> a packed reply there.

    A request is {"get": name} (a variable of the notebook) or {"call": handle} (a function
    given before, with the packed arguments of the folder `args/`)."""
    from IPython import get_ipython

    folder_path = Path(folder)
    request = json.loads((folder_path / "request.json").read_text())
    reply = folder_path / "reply"
    reply.mkdir()
    packer = Packer(reply, _handles)
    try:
        if "get" in request:
            namespace = get_ipython().user_ns
            name = request["get"]
            spec = packer.pack(namespace[name]) if name in namespace else {"t": "missing"}
        else:
            function = _handles[int(request["call"])]
            args = unpack(folder_path / "args", json.loads(
                (folder_path / "args" / SPEC).read_text()), _not_a_function)
            spec = {"t": "returned", "v": packer.pack(function(*args))}
    except Unsupported as error:
        spec = {"t": "unsupported", "v": str(error)}
    except BaseException as error:  # noqa: B036 - the judge says what the answer raised
        spec = {"t": "raised", "type": type(error).__name__,
                "v": " ".join(str(error).split())[:500]}
    packer.write(spec)


def _not_a_function(*_: Any) -> Any:
    raise Unsupported("the judge sends data only")
