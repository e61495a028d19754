"""Reviewing variants before training: list, show, diff, and generate's
selection, safety and script-facing options."""

from __future__ import annotations

import difflib
import json
import re
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

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


# ----------------------------------------------------------------------------
# The diff touches only scheduler lines.
# ----------------------------------------------------------------------------

SUPPORTED_RETURN = "    return {'lr', 'momentum', 'dropout'}"


@pytest.mark.parametrize("variant", catalog.VARIANTS, ids=lambda v: v.name)
def test_every_base_line_but_the_declaration_is_kept_byte_for_byte(variant) -> None:
    base = BASE.read_text().splitlines(keepends=True)
    code = (COMMITTED / variant.id / "new_nn.py").read_text().splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, base, code, autojunk=False)
    dropped = [
        line
        for tag, i1, i2, _, _ in matcher.get_opcodes()
        if tag in ("replace", "delete")
        for line in base[i1:i2]
    ]
    assert dropped == [SUPPORTED_RETURN + "\n"]
    kept = sum(block.size for block in matcher.get_matching_blocks())
    assert kept == len(base) - 1


def test_diff_is_a_plain_patch_when_piped(tmp_path: Path) -> None:
    code, output = run("diff", "StepLR_default", "--base", str(BASE))
    assert code == 0
    assert output.startswith(f"--- {BASE}\n+++ A0_001/new_nn.py\n@@ ")
    assert "\x1b[" not in output
    assert f"-{SUPPORTED_RETURN}\n" in output
    assert "+    return {'lr', 'momentum', 'dropout', 'step_size', 'gamma'}\n" in output
    # The patch applies to the base and gives the variant, byte for byte.
    target = tmp_path / "model.py"
    target.write_bytes(BASE.read_bytes())
    patched = subprocess.run(
        ["patch", "-s", str(target)], input=output, text=True, capture_output=True
    )
    if patched.returncode == 127:
        pytest.skip("no patch program")
    assert patched.returncode == 0, patched.stderr
    assert target.read_bytes() == (COMMITTED / "A0_001" / "new_nn.py").read_bytes()


