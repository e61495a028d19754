"""The schedules picture: drawn from the committed out/ folder by running each
variant's own generated schedule."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from typer.testing import CliRunner

from lrgen import catalog
from lrgen.cli import app
from lrgen.plot import (
    PAST_HORIZON,
    BrokenVariantWarning,
    family_panels,
    plot_schedules,
    schedule_figure,
    select_variants,
)

SYNTH = Path(__file__).parents[1] / "out/nngpt/llm/epoch/A0/synth_nn"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EPOCH_MAX = json.loads((SYNTH / "A0_001" / "hp.txt").read_text())["epoch_max"]
FAMILIES = list(dict.fromkeys(v.family for v in catalog.VARIANTS))


@pytest.fixture(scope="module")
def full_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The picture of all 30 committed variants, drawn once."""
    return plot_schedules(SYNTH, tmp_path_factory.mktemp("plot") / "all.png")


@pytest.fixture(scope="module")
def figure() -> Figure:
    """The figure of all 30 variants, laid out as saved (10 batches an epoch,
    to stay quick: the layout does not depend on it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = schedule_figure(SYNTH, batches_per_epoch=10)
    FigureCanvasAgg(fig).draw()
    return fig


def test_picture_is_a_png_of_reasonable_size(full_png: Path) -> None:
    data = full_png.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert 50_000 < len(data) < 3_000_000
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    assert 1200 <= width <= 3000 and 1000 <= height <= 3000
    # written atomically: no temporary file left beside it
    assert [p.name for p in full_png.parent.iterdir()] == [full_png.name]


def test_picture_is_deterministic(full_png: Path, tmp_path: Path) -> None:
    again = plot_schedules(SYNTH, tmp_path / "again.png")
    assert again.read_bytes() == full_png.read_bytes()


def test_one_variant_is_a_single_larger_panel(tmp_path: Path) -> None:
    png = plot_schedules(SYNTH, tmp_path / "one.png", only=["OneCycleLR_default"])
    assert png == tmp_path / "one.png"
    assert png.read_bytes().startswith(PNG_MAGIC)
    fig = schedule_figure(SYNTH, only=["OneCycleLR_default"], batches_per_epoch=10)
    (ax,) = fig.axes
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("A0_")]
    assert line.get_label().startswith("A0_018 OneCycleLR_default")
    assert ax.get_yscale() == "log"
    assert ax.bbox.width > 700  # larger than a grid panel (500 px)


@pytest.mark.parametrize("only", [["NoSuchLR"], ["A0_999"], ["Cyclic*", "nope"]])
def test_an_only_matching_nothing_is_refused(only: list[str], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="matches no variant"):
        plot_schedules(SYNTH, tmp_path / "x.png", only=only)
    assert not list(tmp_path.iterdir())


def test_a_folder_without_variants_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no lrgen variants"):
        plot_schedules(tmp_path, tmp_path / "x.png")
    foreign = tmp_path / "A0_001"
    foreign.mkdir()
    (foreign / "new_nn.py").write_text("def f():\n    pass\n")
    (foreign / "hp.txt").write_text("{}")
    with pytest.raises(ValueError, match="no lrgen variants"):
        plot_schedules(tmp_path, tmp_path / "x.png")
    with pytest.raises(ValueError, match="not a folder"):
        plot_schedules(tmp_path / "missing", tmp_path / "x.png")


def test_only_takes_ids_names_and_globs() -> None:
    def names(only: list[str]) -> list[str]:
        return [v.name for _, v in select_variants(SYNTH, only)]

    assert names(["a0_014"]) == ["CyclicLR_triangular"]
    assert names(["StepLR_default", "A0_003"]) == [
        "StepLR_default",
        "StepLR_long_decay",
    ]
    assert len(names(["CyclicLR_*"])) == 4


def test_one_panel_per_family_in_catalog_order(figure: Figure) -> None:
    panels = family_panels(list(catalog.VARIANTS))
    assert list(panels) == FAMILIES and len(FAMILIES) == 14
    assert len(figure.axes) == len(panels)
    assert [ax.get_title().split()[0] for ax in figure.axes] == FAMILIES
    for ax, (family, variants) in zip(figure.axes, panels.items(), strict=True):
        labels = [
            ln.get_label() for ln in ax.get_lines() if ln.get_label()[:3] == "A0_"
        ]
        assert labels == [f"{v.id} {v.name}" for v in variants], family


def test_family_panels_of_a_subset_keeps_catalog_order() -> None:
    chosen = [catalog.get("LambdaLR_step_like"), catalog.get("StepLR_default")]
    assert list(family_panels(chosen)) == ["StepLR", "LambdaLR"]


def test_legends_sit_below_the_curves(figure: Figure) -> None:
    renderer = figure.canvas.get_renderer()
    for ax in figure.axes:
        legend = ax.get_legend().get_window_extent(renderer)
        assert legend.y1 < ax.bbox.y0, ax.get_title()  # under the axes
        for other in figure.axes:  # and over no other panel
            assert not legend.overlaps(other.bbox), (ax.get_title(), other.get_title())
    # and inside the picture
    box = figure.bbox
    for ax in figure.axes:
        legend = ax.get_legend().get_window_extent(renderer)
        assert legend.y0 >= box.y0 and legend.x1 <= box.x1, ax.get_title()


def test_scales_and_horizon(figure: Figure) -> None:
    scale = {ax.get_title().split()[0]: ax.get_yscale() for ax in figure.axes}
    # decays over decades (StepLR's gamma 0.1, OneCycleLR's final_div, a
    # polynomial reaching 0) in log scale; waves and warm-ups in [0.05, 1] linear
    for family in ("StepLR", "OneCycleLR", "PolynomialLR"):
        assert scale[family] == "log", family
    for family in ("CyclicLR", "LinearLR", "ConstantLR"):
        assert scale[family] == "linear", family
    for ax in figure.axes:
        assert ax.get_xlim() == (0.0, EPOCH_MAX + PAST_HORIZON)
        dotted = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"]
        assert [ln.get_xdata()[0] for ln in dotted] == [EPOCH_MAX]
        ymin = ax.get_ylim()[0]
        for line in ax.get_lines():
            if line.get_label()[:3] == "A0_":
                assert min(line.get_ydata()) >= ymin  # zeros clipped, not lost


def test_per_batch_curves_are_at_batch_resolution(figure: Figure) -> None:
    by_family = {ax.get_title().split()[0]: ax for ax in figure.axes}
    epochs_run = EPOCH_MAX + PAST_HORIZON
    for line in by_family["CyclicLR"].get_lines():
        if line.get_label()[:3] == "A0_":
            assert len(line.get_xdata()) == epochs_run * 10
            assert line.get_drawstyle() == "default"
    (step,) = [
        ln for ln in by_family["StepLR"].get_lines() if "default" in ln.get_label()
    ]
    assert step.get_drawstyle() == "steps-post"
    assert list(step.get_xdata()) == list(range(epochs_run + 1))
    ys = list(step.get_ydata())
    assert ys[0] == 1.0 and ys[-1] == ys[-2] < 0.1  # decayed; last epoch closed
    assert ys == sorted(ys, reverse=True)


def test_a_folder_of_one_variant(tmp_path: Path) -> None:
    copy = tmp_path / "synth_nn"
    shutil.copytree(SYNTH / "A0_014", copy / "A0_014")
    png = plot_schedules(copy, tmp_path / "one.png", batches_per_epoch=20)
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_importing_the_module_imports_neither_matplotlib_nor_torch() -> None:
    code = (
        "import sys, lrgen.plot; "
        "assert 'matplotlib' not in sys.modules and 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the command line: `lrgen plot` ------------------------------------------

runner = CliRunner()


def plot(*args: str) -> tuple[int, str, str]:
    """Run `lrgen plot` in this process: its exit code, stdout and stderr."""
    result = runner.invoke(app, ["plot", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is a failure of the test
    return result.exit_code, result.stdout, result.stderr


def one_error(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_without_matplotlib_one_line_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    code, _, stderr = plot(str(SYNTH), "--out", str(tmp_path / "x.png"))
    assert code == 2
    assert "pip install 'lrgen[plot]'" in one_error(stderr)
    assert not list(tmp_path.iterdir())


def test_cli_writes_the_picture_and_says_so(tmp_path: Path) -> None:
    png = tmp_path / "one.png"
    code, stdout, stderr = plot(
        str(SYNTH), "--variant", "A0_001", "--batches", "5", "--out", str(png)
    )
    assert (code, stdout.strip(), stderr) == (0, f"wrote {png}", "")
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_quiet_prints_nothing_on_success(tmp_path: Path) -> None:
    png = tmp_path / "one.png"
    code, stdout, stderr = plot(
        str(SYNTH), "--variant", "A0_001", "--out", str(png), "--quiet"
    )
    assert (code, stdout, stderr) == (0, "", "")
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_the_default_folder_is_the_projects_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no out/ here
    code, _, stderr = plot("--variant", "A0_001", "--out", "x.png", "-q")
    assert (code, stderr) == (0, "")
    assert (tmp_path / "x.png").read_bytes().startswith(PNG_MAGIC)


def test_help_gives_the_exit_codes_and_the_options() -> None:
    result = runner.invoke(app, ["plot", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "Exit codes: 0 the picture was written" in text
    assert "2 bad input" in text
    assert "--quiet" in text and ".png, .svg or .pdf" in text


# --- a broken variant --------------------------------------------------------


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Copies of the committed folder, each with A0_003 (StepLR_long_decay)
    broken in one way."""
    root = tmp_path_factory.mktemp("broken")
    copies: dict[str, Path] = {}
    for kind in ("syntax", "import", "schedule", "hp"):
        copy = root / kind
        shutil.copytree(SYNTH, copy)
        code = copy / "A0_003" / "new_nn.py"
        text = code.read_text()
        if kind == "syntax":
            code.write_text(text + "\ndef broken(:\n")
        elif kind == "import":
            code.write_text('raise RuntimeError("no GPU here")\n' + text)
        elif kind == "schedule":  # a later definition wins
            code.write_text(
                text + "\n\ndef build_lr_scheduler(optimizer, prm):\n"
                "    raise KeyError('gamma')\n"
            )
        else:
            (copy / "A0_003" / "hp.txt").write_text("{'lr': 0.1")
        copies[kind] = copy
    return copies


