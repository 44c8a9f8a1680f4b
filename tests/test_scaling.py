"""Tests for utils.scaling: the bookkeeping of chapter 06's timings on a shared machine."""

import pytest

from utils import scaling


def row(device="cpu", threads=2, xla=False, batch_size=128, images_per_second=1000.0):
    return {"device": device, "threads": threads, "xla": xla, "batch_size": batch_size,
            "images_per_second": images_per_second}


STUDY = [row(threads=1, batch_size=32, images_per_second=900),
         row(threads=1, batch_size=128, images_per_second=1100),
         row(batch_size=32, images_per_second=1500), row(batch_size=128, images_per_second=2000),
         row(batch_size=512, images_per_second=2100),
         row(xla=True, batch_size=512, images_per_second=1200)]


def test_summarize_throughput_picks_the_fastest_rows_of_each_kind():
    study = scaling.summarize_throughput(STUDY)
    assert study.best["images_per_second"] == 2100
    assert study.best_plain["batch_size"] == 512
    assert study.best_xla["images_per_second"] == 1200
    assert study.one_thread["images_per_second"] == 1100


def test_summarize_throughput_without_xla_rows_has_no_xla_best():
    assert scaling.summarize_throughput([r for r in STUDY if not r["xla"]]).best_xla is None


def test_summarize_throughput_rejects_a_study_without_cpu_rows():
    with pytest.raises(ValueError, match="cpu"):
        scaling.summarize_throughput([row(device="gpu")])


def test_fastest_batch_stays_within_the_largest_allowed_batch():
    assert scaling.fastest_batch(STUDY, device="cpu", threads=2, max_batch=128) == 128
    assert scaling.fastest_batch(STUDY, device="cpu", threads=2, max_batch=1024) == 512
    with pytest.raises(ValueError, match="no throughput row"):
        scaling.fastest_batch(STUDY, device="gpu", threads=2, max_batch=128)


def test_a_baseline_slower_than_half_of_two_ranks_is_measured_again(capsys):
    runs = {2: {"images_per_second": 2000}, 1: {"images_per_second": 700},
            "half": {"images_per_second": 900}}
    again = []
    scaling.remeasure_slow_baselines(
        runs, [1, "half"], lambda key: again.append(key) or {"images_per_second": 1500})
    assert again == [1]  # 2000 > 2.3 x 700, but not > 2.3 x 900
    assert runs[1]["images_per_second"] == 1500 and runs["half"]["images_per_second"] == 900
    assert "measuring it again" in capsys.readouterr().out


def test_notes_appear_only_for_implausible_timings():
    assert scaling.speedup_note(1.7, ranks=2) is None
    assert "more than they can do" in scaling.speedup_note(2.4, ranks=2)
    assert scaling.efficiency_note(0.4) is None
    assert "yardstick" in scaling.efficiency_note(1.2)
