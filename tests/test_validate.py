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
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lrgen import catalog, reference
from lrgen.cli import PROJECT_SYNTH, app
from lrgen.generate import DEFAULT_BASE, folder_files, generate, write_atomically
from lrgen.validate import (
    BUDGET_RULE,
    CHECKS,
    DIVERSITY_BATCHES,
    DIVERSITY_EPOCH_MAX,
    DIVERSITY_MIN,
    Check,
    Report,
    VariantReport,
    check_variant,
    closest_pair,
    static_check,
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
        assert len(got.trajectory) == DIVERSITY_EPOCH_MAX, got.folder
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
    assert "measured at epoch_max=50" in text
    assert re.search(
        r"2 of 2 variants pass every check; diversity pass; [\d.]+ s", text
    )

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
    assert set(diversity) == {
        "ok", "closest", "distance", "minimum", "epoch_max", "batches_per_epoch"
    }
    assert diversity["ok"] is True and diversity["minimum"] == DIVERSITY_MIN
    assert diversity["epoch_max"] == 50 and diversity["batches_per_epoch"] == 100
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
    message = report.checks["trajectory"].message
    assert re.match(
        r"epoch 1, batch \d+, group 0: rate [\d.e-]+, closed form [\d.e-]+; ",
        message,
    ), message
    # The hint: rerun with other sizes, the rates ignore them.
    assert message.endswith(
        "; the rates stay the same when len(train_data) or epoch_max changes, "
        "the closed form's do not: the per-batch budget must be epoch_max x "
        "len(train_data)"
    ), message


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
    """(f) a model that sleeps in learn() once it gets 3 batches (the
    trajectory check's) and (g) one that ends its process in train_setup()
    are each reported failed after the timeout, on the check that was running
    and with the time limit; the checks before keep their results, the later
    ones are not reached; names and the static check come from the text. A
    good variant in the same folder passes. (Each costs one timeout.)"""
    synth = tmp_path / "synth_nn"
    synth.mkdir()
    copy_variant("A0_005", synth)  # first: checked while the others break
    hang = copy_variant("A0_026", synth, "A0_098")
    edit(
        hang,
        "    def learn(self, train_data):\n",
        "    def learn(self, train_data):\n"
        "        if len(train_data) == 3:\n"
        "            import time\n"
        "            time.sleep(60)\n",
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

    def states(v: VariantReport) -> dict[str, bool | None]:
        return {name: check.ok for name, check in v.checks.items()}

    limit = f"no answer within the {timeout:g} s time limit (hung, or its worker died)"
    hung = by_folder["A0_098"]
    assert hung.name == "LambdaLR_linear_decay"
    assert tuple(hung.checks) == CHECKS
    assert states(hung) == {
        "static": True, "build": True, "trajectory": False,
        "search": None, "budget": None, "resume": None,
    }  # fmt: skip
    assert failures(hung) == {
        "trajectory": f"{limit} while running the trajectory check"
    }
    assert hung.checks["budget"].message == "per-epoch schedule"
    for name in ("search", "resume"):
        assert hung.checks[name].message == "not reached (trajectory never ended)"

    crashed = by_folder["A0_099"]
    assert crashed.name == "CosineAnnealingLR_default"
    assert states(crashed) == {
        "static": True, "build": False, "trajectory": None,
        "search": None, "budget": None, "resume": None,
    }  # fmt: skip
    assert failures(crashed) == {"build": f"{limit} while running the build check"}
    assert not report.ok
    # Two timeouts, not more: the good variant was not waited on.
    assert report.seconds < 4 * timeout


def test_unanswered_report_comes_from_the_text_without_torch(tmp_path: Path) -> None:
    """The parent names a variant whose worker never answered, and runs its
    static check, from the text alone: it never imports torch."""
    folder = copy_variant("A0_013", tmp_path)
    hp = json.loads((folder / "hp.txt").read_text())
    (folder / "hp.txt").write_text(json.dumps({**hp, "t_0": 2.5}))
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from lrgen.validate import _unanswered\n"
        f"r = _unanswered(Path({str(folder)!r}), 'stuck', {{}})\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "for name, c in r.checks.items():\n"
        "    print(name, c.ok, c.message)\n"
        "print(r.name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "CosineAnnealingWarmRestarts_T0_large"
    assert lines[0].startswith("static False hp.txt 't_0' is 2.5, outside [0, 1]")
    assert lines[1] == "build False stuck before its checks began"


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
    # Up to 150 or 300 batches the cap does not bite: the trajectory matches.
    assert failures(report).keys() == {"budget"}, failures(report)
    message = report.checks["budget"].message
    assert re.match(r"epoch 1, batch \d+, group 0: rate ", message), message
    assert message.endswith(
        "; the rates stay the same when len(train_data) or epoch_max changes, "
        f"the closed form's do not: {BUDGET_RULE}"
    ), message


# ----------------------------------------------------------------------------
# hp.txt values outside [0, 1].
# ----------------------------------------------------------------------------


def set_hp(folder: Path, **values: object) -> None:
    path = folder / "hp.txt"
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}, indent=2))


