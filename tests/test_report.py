"""`lrgen report`: metrics of hand-made records against values worked out by
hand here, the ranking and its ties, seeds, failures, the files it writes
and the command line.

Spreads are sample standard deviations (`statistics.stdev`), as the report
states: over seeds, and of the test loss over the last third of the run.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from typer.testing import CliRunner

from lrgen import report as report_module
from lrgen.cli import app
from lrgen.report import (
    PICTURES,
    REPORT,
    Results,
    class_figure,
    family_figure,
    read_results,
    write_report,
)

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSES = ["0", "1", "2"]


def write_record(
    synth: Path,
    folder: str,
    accuracy: list[float] | list[list[float]],
    loss: list[float] | list[list[float]] | None = None,
    *,
    lr: list[float] | None = None,
    seconds: float = 1.5,
    class_accuracy: list[float] | None = None,
    status: str = "ok",
    error: str | None = None,
    dataset: str = "digits",
) -> Path:
    """A variant folder holding an lrgen_eval.json with these numbers: one
    list a seed (a flat list is one seed)."""
    runs_acc = accuracy if isinstance(accuracy[0], list) else [accuracy]
    runs_loss: Any = loss if loss is not None else [
        [1.0 - a for a in run] for run in runs_acc
    ]
    if not isinstance(runs_loss[0], list):
        runs_loss = [runs_loss]
    runs = []
    for seed, (accs, losses) in enumerate(zip(runs_acc, runs_loss)):
        assert isinstance(accs, list)
        rates = lr or [0.01] * len(accs)
        runs.append({
            "seed": seed, "status": status, "error": error,
            "epochs": [] if status == "failed" else [
                {"epoch": e, "train_loss": 0.5, "train_accuracy": 0.5,
                 "test_loss": lo, "test_accuracy": a, "lr": r,
                 "seconds": seconds, "samples_per_second": 100.0}
                for e, (a, lo, r) in enumerate(zip(accs, losses, rates), 1)
            ],
            "class_accuracy": class_accuracy,
            "confusion": None,
        })
    record = {
        "format": 1, "variant": folder, "name": None, "family": None,
        "status": status, "error": error,
        "settings": {"dataset": dataset, "limit": None, "epochs": len(runs_acc[0]),
                     "epoch_max": None, "batch": None,
                     "seeds": list(range(len(runs)))},
        "code_sha256": "0" * 64, "hp_sha256": "0" * 64, "prm": {},
        "classes": CLASSES, "train_samples": 30, "test_samples": 9,
        "runs": runs,
    }
    path = synth / folder / "lrgen_eval.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, sort_keys=True, indent=2))
    return path


def only(results: Results, folder: str) -> report_module.Result:
    (found,) = [r for r in results.ranked if r.folder == folder]
    return found


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


# ----------------------------------------------------------------------------
# Metrics, worked out by hand
# ----------------------------------------------------------------------------


def test_metrics_of_a_four_epoch_record(tmp_path: Path) -> None:
    write_record(tmp_path, "A0_001", [0.2, 0.5, 0.8, 0.79], [2.0, 1.2, 1.3, 1.25])
    r = only(read_results(tmp_path), "A0_001")
    assert r.name == "StepLR_default" and r.family == "StepLR"  # from the catalog
    assert r.final.mean == 0.79 and r.final.std is None
    assert (r.best.mean, r.best_epoch) == (0.8, 3)
    assert r.converged_epoch == 3  # 0.95 x 0.8 = 0.76: 0.5 < 0.76 <= 0.8
    assert r.last_third == 2  # a third of 4 is 1.33, rounded up to 2
    assert r.loss_spread == pytest.approx(statistics.stdev([1.3, 1.25]))
    assert r.loss_spread == pytest.approx(0.05 / math.sqrt(2))
    assert r.loss_rises == 1  # 1.2 -> 1.3 only
    assert r.seconds == pytest.approx(4 * 1.5)


def test_metrics_of_a_seven_epoch_record(tmp_path: Path) -> None:
    accuracy = [0.1, 0.3, 0.6, 0.9, 0.85, 0.9, 0.88]
    loss = [2.3, 1.9, 1.0, 0.5, 0.6, 0.55, 0.7]
    write_record(tmp_path, "A0_009", accuracy, loss)
    r = only(read_results(tmp_path), "A0_009")
    assert (r.best.mean, r.best_epoch) == (0.9, 4)  # its first epoch at 0.9
    assert r.converged_epoch == 4  # 0.855: 0.6 is below, 0.9 above
    assert r.last_third == 3  # 7 / 3 = 2.33, rounded up
    assert r.loss_spread == pytest.approx(statistics.stdev([0.6, 0.55, 0.7]))
    assert r.loss_spread == pytest.approx(0.076376, abs=1e-6)
    assert r.loss_rises == 2  # 0.5 -> 0.6 and 0.55 -> 0.7


@pytest.mark.parametrize(
    ("accuracy", "epoch"),
    [
        ([0.5, 0.86, 0.9], 2),  # 0.855 is passed at epoch 2
        ([0.5, 0.855, 0.9], 2),  # reached exactly
        ([0.5, 0.85, 0.9], 3),  # just short of it
        ([0.9, 0.2, 0.3], 1),  # the best first
    ],
)
def test_converged_epoch_is_the_first_at_95_percent_of_the_best(
    tmp_path: Path, accuracy: list[float], epoch: int
) -> None:
    write_record(tmp_path, "A0_005", accuracy)
    assert only(read_results(tmp_path), "A0_005").converged_epoch == epoch


def test_last_third_is_at_least_two_epochs(tmp_path: Path) -> None:
    write_record(tmp_path, "A0_001", [0.5, 0.6, 0.7], [1.0, 0.8, 0.9])
    write_record(tmp_path, "A0_002", [0.5], [1.0])
    results = read_results(tmp_path)
    three = only(results, "A0_001")
    assert three.last_third == 2  # a third of 3 is 1, raised to 2
    assert three.loss_spread == pytest.approx(0.1 / math.sqrt(2))
    one = only(results, "A0_002")
    assert one.loss_spread is None and one.loss_rises == 0


def test_repeats_give_the_mean_and_sample_spread_per_epoch(tmp_path: Path) -> None:
    write_record(tmp_path, "A0_010", [[0.5, 0.7], [0.7, 0.9], [0.6, 0.8]],
                 [[1.0, 0.8], [1.2, 0.6], [1.1, 0.7]])
    r = only(read_results(tmp_path), "A0_010")
    assert r.seeds == (0, 1, 2)
    assert [a.mean for a in r.accuracy] == pytest.approx([0.6, 0.8])
    # sample standard deviation of (0.5, 0.7, 0.6): sqrt(0.02 / 2) = 0.1
    assert [a.std for a in r.accuracy] == pytest.approx([0.1, 0.1])
    assert [s.mean for s in r.loss] == pytest.approx([1.1, 0.7])
    assert r.final.mean == pytest.approx(0.8) and r.final.std == pytest.approx(0.1)
    assert r.seconds == pytest.approx(3 * 2 * 1.5)


def test_repeats_show_as_mean_plus_minus_std(tmp_path: Path) -> None:
    write_record(tmp_path, "A0_010", [[0.5, 0.7], [0.7, 0.9]])
    out = tmp_path / "out"
    write_report(read_results(tmp_path), out)
    text = (out / REPORT).read_text()
    # final: mean 0.8, stdev(0.7, 0.9) = 0.1 * sqrt(2) = 0.1414
    assert "| 80.00 ± 14.14 |" in text
    assert "seeds 0 and 1" in text.splitlines()[0]


# ----------------------------------------------------------------------------
# Ranking and the three answers
# ----------------------------------------------------------------------------


def test_ranking_by_final_then_best_then_folder(tmp_path: Path) -> None:
    write_record(tmp_path, "A0_001", [0.92, 0.9])
    write_record(tmp_path, "A0_003", [0.95, 0.9])
    write_record(tmp_path, "A0_002", [0.95, 0.9])
    write_record(tmp_path, "A0_004", [0.5, 0.95])
    results = read_results(tmp_path)
    assert [r.folder for r in results.ranked] == ["A0_004", "A0_002", "A0_003",
                                                  "A0_001"]
    top = results.answers()[0]
    assert top.question == "Most accurate at the end"
    assert top.result is not None and top.result.folder == "A0_004"


def test_a_tie_on_final_accuracy_is_named(tmp_path: Path) -> None:
    write_record(tmp_path, "A0_002", [0.95, 0.9])  # the same final, best higher
    write_record(tmp_path, "A0_001", [0.85, 0.9])
    answer = read_results(tmp_path).answers()[0]
    assert answer.result is not None and answer.result.folder == "A0_002"
    assert "tied on final accuracy with A0_001 StepLR_default" in answer.because


def test_fastest_among_contenders_ties_go_to_the_better_ranked(
    tmp_path: Path,
) -> None:
    # never learns: at its best at once, but far below the others
    write_record(tmp_path, "A0_001", [0.3, 0.2, 0.25])
    write_record(tmp_path, "A0_002", [0.5, 0.91, 0.91])  # converged at epoch 2
    write_record(tmp_path, "A0_003", [0.5, 0.92, 0.93])  # also 2, better final
    write_record(tmp_path, "A0_004", [0.4, 0.6, 0.95])  # best, converges at 3
    results = read_results(tmp_path)
    assert {r.folder for r in results.contenders()} == {"A0_002", "A0_003",
                                                        "A0_004"}
    fastest = results.answers()[1]
    assert fastest.result is not None and fastest.result.folder == "A0_003"
    assert "tied on that epoch with A0_002" in fastest.because


def test_a_long_tie_names_three_and_counts_the_rest(tmp_path: Path) -> None:
    for number in range(1, 7):  # all converge at epoch 2; A0_006 ends best
        write_record(tmp_path, f"A0_{number:03d}", [0.5, 0.95, 0.95 + number / 1000])
    fastest = read_results(tmp_path).answers()[1]
    assert fastest.result is not None and fastest.result.folder == "A0_006"
    assert fastest.because.endswith(
        "tied on that epoch with A0_005 ExponentialLR_default, A0_004 "
        "MultiStepLR_four_milestones, A0_003 StepLR_long_decay and 2 more: the "
        "ranking (final, then best accuracy) decides"
    )


def test_most_stable_ties_go_to_fewer_rises(tmp_path: Path) -> None:
    # the same loss values over the last third (2 of 4 epochs): equal spread
    write_record(tmp_path, "A0_001", [0.8, 0.9, 0.9, 0.9], [1.0, 0.9, 0.5, 0.4])
    write_record(tmp_path, "A0_002", [0.8, 0.9, 0.9, 0.91], [0.8, 0.9, 0.5, 0.4])
    write_record(tmp_path, "A0_003", [0.8, 0.9, 0.9, 0.92], [1.0, 0.9, 0.5, 0.1])
    results = read_results(tmp_path)
    stable = results.answers()[2]
    assert stable.result is not None
    assert stable.result.folder == "A0_001"  # 0 rises against A0_002's 1
    assert "tied on that spread with A0_002" in stable.because


# ----------------------------------------------------------------------------
# Failed, unreadable and missing results
# ----------------------------------------------------------------------------


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Two trained variants, one failed, one unreadable, two without results."""
    synth = tmp_path / "synth_nn"
    write_record(synth, "A0_001", [0.5, 0.8, 0.9], class_accuracy=[0.9, 0.8, 1.0])
    write_record(synth, "A0_018", [0.6, 0.7, 0.85], lr=[0.1, 0.001, 0.00001],
                 class_accuracy=[1.0, 0.7, 0.85])
    write_record(synth, "A0_009", [0.1], status="failed",
                 error="RuntimeError: the loss is nan | at `epoch 2`")
    (synth / "A0_010").mkdir()
    (synth / "A0_010" / "lrgen_eval.json").write_text("{not json")
    (synth / "A0_011").mkdir()
    (synth / "A0_012").mkdir()
    (synth / "notes").mkdir()  # not a variant folder
    return synth


