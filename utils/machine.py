"""What this machine offers: the processor, read from the operating system, and the devices
and settings of Keras' backend."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

BACKENDS = ("tensorflow", "jax", "torch")  # Keras 3's, by KERAS_BACKEND (tensorflow unless set)

BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # Linux's names for bfloat16 arithmetic


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags as Linux lists them; None where they cannot be read (not Linux)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in {"flags", "Features"}:
            flags.update(value.split())
    return frozenset(flags)


def cpu_has_bfloat16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool | None:
    """Whether the CPU has bfloat16 arithmetic units (AVX-512 BF16 or AMX); None: unknown."""
    flags = cpu_flags(cpuinfo)
    return None if flags is None else bool(BFLOAT16_FLAGS & flags)


def backend() -> tuple[str, ModuleType]:
    """Keras' backend by name, and its module (imported)."""
    import keras

    name = keras.backend.backend()
    if name not in BACKENDS:
        raise RuntimeError(f"KERAS_BACKEND={name!r}: this course runs on {', '.join(BACKENDS)}")
    return name, importlib.import_module(name)


def gpu_count() -> int:
    """How many GPUs Keras' backend sees."""
    name, module = backend()
    if name == "tensorflow":
        return len(module.config.list_physical_devices("GPU"))
    if name == "jax":
        return sum(device.platform == "gpu" for device in module.devices())
    return module.cuda.device_count()


def float32_products() -> str:
    """The backend's setting for float32 matrix products on GPUs with TF32 tensor cores (Ampere
    and later), in words."""
    name, module = backend()
    if name == "tensorflow":
        enabled = module.config.experimental.tensor_float_32_execution_enabled()
        return f"TensorFlow runs them as TF32: {enabled}"
    if name == "jax":
        precision = module.config.jax_default_matmul_precision
        return f"JAX's jax_default_matmul_precision is {precision!r} (None: the platform's default)"
    return (f"PyTorch's float32 matmul precision is {module.get_float32_matmul_precision()!r} "
            "('highest': no TF32; 'high': TF32)")
