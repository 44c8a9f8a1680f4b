"""tools/bench.py: the summary statistics, the Markdown table and the command line."""

import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "bench", Path(__file__).resolve().parent.parent / "tools" / "bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_stats_give_the_median_and_the_spread_of_the_runs():
    assert bench.stats([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0,
                                            "runs": [3.0, 1.0, 2.0]}


def test_the_table_has_a_row_per_timing_and_skips_plain_values(capsys):
    report = {"machine": "test box", "repeat": 2, "results": {
        "grading": {"copies": 4, "seconds": bench.stats([10.0, 12.0])},
        "setup": {"cached_wheel": bench.stats([80.0, 90.0])},
        "throughput": {"matmul_flop_per_second": bench.stats([1.9e11, 2.0e11, 2.1e11])}}}
    bench.print_table(report)
    out = capsys.readouterr().out
    assert "machine: test box; 2 runs of each timing" in out
    assert "| grading: seconds | 11 | 10 - 12 |" in out
    assert "| setup: cached_wheel | 85 | 80 - 90 |" in out
    assert "| throughput: matmul_flop_per_second | 200,000,000,000 | 190,000,000,000 - " in out
    assert "copies" not in out


@pytest.mark.parametrize("args, message", [
    (["--repeat", "0"], "must be at least 1"), (["--grading-copies", "0"], "must be at least 1"),
    (["--only", "everything"], "invalid choice: 'everything'")])
def test_bad_arguments_are_refused_before_anything_runs(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main([*args, "--out", str(tmp_path / "bench.json")])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bench.json").exists()