def test_diff_is_coloured_on_a_terminal() -> None:
    probe = (
        "import sys\nfrom rich.console import Console\nimport lrgen.cli as cli\n"
        "cli.out = Console(force_terminal=True, width=100)\n"
        "sys.argv = ['lrgen', 'diff', 'A0_001']\ncli.main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b[" in result.stdout and "self.scheduler.step()" in result.stdout


def test_diff_stat_counts_each_variants_lines() -> None:
    code, output = run("diff", "--stat")
    assert code == 0
    lines = output.splitlines()
    assert len(lines) == 31
    base = BASE.read_text().splitlines()
    insertions = 0
    for variant, line in zip(catalog.VARIANTS, lines):
        new = (COMMITTED / variant.id / "new_nn.py").read_text().splitlines()
        # Independent count: the variant keeps every base line but one.
        added, removed = len(new) - len(base) + 1, 1
        insertions += added
        assert line.startswith(f"{variant.id} {variant.name} ")
        assert f"| {added + removed:3d} " in line
        bar = line.rsplit(" ", 1)[1]
        # One mark a line, scaled to 40 at most; the removed line shows.
        assert bar == "+" * (len(bar) - 1) + "-"
        assert len(bar) == min(added + removed, 40)
    assert lines[-1] == f"30 variants, {insertions} insertions(+), 30 deletions(-)"


def test_diff_of_a_glob_holds_one_patch_per_variant() -> None:
    code, output = run("diff", "OneCycle*")
    assert code == 0
    assert re.findall(r"^\+\+\+ (\S+)", output, flags=re.M) == [
        "A0_018/new_nn.py", "A0_019/new_nn.py", "A0_020/new_nn.py"
    ]


def test_show_describes_the_variant_and_the_code_it_adds() -> None:
    code, output = run("show", "A0_018")
    assert code == 0
    assert output.startswith("A0_018 OneCycleLR_default (OneCycleLR, stepped every batch)")
    assert "lr_scheduler.OneCycleLR" in output
    # pct_start 0.5 maps to 0.1 + 0.4 * 0.5; div_factor 0.5 to 5 * 25 ** 0.5.
    assert re.search(r"pct_start\s+.\s+0\.5\s+.\s+0\.3\s+.\s+0\.1 \.\. 0\.5", output)
    assert re.search(r"div_factor\s+.\s+0\.5\s+.\s+25\s", output)
    assert "in train_setup(), after line" in output
    assert "self.build_scheduler = partial(build_lr_scheduler, self.optimizer, prm)" in output
    assert "def build_lr_scheduler(optimizer, prm, batches_per_epoch):" in output


def test_show_by_name_and_unknown_name() -> None:
    assert run("show", "LambdaLR_step_like")[0] == 0
    code, output = run("show", "LambdaLR_step_lik")
    assert code == 2
    assert "did you mean LambdaLR_step_like" in output
    assert "Traceback" not in output


def test_list_names_classes_stepping_and_ranges() -> None:
    code, output = run("list")
    assert code == 0
    assert "ChainedScheduler" in output and "CosineAnnealingLR)" in output
    assert "min_lr=0 -> 0 (0 .. 0.5)" in output


# ----------------------------------------------------------------------------
# generate: --only, --force, --check, --json, --quiet.
# ----------------------------------------------------------------------------


def test_only_regenerates_the_selection_and_keeps_the_rest(tmp_path: Path) -> None:
    assert run("generate", "--out", str(tmp_path), "-q")[0] == 0
    before = files(tmp_path / SYNTH)
    code, output = run(
        "generate", "--out", str(tmp_path), "--only", "Cosine*", "--only",
        "A0_001", "--epoch-max", "9", "--json",
    )
    assert code == 0, output
    report = json.loads(output)
    assert [v["id"] for v in report["variants"]] == [
        "A0_001", "A0_009", "A0_010", "A0_011", "A0_012", "A0_013"
    ]
    after = files(tmp_path / SYNTH)
    assert set(after) == set(before)
    changed = sorted(name for name in after if after[name] != before[name])
    assert changed == [
        f"{i}/hp.txt" for i in ("A0_001", "A0_009", "A0_010", "A0_011", "A0_012",
                                 "A0_013")
    ]
    assert json.loads(after["A0_009/hp.txt"])["epoch_max"] == 9


def test_only_into_an_empty_folder_writes_just_the_selection(tmp_path: Path) -> None:
    assert run("generate", "--out", str(tmp_path), "--only", "A0_02?", "-q")[0] == 0
    folders = sorted(p.name for p in (tmp_path / SYNTH).iterdir() if p.is_dir())
    assert folders == [f"A0_{n:03d}" for n in range(20, 30)]


def test_foreign_files_are_refused_without_force(tmp_path: Path) -> None:
    assert run("generate", "--out", str(tmp_path), "-q")[0] == 0
    results = tmp_path / SYNTH / "A0_001" / "eval_info.json"
    results.write_text("{}")
    code, output = run("generate", "--out", str(tmp_path), "--epoch-max", "3")
    assert code == 2
    assert "would delete 1 file(s) (A0_001/eval_info.json)" in output
    assert "--force" in output and len(output.strip().splitlines()) == 1
    assert results.exists()
    assert json.loads((tmp_path / SYNTH / "A0_001" / "hp.txt").read_text())[
        "epoch_max"] == 50
    assert run("generate", "--out", str(tmp_path), "--epoch-max", "3", "--force",
               "-q")[0] == 0  # fmt: skip
    assert not results.exists()


def fake_results(synth: Path) -> dict[str, bytes]:
    """What lrgen eval and lrgen report leave in a synth_nn folder."""
    made = {
        "A0_001/lrgen_eval.json": b"{}", "A0_001/eval_info.json": b"{}",
        "A0_001/1.json": b"{}", "A0_002/error.txt": b"failed\n",
        "results.csv": b"variant\n", "report.md": b"# report\n",
        "report_files/accuracy.png": b"png",
    }  # fmt: skip
    for name, content in made.items():
        (synth / name).parent.mkdir(parents=True, exist_ok=True)
        (synth / name).write_bytes(content)
    return made


def test_training_results_stay_while_their_code_is_unchanged(tmp_path: Path) -> None:
    assert run("generate", "--out", str(tmp_path), "-q")[0] == 0
    synth = tmp_path / SYNTH
    made = fake_results(synth)
    assert run("generate", "--out", str(tmp_path), "--check")[0] == 0
    assert run("generate", "--out", str(tmp_path), "-q")[0] == 0
    assert {n: c for n, c in files(synth).items() if n in made} == made
    # Every hp.txt changes with --epoch-max: the results would describe other
    # code, so dropping them needs --force; the run's files stay.
    code, output = run("generate", "--out", str(tmp_path), "--epoch-max", "3",
                       "--check")  # fmt: skip
    assert code == 1, output
    assert f"would delete: {synth / 'A0_001' / '1.json'}" in output
    code, output = run("generate", "--out", str(tmp_path), "--epoch-max", "3")
    assert code == 2, output
    assert ("would delete 4 file(s) (A0_001/1.json, A0_001/eval_info.json, "
            "A0_001/lrgen_eval.json, ...)") in " ".join(output.split())
    code, _ = run("generate", "--out", str(tmp_path), "--epoch-max", "3", "--force",
                  "--only", "A0_001", "-q")  # fmt: skip
    assert code == 0
    left = files(synth)
    assert not any(n.startswith("A0_001/") and n in made for n in left)
    for name in ("A0_002/error.txt", "results.csv", "report.md",
                 "report_files/accuracy.png"):
        assert left[name] == made[name]


def test_generate_refuses_while_an_eval_trains(
    tmp_path: Path,
) -> None:
    from lrgen.generate import eval_lock

    assert run("generate", "--out", str(tmp_path), "-q")[0] == 0
    before = files(tmp_path / SYNTH)
    with eval_lock(tmp_path / SYNTH):
        code, output = run("generate", "--out", str(tmp_path), "--epoch-max", "3")
    assert code == 2, output
    assert "lrgen eval is training its variants; wait for it" in output
    assert files(tmp_path / SYNTH) == before


def test_check_lists_writes_and_deletions_and_changes_nothing(tmp_path: Path) -> None:
    assert run("generate", "--out", str(tmp_path), "-q")[0] == 0
    synth = tmp_path / SYNTH
    (synth / "A0_002" / "hp.txt").write_text("{}\n")
    (synth / "A0_007" / "new_nn.py").unlink()
    (synth / "A0_031").mkdir()
    (synth / "A0_031" / "hp.txt").write_text("{}\n")
    before = files(synth)
    code, output = run("generate", "--out", str(tmp_path), "--check")
    assert code == 1
    assert output.splitlines() == [
        f"would write: {synth / 'A0_002/hp.txt'}",
        f"would write: {synth / 'A0_007/new_nn.py'}",
        f"would delete: {synth / 'A0_031/hp.txt'}",
    ]
    assert files(synth) == before


def test_check_on_a_file_is_bad_input(tmp_path: Path) -> None:
    blocker = tmp_path / "f"
    blocker.write_text("")
    code, output = run("generate", "--out", str(blocker), "--check")
    assert code == 2 and f"{blocker}: is a file" in output


def test_generate_json_and_quiet(tmp_path: Path) -> None:
    code, output = run("generate", "--out", str(tmp_path), "--json")
    assert code == 0
    report = json.loads(output)
    assert report["count"] == 30
    on_disk = [len((tmp_path / SYNTH / f"A0_{n:03d}" / "new_nn.py").read_bytes())
               for n in range(1, 31)]
    assert [v["bytes"] for v in report["variants"]] == on_disk
    assert report["bytes"] == sum(on_disk)
    assert report["average_bytes"] == sum(on_disk) // 30
    code, output = run("generate", "--out", str(tmp_path), "--quiet")
    assert (code, output) == (0, "")


def test_list_json_is_valid() -> None:
    code, output = run("list", "--json")
    assert code == 0 and len(json.loads(output)) == 30


@pytest.mark.parametrize("command", ["generate", "show", "diff", "validate", "plot"])
def test_each_command_documents_its_exit_codes(command: str) -> None:
    code, output = run(command, "--help")
    assert code == 0
    assert re.search(r"Exit codes: 0 .*, 2 bad input", " ".join(output.split()))


# ----------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written.
# ----------------------------------------------------------------------------

BASE_TEXT = BASE.read_text()


def _edited(old: str, new: str) -> bytes:
    assert old in BASE_TEXT
    return BASE_TEXT.replace(old, new).encode()


BAD_BASES = {
    "not-utf8": (b"# caf\xe9\n" + BASE_TEXT.encode(), "not UTF-8 text (byte 5)"),
    "syntax-error": (b"import torch\n\ndef f(:\n    pass\n", ":3:7: syntax error"),
    "no-net": (_edited("class Net(nn.Module)", "class Model(nn.Module)"),
               "no top-level class Net"),
    "no-train-setup": (_edited("def train_setup(", "def setup("),
                       "class Net has no train_setup() method"),
    "no-learn": (_edited("def learn(", "def fit("), "class Net has no learn() method"),
    "no-optimizer": (_edited("self.optimizer = ", "self.opt = "),
                     "never assigns self.optimizer"),
    "no-optimizer-step": (_edited("self.optimizer.step()", "pass"),
                          "never calls self.optimizer.step()"),
    "scheduler-present": (
        _edited("            self.optimizer.step()\n",
                "            self.optimizer.step()\n            self.scheduler.step()\n"),
        "already steps a scheduler",
    ),
    "computed-hyperparameters": (
        _edited("    return {'lr', 'momentum', 'dropout'}",
                "    keys = {'lr', 'momentum', 'dropout'}\n    return keys"),
        "must start with `return` of a literal set or list",
    ),
    "generated-twice": (
        (COMMITTED / "A0_009" / "new_nn.py").read_bytes(), "already has a scheduler"
    ),
}


@pytest.mark.parametrize(("content", "message"), BAD_BASES.values(), ids=list(BAD_BASES))
def test_bad_base_is_one_line_exit_2_nothing_written(
    tmp_path: Path, content: bytes, message: str
) -> None:
    base = tmp_path / "model.py"
    base.write_bytes(content)
    out = tmp_path / "out"
    for command in (["generate", "--out", str(out)], ["diff"], ["show", "A0_001"]):
        code, output = run(*command, "--base", str(base))
        assert code == 2, output
        assert output.startswith(f"error: {base}") and message in output, output
        assert len(output.strip().splitlines()) == 1 and "Traceback" not in output
    assert not out.exists()


def test_unreadable_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "model.py"
    base.write_text(BASE_TEXT)

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    code, output = run("generate", "--base", str(base), "--out", str(tmp_path / "o"))
    assert code == 2
    assert output.strip() == f"error: {base}: not readable; check its permissions"


def test_output_folder_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    def denied(*args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    code, output = run("generate", "--out", str(tmp_path))
    assert code == 2
    assert output.strip() == (
        f"error: {tmp_path / SYNTH.parent}: cannot write there (Permission denied); "
        "choose a writable --out"
    )
    assert not (tmp_path / SYNTH).exists()


def test_base_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    base = tmp_path / "model.py"
    base.write_bytes(b"\xef\xbb\xbf" + BASE_TEXT.encode())
    assert run("generate", "--base", str(base), "--out", str(tmp_path), "-q")[0] == 0


def test_a_base_nested_too_deeply_is_bad_input(tmp_path: Path) -> None:
    base = tmp_path / "deep.py"
    base.write_text("x = " + "1 + " * 20000 + "1\n")
    result = subprocess.run(
        [sys.executable, "-m", "lrgen", "generate", "--base", str(base), "--out",
         str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {base}: nested too deeply to parse; simplify its longest expression"
    )


BROKEN_LRGEN = """
import sys
import lrgen.generate
import lrgen.cli
def broken(*args, **kwargs):
    raise ValueError("an unforeseen state")
lrgen.generate.generate = broken
sys.argv = ["lrgen", *sys.argv[1:]]
lrgen.cli.main()
"""


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_an_error_in_lrgen_is_one_line_unless_debug(tmp_path: Path, debug: bool) -> None:
    args = ["--debug"] if debug else []
    result = subprocess.run(
        [sys.executable, "-c", BROKEN_LRGEN, *args, "generate", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT,
    )
    if debug:
        assert result.returncode == 1
        assert "Traceback" in result.stderr and "an unforeseen state" in result.stderr
    else:
        assert result.returncode == 3
        assert result.stderr.strip() == (
            "error: ValueError: an unforeseen state (an error in lrgen itself; run "
            "again as `lrgen --debug ...` for the traceback)"
        )


@pytest.mark.parametrize(
    ("added", "removed", "bar"),
    [(3, 1, "+++-"), (0, 0, ""), (80, 0, "+" * 40), (40, 40, "+" * 20 + "-" * 20),
     (199, 1, "+" * 39 + "-")],
    ids=["short", "none", "only-added", "halves", "one-removed-of-many"],
)
def test_stat_bar(added: int, removed: int, bar: str) -> None:
    from lrgen.review import stat_bar

    assert stat_bar(added, removed, 40) == bar


SHAPES = Path(__file__).resolve().parents[2] / "shared" / "cases" / "lemur_shapes"


@pytest.mark.skipif(not SHAPES.is_dir(), reason="the shared model shapes are absent")
def test_generate_replace_takes_out_the_models_scheduler(tmp_path: Path) -> None:
    base = SHAPES / "scheduler_already_present.py"
    code, output = run("generate", "--base", str(base), "--out", str(tmp_path))
    assert code == 2 and "pass --replace" in output
    assert not (tmp_path / SYNTH).exists()
    code, output = run("generate", "--base", str(base), "--out", str(tmp_path),
                       "--replace", "-q")
    assert code == 0, output
    for variant in catalog.VARIANTS:
        text = (tmp_path / SYNTH / variant.id / "new_nn.py").read_text()
        assert "StepLR(self.optimizer, step_size=10" not in text
        assert text.count("self.scheduler.step()") == 1
    code, output = run("diff", "A0_009", "--replace", "--base", str(base))
    assert code == 0 and "-        self.scheduler = torch.optim.lr_scheduler.StepLR(" in output


# ----------------------------------------------------------------------------
# Many bases at once.
# ----------------------------------------------------------------------------


def test_a_folder_of_bases_gives_a_folder_per_base_and_variant(tmp_path: Path) -> None:
    bases = tmp_path / "zoo"
    bases.mkdir()
    (bases / "alpha.py").write_text(BASE_TEXT)
    (bases / "broken.py").write_text("def f(:\n")
    (bases / "no_optimizer.py").write_text(
        BASE_TEXT.replace("self.optimizer = ", "self.opt = ")
    )
    (bases / "__init__.py").write_text("")
    code, output = run("generate", "--base", str(bases), "--base", str(BASE),
                       "--out", str(tmp_path / "o"), "--only", "A0_00[12]")
    assert code == 1
    synth = tmp_path / "o" / SYNTH
    assert sorted(p.name for p in synth.iterdir()) == [
        "__init__.py", "alpha_A0_001", "alpha_A0_002", "resnet18_A0_001",
        "resnet18_A0_002",
    ]
    assert (synth / "alpha_A0_001" / "new_nn.py").read_bytes() == (
        COMMITTED / "A0_001" / "new_nn.py"
    ).read_bytes()
    assert f"refused: {bases / 'broken.py'}:1:7: syntax error" in output
    assert (
        f"refused: {bases / 'no_optimizer.py'}: cannot add every variant: "
        "Net.train_setup() never assigns self.optimizer"
    ) in output
    assert "4 variants of 2 base models written; 2 base models refused whole" in output
    # The same run again changes nothing: the folder names are stable.
    before = files(synth)
    code, _ = run("generate", "--base", str(bases), "--base", str(BASE),
                  "--out", str(tmp_path / "o"), "--only", "A0_00[12]", "--check")
    assert code == 0 and files(synth) == before


def test_two_bases_of_one_name_are_told_apart(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "model.py").write_text(BASE_TEXT)
    code, output = run(
        "generate", "--base", str(tmp_path / "a" / "model.py"), "--base",
        str(tmp_path / "b" / "model.py"), "--out", str(tmp_path / "o"), "--json",
        "--only", "A0_001",
    )
    assert code == 1
    report = json.loads(output)
    assert [v["folder"] for v in report["variants"]] == ["model_A0_001"]
    assert report["refused"] == [
        f"{tmp_path / 'b' / 'model.py'}: its folders would be those of "
        f"{tmp_path / 'a' / 'model.py'} (model_A0_NNN); rename one of the two"
    ]


def test_only_keeps_the_other_variants_results_even_with_force(tmp_path: Path) -> None:
    assert run("generate", "--out", str(tmp_path), "-q")[0] == 0
    synth = tmp_path / SYNTH
    (synth / "A0_030" / "eval_info.json").write_bytes(b'{"accuracy": 0.5}\x00')
    (synth / "A0_001" / "1.json").write_text("{}")
    code, output = run("generate", "--out", str(tmp_path), "--only", "A0_002", "-q")
    assert code == 0, output
    code, output = run("generate", "--out", str(tmp_path), "--only", "A0_001",
                       "--epoch-max", "3", "-q")  # fmt: skip
    assert code == 2 and "(A0_001/1.json)" in output
    code, output = run("generate", "--out", str(tmp_path), "--only", "A0_001",
                       "--epoch-max", "3", "--force", "-q")  # fmt: skip
    assert code == 0
    assert not (synth / "A0_001" / "1.json").exists()
    assert (synth / "A0_030" / "eval_info.json").read_bytes() == b'{"accuracy": 0.5}\x00'


ONLY_RUN = [sys.executable, "-m", "lrgen", "generate", "-q", "--only"]


def test_concurrent_only_runs_keep_each_others_variants(tmp_path: Path) -> None:
    assert run("generate", "--out", str(tmp_path), "-q")[0] == 0
    hp = tmp_path / SYNTH / "{}" / "hp.txt"
    for _ in range(4):
        runs = [
            subprocess.Popen([*ONLY_RUN, ident, "--epoch-max", epochs, "--out",
                              str(tmp_path)], cwd=ROOT)
            for ident, epochs in (("A0_001", "7"), ("A0_030", "9"))
        ]
        assert [r.wait() for r in runs] == [0, 0]
        assert json.loads(Path(str(hp).format("A0_001")).read_text())["epoch_max"] == 7
        assert json.loads(Path(str(hp).format("A0_030")).read_text())["epoch_max"] == 9
        assert run("generate", "--out", str(tmp_path), "-q")[0] == 0


@pytest.mark.parametrize(
    "args",
    [["show", "[/x]"], ["diff", "[/x]"], ["generate", "--only", "[/x]"],
     ["generate", "--base", "/nowhere/m[/red].py"]],
    ids=["show", "diff", "only", "base"],
)
def test_brackets_are_printed_as_given(args: list[str]) -> None:
    code, output = run(*args)
    assert code == 2
    assert len(output.strip().splitlines()) == 1 and "Traceback" not in output
    assert "[/x]" in output or "m[/red].py" in output


def test_diff_marks_a_missing_final_newline(tmp_path: Path) -> None:
    base = tmp_path / "model.py"
    base.write_text(BASE_TEXT.rstrip("\n"))
    code, output = run("diff", "A0_001", "--base", str(base))
    assert code == 0
    assert "\n\\ No newline at end of file\n" in output


def test_output_that_is_a_device_is_bad_input(tmp_path: Path) -> None:
    code, output = run("generate", "--out", "/dev/null")
    assert code == 2 and output.strip() == (
        "error: /dev/null: is not a folder; choose another --out"
    )


def test_check_json_lists_the_stale_files(tmp_path: Path) -> None:
    assert run("generate", "--out", str(tmp_path), "-q")[0] == 0
    (tmp_path / SYNTH / "A0_003" / "hp.txt").write_text("{}\n")
    code, output = run("generate", "--out", str(tmp_path), "--check", "--json")
    assert code == 1
    assert json.loads(output)["stale"] == ["A0_003/hp.txt"]


def test_globs_ignore_case() -> None:
    assert [v.id for v in catalog.select(["cosineannealinglr_*", "a0_03?"])] == [
        "A0_009", "A0_010", "A0_011", "A0_030"
    ]