def test_failed_and_unreadable_variants_are_listed(mixed: Path) -> None:
    results = read_results(mixed)
    assert [r.folder for r in results.ranked] == ["A0_001", "A0_018"]
    failed = {f.folder: f.error for f in results.failed}
    assert failed["A0_009"] == "RuntimeError: the loss is nan | at `epoch 2`"
    assert failed["A0_010"].startswith("lrgen_eval.json cannot be read")
    assert "lrgen eval --only A0_010 --force" in failed["A0_010"]
    assert results.missing == ["A0_011", "A0_012"]


def test_results_of_changed_code_are_named(tmp_path: Path) -> None:
    trained = hashlib.sha256(b"the code trained\n").hexdigest()
    for folder in ("A0_001", "A0_002", "A0_003"):
        path = write_record(tmp_path, folder, [0.5, 0.9])
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "code_sha256": trained}))
    (tmp_path / "A0_001" / "new_nn.py").write_text("the code trained\n")
    (tmp_path / "A0_002" / "new_nn.py").write_text("regenerated since\n")
    results = read_results(tmp_path)  # A0_003 has no new_nn.py: no change seen
    assert results.stale == ["A0_002"]
    assert len(results.ranked) == 3
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert ("1 variant's new_nn.py or hp.txt changed since training (A0_002); "
            "run lrgen eval again for them") in " ".join(result.output.split())