def test_scheduler_key_outside_unit_range_fails_static(tmp_path: Path) -> None:
    """t_max 3.0 builds and steps (T_max 150 epochs), so only the static check
    can say that hp.txt breaks the [0, 1] convention."""
    folder = copy_variant("A0_009", tmp_path)
    set_hp(folder, t_max=3.0)
    report = check_variant(str(folder), DRAWS, 0)
    assert failures(report).keys() == {"static"}, failures(report)
    assert report.checks["static"].message.startswith(
        "hp.txt 't_max' is 3.0, outside [0, 1]: scheduler keys are stored in "
        "[0, 1]"
    ), report.checks["static"].message


@pytest.mark.parametrize(
    ("value", "shown"),
    [(-0.5, "-0.5"), (1.0001, "1.0001"), ("0.5", "'0.5'"), (True, "True"),
     (None, "None")],
)  # fmt: skip
def test_scheduler_key_values_static_rejects(
    tmp_path: Path, value: object, shown: str
) -> None:
    folder = copy_variant("A0_014", tmp_path)
    set_hp(folder, cycle=value)
    check = static_check(folder)
    assert check.ok is False
    assert check.message.startswith(f"hp.txt 'cycle' is {shown}, outside [0, 1]")


@pytest.mark.parametrize("value", [0, 0.0, 1, 1.0, 0.5])
def test_scheduler_key_values_static_accepts(tmp_path: Path, value: float) -> None:
    """The ends of [0, 1] are in it; lr, momentum and the others are not
    scheduler keys (lr 1.5 is not the static check's business)."""
    folder = copy_variant("A0_014", tmp_path)
    set_hp(folder, cycle=value, lr=1.5, batch=64)
    check = static_check(folder)
    assert (check.ok, check.message) == (True, "")


# ----------------------------------------------------------------------------
# Diversity: LEMUR's per-epoch rate at epoch_max=50, whatever hp.txt says.
# ----------------------------------------------------------------------------


def generated(root: Path, epoch_max: int, *ids: str) -> Path:
    """A synth_nn folder of the given variants, generated at `epoch_max`."""
    variants = [catalog.BY_ID[i] for i in ids]
    synth = root / "synth_nn"
    write_atomically(synth, folder_files(generate(DEFAULT_BASE, variants, epoch_max)))
    return synth


def test_diversity_trajectory_is_the_rate_after_each_epoch_at_50(
    tmp_path: Path,
) -> None:
    """Generated at epoch_max=5, the trajectory still spans 50 epochs, and
    holds the rate / lr after epoch 1, 2, ... (the rate LEMUR logs), for a
    per-epoch and a per-batch variant."""
    synth = generated(tmp_path, 5, "A0_001", "A0_018")
    for variant_id in ("A0_001", "A0_018"):
        report = check_variant(str(synth / variant_id), DRAWS, 0)
        assert report.ok, failures(report)
        variant = catalog.BY_ID[variant_id]
        prm = {**json.loads((synth / variant_id / "hp.txt").read_text())}
        assert prm["epoch_max"] == 5
        prm["epoch_max"] = DIVERSITY_EPOCH_MAX
        closed = reference.rates(
            variant, prm, [1.0], DIVERSITY_EPOCH_MAX + 1, DIVERSITY_BATCHES
        )
        wanted = [
            closed[epoch * DIVERSITY_BATCHES][0]
            for epoch in range(1, DIVERSITY_EPOCH_MAX + 1)
        ]
        assert len(report.trajectory) == DIVERSITY_EPOCH_MAX
        for got, value in zip(report.trajectory, wanted):
            assert math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-12)
    # StepLR_default: 0.3 of 50 epochs is a step of 15; the first decay shows
    # in the rate read after epoch 15 (not 16: read before each epoch; not 2:
    # 0.3 of epoch_max 5).
    trajectory = check_variant(str(synth / "A0_001"), DRAWS, 0).trajectory
    assert trajectory.index(min(trajectory[:20])) == 15 - 1
    assert trajectory[:14] == [1.0] * 14