@pytest.mark.parametrize("kind", ["syntax", "import", "schedule", "hp"])
def test_a_broken_variant_elsewhere_does_not_matter(
    kind: str, broken: dict[str, Path], tmp_path: Path
) -> None:
    png = tmp_path / "one.png"
    code, _, stderr = plot(
        str(broken[kind]), "--variant", "A0_001", "--out", str(png), "-q"
    )
    assert (code, stderr) == (0, "")
    assert png.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("syntax", "new_nn.py (StepLR_long_decay) cannot be imported: SyntaxError"),
        ("import", "cannot be imported: RuntimeError: no GPU here"),
        ("schedule", "its schedule fails: KeyError: 'gamma'"),
        ("hp", "A0_003/hp.txt: JSONDecodeError"),
    ],
)
@pytest.mark.parametrize("name", ["A0_003", "StepLR_long_decay"])
def test_a_broken_chosen_variant_is_one_line_naming_it(
    kind: str, reason: str, name: str, broken: dict[str, Path], tmp_path: Path
) -> None:
    png = tmp_path / "one.png"
    code, _, stderr = plot(str(broken[kind]), "--variant", name, "--out", str(png))
    assert code == 2
    line = one_error(stderr)
    assert str(broken[kind] / "A0_003") in line and reason in line, line
    assert line.endswith("nothing to draw")
    assert not list(tmp_path.iterdir())