def test_a_record_of_another_shape_is_listed(tmp_path: Path) -> None:
    write_record(tmp_path, "A0_001", [0.5, 0.8])
    path = write_record(tmp_path, "A0_002", [0.5, 0.8])
    path.write_text(path.read_text().replace('"classes": [', '"classes": 5, "x": ['))
    results = read_results(tmp_path)
    assert [r.folder for r in results.ranked] == ["A0_001"]
    (failure,) = results.failed
    assert failure.error.startswith("lrgen_eval.json is not a record this lrgen "
                                    "wrote (TypeError); train it again")


def test_a_record_of_another_format_is_listed(tmp_path: Path) -> None:
    write_record(tmp_path, "A0_001", [0.5, 0.9])
    path = write_record(tmp_path, "A0_002", [0.5, 0.9])
    path.write_text(json.dumps({**json.loads(path.read_text()), "format": 2}))
    (failure,) = read_results(tmp_path).failed
    assert failure.folder == "A0_002" and "has format 2" in failure.error


def test_the_report_lists_failures_and_missing_results(mixed: Path) -> None:
    result = runner.invoke(app, ["report", str(mixed)])
    assert result.exit_code == 0, result.output
    text = (mixed / REPORT).read_text()
    failed = text.split("## Failed variants")[1].split("##")[0]
    # the error as a code span, its backticks and bar kept
    assert ("- A0_009 CosineAnnealingLR_default: `` RuntimeError: the loss is nan "
            "| at `epoch 2` ``") in failed
    assert "- A0_010 CosineAnnealingLR_with_min_lr: `lrgen_eval.json cannot" in failed
    assert "2 variants have no results; run lrgen eval: A0_011, A0_012." in text
    assert "2 variants have no results; run lrgen eval" in result.output
    assert "failed: A0_009 CosineAnnealingLR_default: RuntimeError" in result.output