def test_short_epoch_max_keeps_the_set_diverse(tmp_path: Path) -> None:
    """StepLR_default and MultiStepLR_milestones coincide over 5 epochs, but
    the rule is measured at epoch_max=50: `lrgen generate --epoch-max 5`
    output passes diversity."""
    synth = generated(tmp_path, 5, "A0_001", "A0_002")
    result = CliRunner().invoke(app, ["validate", str(synth), "--draws", "2"])
    assert result.exit_code == 0, result.output
    assert re.search(
        r"diversity pass: closest default trajectories A0_001 StepLR_default and "
        r"A0_002 MultiStepLR_milestones, ([\d.]+) apart \(rate / lr after each "
        r"epoch, measured at epoch_max=50, 100 batches an epoch; at least 0.01 "
        r"needed\)",
        result.stdout,
    ), result.stdout
    assert "2 of 2 variants pass every check; diversity pass; " in result.stdout


def test_diversity_compares_the_variants_of_one_model_only() -> None:
    def made(folder: str, rates: list[float]) -> VariantReport:
        return VariantReport(folder, "x", trajectory=rates)

    reports = [
        made("resnet_A0_001", [1.0, 0.5]), made("resnet_A0_002", [1.0, 0.2]),
        made("vgg_A0_001", [1.0, 0.5]), made("vgg_A0_002", [1.0, 0.4]),
    ]  # fmt: skip
    # resnet_A0_001 and vgg_A0_001 share a schedule, but not a model.
    assert closest_pair(reports) == ("vgg_A0_001 x", "vgg_A0_002 x",
                                     pytest.approx(0.1))
    assert closest_pair(reports[::2]) is None  # one variant per model


def test_equal_schedules_fail_diversity_honestly(tmp_path: Path) -> None:
    """Two copies of one variant pass every check but not diversity: the
    summary says so, exit 1. With `--json -` stdout holds only the JSON and
    the table goes to stderr."""
    synth = tmp_path / "synth_nn"
    synth.mkdir()
    copy_variant("A0_005", synth)
    copy_variant("A0_005", synth, "A0_006")
    result = CliRunner().invoke(
        app, ["validate", str(synth), "--draws", "2", "--json", "-"]
    )
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert [v["ok"] for v in data["variants"]] == [True, True]
    assert data["diversity"] == {
        "ok": False,
        "closest": ["A0_005 ExponentialLR_default", "A0_006 ExponentialLR_default"],
        "distance": 0.0,
        "minimum": DIVERSITY_MIN,
        "epoch_max": 50,
        "batches_per_epoch": 100,
    }
    text = result.stderr
    assert "lrgen validate" in text and "│ A0_006 ExponentialLR_default" in text
    assert (
        "diversity FAIL: closest default trajectories A0_005 ExponentialLR_default "
        "and A0_006 ExponentialLR_default, 0.0000 apart (rate / lr after each "
        "epoch, measured at epoch_max=50" in text
    ), text
    assert re.search(
        r"^2 of 2 variants pass every check; diversity FAIL; [\d.]+ s$", text, re.M
    ), text


# ----------------------------------------------------------------------------
# The command's input and output: --json, --quiet, the default folder, help.
# ----------------------------------------------------------------------------


def test_json_path_is_checked_before_the_run(tmp_path: Path) -> None:
    synth = tmp_path / "synth_nn"
    synth.mkdir()
    copy_variant("A0_005", synth)
    for path, says in (
        (tmp_path / "missing" / "report.json", "does not exist"),
        (tmp_path, "is a folder"),
    ):
        result = CliRunner().invoke(app, ["validate", str(synth), "--json", str(path)])
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: --json {path}: ") and says in lines[0]


def fake_report(*failing: tuple[str, str, str], gap: float = 0.5) -> Report:
    """Two variants, every check passing but `failing` (folder, check, why)."""
    variants = []
    for folder, name in (("A0_001", "StepLR_default"), ("A0_021", "LinearLR_warmup")):
        v = VariantReport(folder, name, {c: Check(True, "fine") for c in CHECKS})
        for where, check, why in failing:
            if where == folder:
                v.checks[check] = Check(False, why)
        variants.append(v)
    closest = ("A0_001 StepLR_default", "A0_021 LinearLR_warmup", gap)
    return Report(variants, closest, 1.25)


