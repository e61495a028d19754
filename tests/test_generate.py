"""`lrgen generate`: the NNEval folder, its determinism and its bad inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lrgen import catalog
from lrgen.cli import app

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "base_model" / "resnet18.py"
COMMITTED = ROOT / "out" / "nngpt" / "llm" / "epoch" / "A0" / "synth_nn"
SYNTH = Path("nngpt", "llm", "epoch", "A0", "synth_nn")
EXPECTED_NAMES = """
StepLR_default MultiStepLR_milestones StepLR_long_decay MultiStepLR_four_milestones
ExponentialLR_default PolynomialLR_quadratic PolynomialLR_cubic PolynomialLR_power_4
CosineAnnealingLR_default CosineAnnealingLR_with_min_lr CosineAnnealingLR_high_min
CosineAnnealingWarmRestarts_T0_small CosineAnnealingWarmRestarts_T0_large
CyclicLR_triangular CyclicLR_triangular2 CyclicLR_exp_range CyclicLR_small_cycle
OneCycleLR_default OneCycleLR_aggressive OneCycleLR_linear_anneal LinearLR_warmup
ConstantLR_warmup MultiplicativeLR_exponential ChainedScheduler_step_then_cosine
SequentialLR_warmup_decay LambdaLR_linear_decay LambdaLR_power_decay
LambdaLR_exponential_decay LambdaLR_cosine_like LambdaLR_step_like
""".split()

runner = CliRunner()


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("out")
    result = runner.invoke(app, ["generate", "--base", str(BASE), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out / SYNTH, result.output


def test_catalog_is_the_thirty_in_order() -> None:
    assert [v.name for v in catalog.VARIANTS] == EXPECTED_NAMES
    assert [v.id for v in catalog.VARIANTS] == [f"A0_{i:03d}" for i in range(1, 31)]


def test_generate_writes_one_folder_per_variant(generated: tuple[Path, str]) -> None:
    synth, _ = generated
    assert (synth / "__init__.py").read_text() == ""
    folders = sorted(p.name for p in synth.iterdir() if p.is_dir())
    assert folders == [f"A0_{i:03d}" for i in range(1, 31)]
    for folder in folders:
        assert sorted(p.name for p in (synth / folder).iterdir()) == [
            "hp.txt",
            "new_nn.py",
        ]


def test_hp_txt_holds_prm_with_epoch_max_and_scheduler_defaults(
    generated: tuple[Path, str],
) -> None:
    synth, _ = generated
    for variant in catalog.VARIANTS:
        hp = json.loads((synth / variant.id / "hp.txt").read_text())
        assert hp["lr"] == 0.01 and hp["momentum"] == 0.9 and hp["dropout"] == 0.2
        assert hp["batch"] == 64 and hp["transform"] == "norm_256_flip"
        assert hp["epoch_max"] == 50
        scheduler_keys = set(hp) - {
            "lr", "momentum", "dropout", "batch", "transform", "epoch_max"
        }
        assert scheduler_keys == set(variant.keys), variant.name
        assert all(0 <= hp[k] <= 1 for k in scheduler_keys)


def test_generate_prints_table_and_totals(generated: tuple[Path, str]) -> None:
    synth, output = generated
    sizes = [(synth / v.id / "new_nn.py").stat().st_size for v in catalog.VARIANTS]
    assert "A0_030" in output and "LambdaLR" in output and "batch" in output
    assert f"30 variants, {sum(sizes):,} bytes in all" in output
    assert f"{sum(sizes) // 30:,} bytes on average" in output


def test_same_inputs_give_byte_identical_files(
    generated: tuple[Path, str], tmp_path: Path
) -> None:
    result = runner.invoke(app, ["generate", "--base", str(BASE), "--out", str(tmp_path)])
    assert result.exit_code == 0
    assert tree(tmp_path / SYNTH) == tree(generated[0])


def test_committed_out_is_what_generate_writes(generated: tuple[Path, str]) -> None:
    assert tree(COMMITTED) == tree(generated[0]), (
        "out/ is stale: run `lrgen generate` and commit it"
    )


def test_check_reports_stale_files_and_writes_nothing(tmp_path: Path) -> None:
    args = ["generate", "--base", str(BASE), "--out", str(tmp_path)]
    assert runner.invoke(app, args).exit_code == 0
    hp = tmp_path / SYNTH / "A0_003" / "hp.txt"
    hp.write_text("{}\n")
    result = runner.invoke(app, [*args, "--check"])
    assert result.exit_code == 1
    assert "A0_003/hp.txt" in result.output
    assert hp.read_text() == "{}\n"
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, [*args, "--check"]).exit_code == 0


def test_epoch_max_option_reaches_hp_txt(tmp_path: Path) -> None:
    args = ["generate", "--base", str(BASE), "--out", str(tmp_path), "--epoch-max", "7"]
    assert runner.invoke(app, args).exit_code == 0
    hp = json.loads((tmp_path / SYNTH / "A0_018" / "hp.txt").read_text())
    assert hp["epoch_max"] == 7


def test_regenerating_removes_files_it_did_not_write(tmp_path: Path) -> None:
    args = ["generate", "--base", str(BASE), "--out", str(tmp_path)]
    assert runner.invoke(app, args).exit_code == 0
    (tmp_path / SYNTH / "A0_031").mkdir()
    (tmp_path / SYNTH / "A0_031" / "new_nn.py").write_text("old\n")
    assert runner.invoke(app, args).exit_code == 0
    assert not (tmp_path / SYNTH / "A0_031").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base", "missing.py"], "missing.py: no such file"),
        (["--epoch-max", "0"], "--epoch-max must be at least 1, got 0"),
    ],
    ids=["missing-base", "epoch-max-zero"],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["generate", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_refused_base_names_file_and_reason(tmp_path: Path) -> None:
    base = tmp_path / "model.py"
    base.write_text(BASE.read_text().replace("self.optimizer = ", "self.opt = "))
    result = runner.invoke(
        app, ["generate", "--base", str(base), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert f"{base}: cannot add StepLR_default:" in result.output
    assert "never assigns self.optimizer" in result.output
    assert not (tmp_path / "o").exists()


def _run_without_torch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    probe = (
        "import sys\n"
        "from lrgen.cli import main\n"
        f"sys.argv = ['lrgen', *{list(args)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "args", [["--help"], ["generate", "--base", str(BASE), "--out", "o"]],
    ids=["help", "generate"],
)
def test_help_and_generate_do_not_import_torch(tmp_path: Path, args: list[str]) -> None:
    result = _run_without_torch(*args, cwd=tmp_path)
    assert result.stdout.strip().endswith("NO-TORCH"), result.stdout + result.stderr


def test_python_dash_m_lrgen_works(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lrgen", "--help"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert result.returncode == 0
    assert "generate" in result.stdout


def test_list_shows_every_variant_with_its_keys() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for variant in catalog.VARIANTS:
        assert variant.id in result.output and variant.name in result.output
    assert "step_size=0.3 -> 15 (1 .. epoch_max)" in result.output


def test_list_json_is_the_catalog() -> None:
    result = runner.invoke(app, ["list", "--json"])
    entries = json.loads(result.output)
    assert [e["name"] for e in entries] == EXPECTED_NAMES
    one_cycle = entries[17]
    assert one_cycle["stepping"] == "batch"
    assert [h["key"] for h in one_cycle["hyperparameters"]] == [
        "pct_start", "div_factor", "final_div_factor"
    ]


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("lrgen 0.")


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    base = tmp_path / "model.py"
    base.write_text("import torch\n\ndef f(:\n    pass\n")
    result = runner.invoke(app, ["generate", "--base", str(base), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{base}:3:" in result.output and "syntax error" in result.output


def test_out_below_a_file_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("")
    result = runner.invoke(app, ["generate", "--out", str(blocker)])
    assert result.exit_code == 2
    assert f"{blocker}: is a file, not a folder" in result.output