def test_a_broken_variant_among_others_is_left_out_with_a_warning(
    broken: dict[str, Path], tmp_path: Path
) -> None:
    png = tmp_path / "steps.png"
    code, stdout, stderr = plot(
        str(broken["import"]), "--variant", "StepLR_*", "--out", str(png)
    )
    assert code == 0 and stdout.strip() == f"wrote {png}"
    (line,) = stderr.splitlines()
    assert line.startswith("warning: ") and "A0_003" in line, line
    assert "RuntimeError: no GPU here; left out of the picture" in line
    assert png.read_bytes().startswith(PNG_MAGIC)
    # and the picture says so
    told: list[str] = []
    fig = schedule_figure(broken["import"], ["StepLR_*"], 5, warn=told.append)
    assert len(told) == 1 and "A0_003" in told[0]
    assert "not drawn (cannot be run): A0_003" in fig.get_suptitle().replace("\n", " ")
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert [lb.split(":")[0] for lb in labels if lb[:3] == "A0_"] == [
        "A0_001 StepLR_default"
    ]


def test_without_a_warn_the_library_warns(broken: dict[str, Path]) -> None:
    with pytest.warns(BrokenVariantWarning, match="A0_003"):
        schedule_figure(broken["schedule"], ["StepLR_*"], 5)


# --- --out ---------------------------------------------------------------------


def test_out_naming_a_folder_is_refused_without_leaking_a_temp_name(
    tmp_path: Path,
) -> None:
    code, _, stderr = plot(str(SYNTH), "--variant", "A0_001", "--out", str(tmp_path))
    assert code == 2
    line = one_error(stderr)
    assert f"{tmp_path}: is a folder; pass a file name such as " in line
    assert ".tmp" not in line.replace(str(tmp_path), "")
    assert not list(tmp_path.iterdir())


def test_out_in_a_missing_folder_is_refused_and_no_folder_made(tmp_path: Path) -> None:
    png = tmp_path / "no" / "such" / "x.png"
    code, _, stderr = plot(str(SYNTH), "--variant", "A0_001", "--out", str(png))
    assert code == 2
    assert f"the folder {png.parent} does not exist" in one_error(stderr)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="does not exist"):
        plot_schedules(SYNTH, png, only=["A0_001"])
    assert not list(tmp_path.iterdir())
    (tmp_path / "file").write_text("")
    code, _, stderr = plot(str(SYNTH), "--out", str(tmp_path / "file" / "x.png"))
    assert code == 2 and "is a file, not a folder" in one_error(stderr)


