"""Tests for utils.scaling (the bookkeeping and figures of chapter 07's timings on a shared
machine) and for the arguments of the scripts the chapter launches."""

import importlib.util
import sys
from pathlib import Path

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


# --- the figures: legends under the axes, in readable type --------------------------------------
def _legend_fonts(figure):
    legends = [*figure.legends, *(ax.get_legend() for ax in figure.axes if ax.get_legend())]
    return legends, [text.get_fontsize() for legend in legends for text in legend.get_texts()]


@pytest.fixture
def shown_figures(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "show", lambda: figures.append(plt.gcf()))
    yield figures
    plt.close("all")


def test_the_scaling_figure_has_one_readable_legend_below_both_panels(shown_figures):
    scaling.plot_scaling({"vs 1 rank": {1: 1.0, 2: 1.01}}, [1, 2],
                         {"paper": {128: 0.88}, "book": {1: 1.0, 2: 0.875}})
    (figure,) = shown_figures
    legends, sizes = _legend_fonts(figure)
    assert len(legends) == 1 and legends[0] in figure.legends  # the figure's, not a panel's
    assert min(sizes) >= 9
    labels = [text.get_text() for text in legends[0].get_texts()]
    assert labels == ["ideal", "here, vs 1 rank", "paper", "book"]
    here, paper = (line.get_color() for line in legends[0].get_lines()[1:3])
    assert here != paper, "a published series must not share the colour of a measured one"


def test_the_throughput_and_time_to_accuracy_legends_sit_under_their_axes(shown_figures):
    scaling.plot_throughput(STUDY, 5000, [32, 128, 512])
    run = {"np": 2, "threads_per_rank": 1, "device": "cpu", "validation_curve": [[1.0, 0, 0.95]]}
    scaling.plot_time_to_accuracy([run], 0.97)
    for figure in shown_figures:
        legends, sizes = _legend_fonts(figure)
        assert len(legends) == 1 and min(sizes) >= 9
        assert legends[0].get_bbox_to_anchor().y0 < figure.axes[0].get_window_extent().y0


# --- the scripts chapter 07 launches: their arguments, without starting a job ------------------
SCRIPTS = Path(__file__).resolve().parent.parent / "notebooks" / "scripts"


def _script(name):
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # imports neither TensorFlow nor Horovod at the top
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


@pytest.mark.parametrize(("options", "ranks", "rate"), [
    ([], 1, 0.02),  # one rank at the batch the rate is meant for
    ([], 4, 0.08),  # the linear scaling rule
    (["--batch-size", "64", "--base-batch", "128"], 2, 0.02),  # strong scaling: one rank's batch
    (["--batch-size", "32", "--base-batch", "128", "--backward-passes-per-step", "4"], 2, 0.04),
])
def test_the_training_scripts_rate_follows_the_effective_global_batch(options, ranks, rate):
    script = _script("train_mnist_hvd")
    args = script.parse_args(["--batch-size", "128", "--base-lr", "0.02", *options])
    assert script.learning_rate(args, ranks) == pytest.approx(rate)


def test_the_training_script_refuses_accumulation_or_compression_in_its_custom_loop(capsys):
    script = _script("train_mnist_hvd")
    for option in (["--backward-passes-per-step", "2"], ["--compression", "fp16"]):
        with pytest.raises(SystemExit):
            script.parse_args(["--loop", "custom", *option])
        assert "use them with --loop fit" in capsys.readouterr().err


def test_variants_share_the_data_and_override_the_training_scripts_options(tmp_path):
    variants = _script("train_variants")
    sys.path.insert(0, str(SCRIPTS))  # train_variants imports train_mnist_hvd by name
    try:
        out, parsed = variants.parse_args([
            "--train-samples", "1200", "--val-samples", "200", "--batch-size", "128",
            "--variant", "plain", "--variant", "strong:batch-size=64,warmup-epochs=0",
            "--variant", "fp16:compression=fp16", "--out", str(tmp_path / "v.json")])
        assert [name for name, _ in parsed] == ["plain", "strong", "fp16"]
        plain, strong, fp16 = (args for _, args in parsed)
        assert (plain.batch_size, strong.batch_size, strong.warmup_epochs) == (128, 64, 0)
        assert fp16.compression == "fp16" and {a.train_samples for _, a in parsed} == {1200}
        for bad in (["--variant", "x:batch-size"], ["--variant", "x", "--variant", "x"],
                    ["--variant", "x:train-samples=600", "--variant", "y"]):
            with pytest.raises(SystemExit):
                variants.parse_args(["--val-samples", "200", *bad, "--out", "v.json"])
    finally:
        sys.path.remove(str(SCRIPTS))


def _one_device(x, y, args):
    """A docstring is not code."""
    import keras

    model = keras.Sequential([keras.layers.Dense(10)])  # a comment is not code either
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=args.batch_size,
              epochs=args.epochs)  # one call over two lines is one statement
    return model


def _mirrored(x, y, args):
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy()
    with strategy.scope():
        model = keras.Sequential([keras.layers.Dense(10)])  # noqa: F821
        model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs)
    return model, strategy


def test_changed_lines_counts_statements_not_formatting_comments_imports_or_returns():
    assert scaling.code_lines(_one_device)[-1] == (
        "model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs)")
    assert scaling.changed_lines(_one_device, _one_device) == 0
    # strategy =, with ..., and the two indented lines rewritten under it
    assert scaling.changed_lines(_one_device, _mirrored) == 4


def test_the_chapters_data_parallel_versions_change_a_handful_of_lines():
    one_device = _script("mnist_cnn").train_on_one_device
    for version in (_script("train_mnist_hvd").train_with_fit,
                    _script("train_mnist_mirrored").train_with_mirrored_strategy,
                    _script("train_mnist_data_parallel").train_with_data_parallel):
        assert 3 <= scaling.changed_lines(one_device, version) <= 10, version