def test_quiet_prints_only_failures_and_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synth = tmp_path / "synth_nn"
    synth.mkdir()
    copy_variant("A0_001", synth)
    cases = [
        (fake_report(), 0, ["2 of 2 variants pass every check; diversity pass; 1.2 s"]),
        (
            fake_report(("A0_021", "resume", "cannot pickle")),
            1,
            ["FAIL A0_021 LinearLR_warmup resume: cannot pickle",
             "1 of 2 variants pass every check; diversity pass; 1.2 s"],
        ),
        (
            fake_report(gap=0.001),
            1,
            ["diversity FAIL: closest default trajectories A0_001 StepLR_default "
             "and A0_021 LinearLR_warmup, 0.0010 apart (rate / lr after each "
             "epoch, measured at epoch_max=50, 100 batches an epoch; at least "
             "0.01 needed)",
             "2 of 2 variants pass every check; diversity FAIL; 1.2 s"],
        ),
    ]  # fmt: skip
    for report, code, lines in cases:
        monkeypatch.setattr("lrgen.validate.validate", lambda *a, r=report, **k: r)
        result = CliRunner().invoke(app, ["validate", str(synth), "--quiet"])
        assert result.exit_code == code, result.output
        assert result.stdout.splitlines() == lines
        assert result.stderr == ""  # no progress either
        result = CliRunner().invoke(app, ["validate", str(synth), "-q", "--json", "-"])
        assert result.exit_code == code, result.output
        assert json.loads(result.stdout)["ok"] is (code == 0)
        assert result.stderr.splitlines() == lines


def test_default_folder_is_the_projects_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Path] = []

    def fake(synth_dir: Path, **_: object) -> Report:
        asked.append(synth_dir)
        return fake_report()

    monkeypatch.setattr("lrgen.validate.validate", fake)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["validate", "-q"])
    assert result.exit_code == 0, result.output
    assert asked == [PROJECT_SYNTH]


def test_help_gives_the_exit_codes() -> None:
    result = CliRunner().invoke(app, ["validate", "--help"])
    assert result.exit_code == 0
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stdout).split())
    assert "Exit codes: 0 every check passes, 1 a check failed, 2 bad input" in text
    assert "--quiet" in text and "measured at epoch_max=50" in text


# ----------------------------------------------------------------------------
# Trajectory: the scheduler stepped before the optimizer; hints kept honest.
# ----------------------------------------------------------------------------

EARLY = (
    "the scheduler steps before the optimizer (torch warns: Detected call of "
    "`lr_scheduler.step()` before `optimizer.step()`): call "
    "self.scheduler.step() after self.optimizer.step()"
)


def test_scheduler_stepped_before_optimizer_per_batch(tmp_path: Path) -> None:
    folder = broken(
        tmp_path, "A0_020",
        ("            self.optimizer.step()\n" + ONE_CYCLE_GUARD,
         ONE_CYCLE_GUARD + "            self.optimizer.step()\n"),
    )  # fmt: skip
    report = check_variant(str(folder), DRAWS, 0)
    message = report.checks["trajectory"].message
    assert report.checks["trajectory"].ok is False
    assert message.startswith(EARLY + "; epoch 1, batch 1, group 0: rate "), message
    assert BUDGET_RULE not in message


def test_scheduler_stepped_before_optimizer_per_epoch(tmp_path: Path) -> None:
    """A per-epoch scheduler stepped at the start of learn(): the rates are
    one epoch early, and the message says why."""
    folder = broken(
        tmp_path, "A0_005",
        ("            self.optimizer.step()\n        self.scheduler.step()\n",
         "            self.optimizer.step()\n"),
        ("        self.train()\n        for inputs",
         "        self.train()\n        self.scheduler.step()\n        for inputs"),
    )  # fmt: skip
    report = check_variant(str(folder), DRAWS, 0)
    assert report.checks["trajectory"].ok is False
    message = report.checks["trajectory"].message
    assert message.startswith(EARLY + "; epoch 1, batch 1, group 0: rate "), message


@pytest.mark.parametrize(
    "edits",
    [
        # a wrong mapping: the rates follow the run's size, just not the form
        (("5 * 25 ** prm['div_factor']", "4 * 25 ** prm['div_factor']"),),
        # never stepped: the rate stays put whatever the run, not a budget
        ((ONE_CYCLE_GUARD, "            pass\n"),),
    ],
    ids=["wrong-mapping", "never-stepped"],
)
def test_no_budget_hint_when_the_budget_is_not_the_cause(
    tmp_path: Path, edits: tuple[tuple[str, str], ...]
) -> None:
    folder = broken(tmp_path, "A0_020", *edits)
    report = check_variant(str(folder), DRAWS, 0)
    message = report.checks["trajectory"].message
    assert report.checks["trajectory"].ok is False
    assert re.fullmatch(
        r"epoch 1, batch \d+, group 0: rate [\d.e-]+, closed form [\d.e-]+", message
    ), message
    assert BUDGET_RULE not in report.checks["budget"].message
