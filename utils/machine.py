"""What this machine's processor offers, read from the operating system."""

from __future__ import annotations

from pathlib import Path

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
