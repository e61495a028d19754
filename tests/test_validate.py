"""`lrgen validate`: the committed variants pass every check, and broken ones
are caught by the check that should catch them, with a message that says
what is wrong.

One full run over the committed folder (module-scoped, ~30-90 s); the rest
runs small copies: single variants in-process with `check_variant`, a few
folders through `validate()` and the command line.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lrgen import catalog
from lrgen.cli import app
from lrgen.validate import (
    CHECKS,
    DIVERSITY_MIN,
    Report,
    VariantReport,
    check_variant,
    validate,
)

SYNTH = Path(__file__).parents[1] / "out/nngpt/llm/epoch/A0/synth_nn"
DRAWS = 5


# ----------------------------------------------------------------------------
# Helpers: copy a committed variant, break its text.
# ----------------------------------------------------------------------------


def copy_variant(variant_id: str, root: Path, as_name: str | None = None) -> Path:
    """A copy of a committed variant folder under `root`."""
    target = root / (as_name or variant_id)
    shutil.copytree(SYNTH / variant_id, target)
    return target


def edit(folder: Path, old: str, new: str) -> None:
    """Replace `old` (which must occur exactly once) in new_nn.py by `new`."""
    path = folder / "new_nn.py"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (
        f"{path}: expected `{old}` once, found {text.count(old)}"
    )
    path.write_text(text.replace(old, new), encoding="utf-8")


def broken(tmp_path: Path, variant_id: str, *edits: tuple[str, str]) -> Path:
    folder = copy_variant(variant_id, tmp_path)
    for old, new in edits:
        edit(folder, old, new)
    return folder


def failures(report: VariantReport) -> dict[str, str]:
    return {n: c.message for n, c in report.checks.items() if c.ok is False}


# ----------------------------------------------------------------------------
# The committed folder: one full run.
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def committed_report() -> Report:
    return validate(SYNTH)


def test_committed_folder_passes_every_check(committed_report: Report) -> None:
    report = committed_report
    assert [v.folder for v in report.variants] == [v.id for v in catalog.VARIANTS]
    problems = []
    for got, variant in zip(report.variants, catalog.VARIANTS):
        assert got.name == variant.name
        assert tuple(got.checks) == CHECKS, got.folder
        for name, check in got.checks.items():
            expected = (
                None if (name == "budget" and variant.stepping == "epoch") else True
            )
            if check.ok is not expected:
                problems.append(
                    f"{got.folder} {got.name} {name}: {check.ok} {check.message}"
                )
        assert got.ok
        assert (
            len(got.trajectory)
            == json.loads((SYNTH / variant.id / "hp.txt").read_text())["epoch_max"]
        ), got.folder
    assert not problems, "\n".join(problems)
    assert report.closest is not None
    assert report.diversity_ok, report.closest
    assert report.closest[2] >= DIVERSITY_MIN
    assert report.ok


def test_committed_report_messages(committed_report: Report) -> None:
    """Passing checks say what they proved; n/a says why."""
    for v in committed_report.variants:
        assert re.fullmatch(r"\d+ steps match", v.checks["trajectory"].message)
        assert v.checks["search"].message == "25 draws"
        assert v.checks["resume"].message == "3 + 5 epochs equal 8"
        budget = v.checks["budget"]
        if budget.ok is None:
            assert budget.message == "per-epoch schedule"
        else:
            assert budget.message == "5 x 782 batches, rates as the closed form"


def test_cli_on_a_small_copy(tmp_path: Path) -> None:
    synth = tmp_path / "synth_nn"
    synth.mkdir()
    for variant_id in ("A0_005", "A0_020"):  # one per-epoch, one per-batch
        copy_variant(variant_id, synth)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        app, ["validate", str(synth), "--draws", "3", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert f"lrgen validate {synth}" in text
    for name in ("variant", *CHECKS):
        assert name in text
    assert re.search(r"A0_005 ExponentialLR_default .*pass.*n/a.*pass", text)
    assert "A0_020 OneCycleLR_linear_anneal" in text
    assert "FAIL" not in text
    assert "diversity pass: closest default trajectories" in text
    assert "2 of 2 variants pass every check in" in text

    data = json.loads(out.read_text())
    assert set(data) == {"ok", "seconds", "variants", "diversity"}
    assert data["ok"] is True and data["seconds"] > 0
    assert [v["folder"] for v in data["variants"]] == ["A0_005", "A0_020"]
    assert [v["name"] for v in data["variants"]] == [
        "ExponentialLR_default",
        "OneCycleLR_linear_anneal",
    ]
    for v in data["variants"]:
        assert set(v) == {"folder", "name", "ok", "checks"} and v["ok"] is True
        assert list(v["checks"]) == list(CHECKS)
        for check in v["checks"].values():
            assert set(check) == {"ok", "message", "seconds"}
            assert isinstance(check["message"], str) and check["seconds"] >= 0
    assert data["variants"][0]["checks"]["budget"]["ok"] is None
    assert data["variants"][1]["checks"]["budget"]["ok"] is True
    assert data["variants"][0]["checks"]["search"]["message"] == "3 draws"
    diversity = data["diversity"]
    assert set(diversity) == {"ok", "closest", "distance", "minimum"}
    assert diversity["ok"] is True and diversity["minimum"] == DIVERSITY_MIN
    assert diversity["closest"] == [
        "A0_005 ExponentialLR_default",
        "A0_020 OneCycleLR_linear_anneal",
    ]
    assert diversity["distance"] >= DIVERSITY_MIN


# ----------------------------------------------------------------------------
# Broken variants, in-process.
# ----------------------------------------------------------------------------

ONE_CYCLE_BUDGET = "total_steps = epochs * batches_per_epoch"
ONE_CYCLE_GUARD = (
    "            if self.scheduler.last_epoch + 1 < self.scheduler.total_steps:\n"
    "                self.scheduler.step()\n"
)
ONE_CYCLE_NO_GUARD = "            self.scheduler.step()\n"


def test_fixed_per_batch_budget_is_caught_by_trajectory(tmp_path: Path) -> None:
    """(a) OneCycleLR sized 2500 batches whatever the run: the rate no longer
    follows the closed form. (learn() stops stepping at the scheduler's own
    total_steps, so it never overruns: the budget check alone would pass.)"""
    folder = broken(tmp_path, "A0_018", (ONE_CYCLE_BUDGET, "total_steps = 2500"))
    report = check_variant(str(folder), DRAWS, 0)
    assert not report.ok
    assert report.checks["trajectory"].ok is False
    assert re.match(
        r"epoch 1, batch \d+, group 0: rate [\d.e-]+, closed form [\d.e-]+$",
        report.checks["trajectory"].message,
    ), report.checks["trajectory"].message


def test_fixed_per_batch_budget_without_guard_overruns(tmp_path: Path) -> None:
    """(a) The same fixed budget, stepped after every batch without learn()'s
    guard: 5 CIFAR-10 epochs (3910 batches) step past 2500."""
    folder = broken(
        tmp_path, "A0_018",
        (ONE_CYCLE_BUDGET, "total_steps = 2500"),
        (ONE_CYCLE_GUARD, ONE_CYCLE_NO_GUARD),
    )  # fmt: skip
    report = check_variant(str(folder), DRAWS, 0)
    budget = report.checks["budget"]
    assert budget.ok is False
    assert "Tried to step 2501 times" in budget.message, budget.message
    assert "total steps is 2500" in budget.message
    assert (
        "new_nn.py line" in budget.message and "self.scheduler.step()" in budget.message
    )
    assert report.checks["trajectory"].ok is False


def test_lambda_rule_fails_resume(tmp_path: Path) -> None:
    """(b) LambdaLR with a lambda: same rates, but the model no longer pickles."""
    folder = broken(
        tmp_path, "A0_026",
        ("partial(linear_decay, epochs=epochs, min_lr=min_lr)",
         "lambda epoch: linear_decay(epoch, epochs, min_lr)"),
    )  # fmt: skip
    report = check_variant(str(folder), DRAWS, 0)
    assert failures(report).keys() == {"resume"}, failures(report)
    message = report.checks["resume"].message
    assert re.search(r"pickle", message, re.IGNORECASE), message
    assert "build_lr_scheduler.<locals>.<lambda>" in message, message


def test_step_size_of_zero_fails_search(tmp_path: Path) -> None:
    """(c) StepLR without the `max(1, ...)`: stored step_size 0 gives a step
    of 0 epochs, and torch divides by it. Defaults still work, so only the
    search finds it, and names the draw."""
    with_floor = catalog.EPOCHS.template.replace("{x}", "prm['step_size']")
    assert with_floor.startswith("max(1, ") and with_floor.endswith(")")
    without = with_floor[len("max(1, ") : -1]
    folder = broken(tmp_path, "A0_001", (with_floor, without))
    report = check_variant(str(folder), DRAWS, 0)
    assert failures(report).keys() == {"search"}, failures(report)
    message = report.checks["search"].message
    assert "ZeroDivisionError" in message and "modulo by zero" in message, message
    # The draw: its index and values (draw 0 is every key at 0).
    assert re.match(
        r"draw 0 \(step_size=0, gamma=0, lr=[\d.e-]+, momentum=[\d.e-]+, "
        r"epoch_max=\d+, \d+ batches an epoch\): ",
        message,
    ), message


def test_wrong_closed_form_fails_trajectory(tmp_path: Path) -> None:
    """(d) gamma mapped as 0.02 * 50 ** x instead of 0.01 * 100 ** x: the
    first decay is wrong, at the epoch after the first step_size epochs."""
    right = catalog.DECAY.template.replace("{x}", "prm['gamma']")
    assert right == "0.01 * 100 ** prm['gamma']"
    folder = broken(tmp_path, "A0_001", (right, "0.02 * 50 ** prm['gamma']"))
    report = check_variant(str(folder), DRAWS, 0)
    assert report.checks["trajectory"].ok is False
    message = report.checks["trajectory"].message
    found = re.fullmatch(
        r"epoch (\d+), batch (\d+), group 0: rate ([\d.e-]+), closed form ([\d.e-]+)",
        message,
    )
    assert found, message
    prm = json.loads((folder / "hp.txt").read_text())
    variant = catalog.BY_ID["A0_001"]
    real = variant.real_args(prm, prm["epoch_max"])
    assert int(found[1]) == real["step_size"] + 1  # epochs count from 1
    assert int(found[2]) == 1
    assert math.isclose(
        float(found[3]), prm["lr"] * 0.02 * 50 ** prm["gamma"], rel_tol=1e-8
    )
    assert math.isclose(float(found[4]), prm["lr"] * real["gamma"], rel_tol=1e-8)


def test_docstring_in_supported_hyperparameters_fails_static(tmp_path: Path) -> None:
    """(e) NNEval reads the keys from a `return` that comes first."""
    folder = broken(
        tmp_path, "A0_001",
        ("def supported_hyperparameters():\n    return",
         'def supported_hyperparameters():\n    """The keys."""\n    return'),
    )  # fmt: skip
    report = check_variant(str(folder), DRAWS, 0)
    assert failures(report).keys() == {"static"}, failures(report)
    message = report.checks["static"].message
    assert "supported_hyperparameters() does not start with `return`" in message


# ----------------------------------------------------------------------------
# Models that hang or kill their worker: reported, the rest still checked.
# ----------------------------------------------------------------------------


def test_hanging_and_crashing_models_fail_alone(tmp_path: Path) -> None:
    """(f) a model that sleeps in learn() and (g) one that ends its process in
    train_setup() are each reported failed after the timeout; a good variant
    in the same folder passes. (Each costs one timeout.)"""
    synth = tmp_path / "synth_nn"
    synth.mkdir()
    copy_variant("A0_005", synth)  # first: checked while the others break
    hang = copy_variant("A0_026", synth, "A0_098")
    edit(
        hang,
        "    def learn(self, train_data):\n",
        "    def learn(self, train_data):\n        import time\n        time.sleep(60)\n",
    )
    crash = copy_variant("A0_009", synth, "A0_099")
    edit(
        crash,
        "    def train_setup(self, prm):\n",
        "    def train_setup(self, prm):\n        import os\n        os._exit(1)\n",
    )

    timeout = 20.0
    seen: list[str] = []
    report = validate(
        synth,
        draws=3,
        timeout=timeout,
        workers=2,
        progress=lambda r: seen.append(r.folder),
    )
    by_folder = {v.folder: v for v in report.variants}
    assert list(by_folder) == ["A0_005", "A0_098", "A0_099"]
    assert sorted(seen) == list(by_folder)

    good = by_folder["A0_005"]
    assert good.ok and good.name == "ExponentialLR_default", failures(good)
    for folder in ("A0_098", "A0_099"):
        bad = by_folder[folder]
        assert not bad.ok
        assert tuple(bad.checks) == CHECKS
        for check in bad.checks.values():
            assert check.ok is False
            assert check.message == f"no answer within {timeout:g} s (hung or crashed)"
    assert not report.ok
    # Two timeouts, not more: the good variant was not waited on.
    assert report.seconds < 4 * timeout


# ----------------------------------------------------------------------------
# Exit codes of the command.
# ----------------------------------------------------------------------------


def test_cli_exits_1_on_a_broken_variant(tmp_path: Path) -> None:
    synth = tmp_path / "synth_nn"
    synth.mkdir()
    broken(
        synth, "A0_026",
        ("partial(linear_decay, epochs=epochs, min_lr=min_lr)",
         "lambda epoch: linear_decay(epoch, epochs, min_lr)"),
    )  # fmt: skip
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        ["validate", str(synth), "--draws", "2", "--workers", "1", "--json", str(out)],
    )
    assert result.exit_code == 1, result.output
    fail_lines = [
        line for line in result.stdout.splitlines() if line.startswith("FAIL ")
    ]
    assert len(fail_lines) == 1, result.stdout
    assert fail_lines[0].startswith("FAIL A0_026 LambdaLR_linear_decay resume: ")
    assert "pickle" in fail_lines[0]
    assert "0 of 1 variants pass every check" in result.stdout
    data = json.loads(out.read_text())
    assert data["ok"] is False and data["variants"][0]["ok"] is False
    assert data["variants"][0]["checks"]["resume"]["ok"] is False


@pytest.mark.parametrize("make", ["empty", "missing", "no_new_nn"])
def test_cli_exits_2_without_variants(tmp_path: Path, make: str) -> None:
    synth = tmp_path / "synth_nn"
    if make != "missing":
        synth.mkdir()
    if make == "no_new_nn":
        (synth / "A0_001").mkdir()
        (synth / "A0_001" / "hp.txt").write_text("{}")
    result = CliRunner().invoke(app, ["validate", str(synth)])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {synth}: no variant folders")


# ----------------------------------------------------------------------------
# A syntax error and a budget capped below the real run.
# ----------------------------------------------------------------------------


def test_syntax_error_fails_static(tmp_path: Path) -> None:
    folder = broken(
        tmp_path, "A0_005",
        ("def supported_hyperparameters():", "def supported_hyperparameters(:"),
    )  # fmt: skip
    report = check_variant(str(folder), DRAWS, 0)
    assert report.checks["static"].ok is False
    assert re.match(r"line \d+: ", report.checks["static"].message)


def test_per_batch_budget_capped_below_the_real_run(tmp_path: Path) -> None:
    """OneCycleLR with total_steps = min(epochs * batches, 2500): on CIFAR-10
    (50 x 782 batches) it anneals to its final rate by batch 2500 and holds
    it for the remaining 46 epochs."""
    folder = broken(
        tmp_path, "A0_018",
        (ONE_CYCLE_BUDGET, "total_steps = min(epochs * batches_per_epoch, 2500)"),
    )  # fmt: skip
    report = check_variant(str(folder), DRAWS, 0)
    assert not report.ok
