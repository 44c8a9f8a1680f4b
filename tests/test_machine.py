"""Tests for utils.machine: reading the processor's features."""

from utils import machine


def test_cpu_has_bfloat16_reads_the_flags_linux_lists(tmp_path):
    with_amx, without = tmp_path / "amx", tmp_path / "avx2"
    with_amx.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 amx_bf16 amx_tile\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\n")
    assert machine.cpu_has_bfloat16(with_amx) is True
    assert machine.cpu_has_bfloat16(without) is False
    assert "avx2" in machine.cpu_flags(without)


def test_cpu_has_bfloat16_is_unknown_where_nothing_can_be_read(tmp_path):
    assert machine.cpu_has_bfloat16(tmp_path / "missing") is None