def test_no_results_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "A0_001").mkdir()
    (tmp_path / "A0_002").mkdir()
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "none of its 2 variant folders has results; run lrgen eval" in (
        result.output)
    assert not (tmp_path / REPORT).exists() and not (tmp_path / PICTURES).exists()


def test_only_failed_variants_is_one_line_and_exit_2(tmp_path: Path) -> None:
    write_record(tmp_path, "A0_001", [0.1], status="failed", error="boom")
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "every variant with results failed (1; A0_001 StepLR_default: boom)" in (
        " ".join(result.output.split()))


def test_missing_matplotlib_is_one_line(
    mixed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = runner.invoke(app, ["report", str(mixed)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "pip install 'lrgen[plot]'" in result.output
    assert not (mixed / REPORT).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--top", "0"], "--top must be at least 1"),
        (["--format", "pdf"], "--format pdf: lrgen report draws png or svg"),
        (["--out", "{synth}/A0_001/lrgen_eval.json"], "is not a folder"),
        (["--out", "{synth}/summary.md"], "names the folder report.md goes into, "
         "not the file"),
    ],
    ids=["top-0", "pdf", "out-is-a-file", "out-is-a-report-file"],
)
def test_bad_options_are_one_line(
    mixed: Path, args: list[str], message: str
) -> None:
    args = [a.format(synth=mixed) for a in args]
    result = runner.invoke(app, ["report", str(mixed), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (mixed / REPORT).exists()


# ----------------------------------------------------------------------------
# The files and the terminal
# ----------------------------------------------------------------------------


def test_cli_prints_the_table_and_the_answers(mixed: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    result = runner.invoke(app, ["report", str(mixed), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    first = next(i for i, line in enumerate(lines) if "A0_001 StepLR_default" in line)
    second = next(i for i, line in enumerate(lines) if "A0_018 OneCycleLR_def" in line)
    assert first < second
    row = r"│\s+1 │ A0_001 StepLR_default\s+│ StepLR\s+│\s+90\.00 │"
    assert re.search(row, lines[first])
    for answer in ("Most accurate at the end: A0_001", "Fastest to converge:",
                   "Most stable:"):
        assert answer in result.output
    assert (out / REPORT).is_file() and not (mixed / REPORT).exists()
    quiet = runner.invoke(app, ["report", str(mixed), "--out", str(out), "-q"])
    assert quiet.exit_code == 0 and quiet.output == ""


def test_variants_trained_alike_give_no_warning(mixed: Path) -> None:
    assert report_module.mixed_line(read_results(mixed)) is None


def test_variants_trained_differently_are_named_in_a_warning(
    tmp_path: Path,
) -> None:
    synth = tmp_path / "synth_nn"
    write_record(synth, "A0_001", [0.5, 0.8, 0.9])
    write_record(synth, "A0_002", [0.5, 0.8])
    write_record(synth, "A0_003", [0.5, 0.7], dataset="cifar10")
    results = read_results(synth)
    line = report_module.mixed_line(results)
    assert line is not None
    assert 'dataset "cifar10" or "digits"; epochs 2 or 3' in line
    text = report_module.markdown(results, {"accuracy.png": "Accuracy"})
    assert f"**Warning:** {line}." in text
    result = runner.invoke(app, ["report", str(synth), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "warning: the variants were trained with different settings" in (
        " ".join(result.stderr.split())
    )


def test_the_weight_of_one_test_image_is_told(tmp_path: Path) -> None:
    synth = tmp_path / "synth_nn"
    write_record(synth, "A0_001", [0.5, 0.8])
    write_record(synth, "A0_002", [0.5, 0.7])
    line = report_module.resolution_line(read_results(synth))
    assert line is not None and line.startswith(
        "one test image is 11.11 points of accuracy on these 9 test images"
    )  # write_record's records are scored on 9 images: 100 / 9 = 11.11
    text = report_module.markdown(read_results(synth), {"accuracy.png": "A"})
    assert "\nOne test image is 11.11 points" in text


def test_one_epoch_runs_are_not_told_of_a_last_third(tmp_path: Path) -> None:
    synth = tmp_path / "synth_nn"
    write_record(synth, "A0_001", [0.5])
    note = report_module.third_note(read_results(synth))
    assert "at least 2" not in note and "no spread" in note


def test_images_exist_and_report_references_each(mixed: Path) -> None:
    written, pictures = write_report(read_results(mixed), mixed, top=5)
    text = written.read_text()
    linked = re.findall(r"\]\((report_files/[^)]+)\)", text)
    on_disk = sorted(p.relative_to(mixed).as_posix()
                     for p in (mixed / PICTURES).iterdir())
    assert sorted(set(linked)) == on_disk
    assert sorted(p.relative_to(mixed).as_posix() for p in pictures) == on_disk
    assert {Path(p).name for p in on_disk} == {
        "accuracy.png", "convergence.png", "stability.png", "classes.png",
        "family-StepLR.png", "family-OneCycleLR.png",
    }
    for path in on_disk:
        assert (mixed / path).read_bytes().startswith(PNG_MAGIC)
    assert text.startswith("# Training report: 4 variants on digits, 3 epochs, "
                           "seed 0\n")
    assert "### Accuracy per class of the top 2\n" in text  # of --top 5, 2 trained
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[1].startswith("| 1 | A0_001 | StepLR_default | StepLR | 90.00 |")
    assert table[2].startswith("| 2 | A0_018 | OneCycleLR_default | OneCycleLR |")
    # nothing left over beside the report
    hidden = [p.name for p in mixed.iterdir() if p.name.startswith(".")]
    assert hidden == []


@pytest.mark.parametrize("ext", ["png", "svg"])
def test_same_input_gives_byte_identical_files(
    mixed: Path, tmp_path: Path, ext: str
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        result = runner.invoke(app, ["report", str(mixed), "--out", str(out),
                                     "--format", ext, "-q"])
        assert result.exit_code == 0, result.output
    assert files_of(first) == files_of(second)
    assert f"report_files/accuracy.{ext}" in files_of(first)
    data = files_of(first)[f"report_files/accuracy.{ext}"]
    assert b"Date" not in data and b"matplotlib v" not in data.lower()
    # and again over itself
    before = files_of(first)
    runner.invoke(app, ["report", str(mixed), "--out", str(first), "--format", ext])
    assert files_of(first) == before


def test_a_failed_write_leaves_the_old_report(
    mixed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_report(read_results(mixed), mixed)
    before = files_of(mixed)

    def broken(*args: object) -> Figure:
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(report_module, "stability_figure", broken)
    write_record(mixed, "A0_011", [0.2, 0.95, 0.97])
    with pytest.raises(RuntimeError):
        write_report(read_results(mixed), mixed)
    after = files_of(mixed)
    del after["A0_011/lrgen_eval.json"]
    assert after == before
    assert [p.name for p in mixed.iterdir() if p.name.endswith(".tmp")] == []


def test_a_new_report_replaces_the_old_pictures_whole(mixed: Path) -> None:
    write_report(read_results(mixed), mixed)
    assert (mixed / PICTURES / "family-OneCycleLR.png").exists()
    (mixed / "A0_018" / "lrgen_eval.json").unlink()
    write_report(read_results(mixed), mixed, ext="svg")
    assert sorted(p.name for p in (mixed / PICTURES).iterdir()) == [
        "accuracy.svg", "classes.svg", "convergence.svg", "family-StepLR.svg",
        "stability.svg",
    ]


# ----------------------------------------------------------------------------
# What the pictures show
# ----------------------------------------------------------------------------


def laid_out(figure: Figure) -> Figure:
    FigureCanvasAgg(figure).draw()
    return figure


def assert_legends_clear(figure: Figure) -> None:
    """Every legend inside the picture, over no axes and not over the title."""
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    whole = figure.bbox
    boxes = [ax.get_window_extent(renderer) for ax in figure.axes]
    for title in figure.texts:  # the figure's own title
        box = title.get_window_extent(renderer)
        assert whole.x0 <= box.x0 and box.x1 <= whole.x1 and box.y1 <= whole.y1
        boxes.append(box)
    legends = [*figure.legends, *(ax.get_legend() for ax in figure.axes)]
    for legend in [lg for lg in legends if lg is not None]:
        box = legend.get_window_extent(renderer)
        assert whole.x0 <= box.x0 and box.x1 <= whole.x1
        assert whole.y0 <= box.y0 and box.y1 <= whole.y1
        for other in boxes:
            assert not box.overlaps(other), "a legend covers a plot or the title"


def test_pictures_keep_legends_clear_of_data(mixed: Path) -> None:
    results = read_results(mixed)
    fastest, stable = (a.result for a in results.answers()[1:])
    for figure in (
        report_module.accuracy_figure(results),
        report_module.convergence_figure(results, fastest),
        report_module.stability_figure(results, stable),
        family_figure("OneCycleLR", results.ranked[1:], repeated=True),
    ):
        assert_legends_clear(laid_out(figure))


def test_rates_spanning_decades_are_drawn_in_log_scale(mixed: Path) -> None:
    results = read_results(mixed)
    wide = laid_out(family_figure("OneCycleLR", [only(results, "A0_018")], False))
    narrow = laid_out(family_figure("StepLR", [only(results, "A0_001")], False))
    # each figure: two measures (linear) and their two rate axes
    assert sorted(ax.get_yscale() for ax in wide.axes) == ["linear", "linear",
                                                           "log", "log"]
    assert {ax.get_yscale() for ax in narrow.axes} == {"linear"}


def test_class_chart_shows_the_top_variants_with_class_accuracy(
    mixed: Path,
) -> None:
    write_record(mixed, "A0_002", [0.5, 0.99])  # first, but no class accuracy
    results = read_results(mixed)
    figure = class_figure(results, top=1)
    assert figure is not None
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == ["2. A0_001 StepLR_default"]
    two = class_figure(results, top=5)
    assert two is not None
    texts = sorted(t.get_text() for t in two.axes[0].texts)
    assert texts == sorted(["90", "80", "100", "100", "70", "85"])


def test_importing_the_report_needs_neither_matplotlib_nor_torch() -> None:
    code = ("import sys, lrgen.report, lrgen.cli; "
            "print(sorted(m for m in ('matplotlib', 'torch') if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True,
                           text=True, check=True)
    assert found.stdout.strip() == "[]"
