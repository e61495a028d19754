"""The schedules picture: drawn from the committed out/ folder by running each
variant's own generated schedule."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from lrgen import catalog
from lrgen.plot import (
    PAST_HORIZON,
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


def test_a_folder_of_one_variant_into_a_new_folder(tmp_path: Path) -> None:
    copy = tmp_path / "synth_nn"
    shutil.copytree(SYNTH / "A0_014", copy / "A0_014")
    png = plot_schedules(copy, tmp_path / "p" / "one.png", batches_per_epoch=20)
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_importing_the_module_imports_neither_matplotlib_nor_torch() -> None:
    code = (
        "import sys, lrgen.plot; "
        "assert 'matplotlib' not in sys.modules and 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