@pytest.mark.parametrize("name", ["x.jpg", "x.png.bak", "schedules"])
def test_an_extension_matplotlib_is_not_asked_for_is_refused(
    name: str, tmp_path: Path
) -> None:
    code, _, stderr = plot(str(SYNTH), "--out", str(tmp_path / name))
    assert code == 2
    assert "name a .png, .svg or .pdf file" in one_error(stderr)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("name", "magic"),
    [
        ("x.svg", b"<?xml"),
        ("x.pdf", b"%PDF-"),
        ("x.PNG", PNG_MAGIC),
        ("x.png", PNG_MAGIC),
    ],
)
def test_the_extension_chooses_the_format(
    name: str, magic: bytes, tmp_path: Path
) -> None:
    first = plot_schedules(SYNTH, tmp_path / name, ["A0_001"], batches_per_epoch=5)
    data = first.read_bytes()
    assert data.startswith(magic)
    if name.endswith(".svg"):
        assert b"<svg" in data
    # deterministic in every format (no dates, fixed SVG ids)
    again = plot_schedules(SYNTH, tmp_path / f"again{first.suffix}", ["A0_001"], 5)
    assert again.read_bytes() == data


# --- messages in the command's own words -------------------------------------


def test_a_variant_matching_nothing_speaks_of_variant_and_suggests() -> None:
    code, _, stderr = plot(str(SYNTH), "--variant", "OneCycleLR_defualt")
    assert code == 2
    line = one_error(stderr)
    assert line.startswith("error: --variant OneCycleLR_defualt matches no variant")
    assert "the closest: OneCycleLR_default" in line and "only=" not in line
    code, _, stderr = plot(str(SYNTH), "--variant", "Cylic*")
    assert code == 2 and "the closest: 'CyclicLR*'" in one_error(stderr)


def test_a_catalog_variant_missing_from_the_folder_is_named(tmp_path: Path) -> None:
    shutil.copytree(SYNTH / "A0_014", tmp_path / "A0_014")
    code, _, stderr = plot(str(tmp_path), "--variant", "StepLR_default")
    assert code == 2
    assert f"A0_001 StepLR_default is not in {tmp_path}" in one_error(stderr)


def test_names_are_matched_whatever_their_case() -> None:
    assert [v.name for _, v in select_variants(SYNTH, ["onecyclelr_DEFAULT"])] == [
        "OneCycleLR_default"
    ]
    assert len(select_variants(SYNTH, ["cycliclr_*"])) == 4


def test_batches_below_one_speaks_of_batches(tmp_path: Path) -> None:
    png = tmp_path / "x.png"
    code, _, stderr = plot(str(SYNTH), "--batches", "0", "--out", str(png))
    assert code == 2
    assert one_error(stderr) == "error: --batches must be at least 1, got 0"


# --- the picture: titles fit, dense curves stay behind -----------------------


@pytest.mark.parametrize(
    "only",
    [
        ["OneCycleLR_default"],  # a single variant
        ["CosineAnnealingWarmRestarts_T0_small"],  # the longest summary
        ["StepLR_*", "A0_005"],  # two panels
        ["CyclicLR_*"],  # one family
        None,  # all of them
    ],
)
def test_every_text_fits_in_the_picture(only: list[str] | None) -> None:
    fig = schedule_figure(SYNTH, only, batches_per_epoch=5)
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    texts = [fig._suptitle] + [ax.title for ax in fig.axes]  # the suptitle's Text
    texts += [ax.get_legend() for ax in fig.axes]
    for text in texts:
        extent = text.get_window_extent(renderer)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, text
        assert box.y0 <= extent.y0 and extent.y1 <= box.y1, text
    if len(fig.axes) == 1:  # a long legend does not squeeze the panel
        assert fig.axes[0].bbox.width > 0.85 * box.width


def test_dense_cycles_are_drawn_thin_light_and_behind(figure: Figure) -> None:
    (ax,) = [ax for ax in figure.axes if ax.get_title().startswith("CyclicLR")]
    lines = {ln.get_label(): ln for ln in ax.get_lines() if ln.get_label()[:3] == "A0_"}
    dense = lines.pop("A0_017 CyclicLR_small_cycle")
    assert lines, "the other three CyclicLR variants"
    for other in lines.values():
        assert dense.get_zorder() < other.get_zorder()
        assert dense.get_linewidth() <= other.get_linewidth() / 2
        assert other.get_alpha() in (None, 1.0)
    alpha = dense.get_alpha()
    assert alpha is not None and alpha <= 0.5
    # its key in the legend is in full colour, to be found
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    handle = legend.legend_handles[labels.index("A0_017 CyclicLR_small_cycle")]
    assert handle is not None and handle.get_alpha() in (None, 1.0)
