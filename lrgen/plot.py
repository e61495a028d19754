"""One picture of every generated schedule: a panel per scheduler family.

Each variant's rate is found by running its own generated
`build_lr_scheduler` (see `lrgen.models.schedule_rates`), so the picture
shows what the files do, not what the catalog says they should do.

torch (through `lrgen.models`) and matplotlib are imported only when a
picture is made, so importing this module stays cheap.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import catalog
from .catalog import Variant

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PAST_HORIZON = 2
"""Epochs run past `epoch_max`, to show what a schedule does beyond it."""

LOG_DECADES = 1.9
"""A panel is drawn in log scale when its positive rates span more decades."""

DPI = 100
PANEL_COLUMNS = 4
PANEL_SIZE = (5.0, 3.0)
"""Width and height in inches of one family's curves."""
LEGEND_LINE = 0.17
"""Height in inches of one legend line under a panel."""
SINGLE_SIZE = (11.0, 6.5)
BUSY_TURNS = 20
"""Curves turning more often (short cycles) are drawn light and behind."""


@dataclass(frozen=True)
class Trajectory:
    """The rate (as a fraction of lr) of one generated variant over its run."""

    folder: str
    variant: Variant
    epoch_max: int
    epochs: list[float]
    rates: list[float]

    @property
    def label(self) -> str:
        return f"{self.folder} {self.variant.name}"


def variant_folders(synth_dir: Path) -> list[Path]:
    """The variant folders (`new_nn.py` and `hp.txt`) of a synth_nn folder."""
    if not synth_dir.is_dir():
        raise ValueError(f"{synth_dir}: not a folder (expected a synth_nn folder)")
    return sorted(
        child
        for child in synth_dir.iterdir()
        if (child / "new_nn.py").is_file() and (child / "hp.txt").is_file()
    )


def _matches(pattern: str, folder: str, variant: Variant) -> bool:
    names = (folder, variant.id, variant.name)
    if any(ch in pattern for ch in "*?["):
        return any(fnmatch.fnmatchcase(name, pattern) for name in names)
    return pattern.upper() in (folder.upper(), variant.id) or pattern == variant.name


def select_variants(
    synth_dir: Path, only: Sequence[str] | None = None
) -> list[tuple[Path, Variant]]:
    """The lrgen-generated variant folders of `synth_dir`, each with its
    catalog variant, restricted to `only` (folder ids, variant ids, names or
    globs of them). Raises ValueError when there are none, or when an entry
    of `only` matches nothing."""
    from .models import variant_of

    found: list[tuple[Path, Variant]] = []
    for folder in variant_folders(synth_dir):
        variant = variant_of((folder / "new_nn.py").read_text(encoding="utf-8"))
        if variant is not None:
            found.append((folder, variant))
    if not found:
        raise ValueError(
            f"{synth_dir}: no lrgen variants (A0_NNN/new_nn.py with hp.txt); "
            "run 'lrgen generate' or pass the synth_nn folder it wrote"
        )
    if not only:
        return found
    missing = [
        pattern
        for pattern in only
        if not any(_matches(pattern, f.name, v) for f, v in found)
    ]
    if missing:
        shown = ", ".join(repr(m) for m in missing)
        raise ValueError(
            f"only={shown} matches no variant in {synth_dir}; use a folder id "
            f"(e.g. {found[0][0].name}) or a name (e.g. {found[0][1].name}); "
            "'lrgen list' shows all"
        )
    return [(f, v) for f, v in found if any(_matches(p, f.name, v) for p in only)]


def _epoch_max(folder: Path, prm: dict[str, object]) -> int:
    value = prm.get("epoch_max", prm.get("epoch"))
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"{folder / 'hp.txt'}: needs a whole epoch_max of at least 1, got {value!r}"
        )
    return value


def trajectory(folder: Path, variant: Variant, batches_per_epoch: int) -> Trajectory:
    """Run the folder's generated schedule for epoch_max + PAST_HORIZON epochs,
    with lr 1. A per-batch schedule gives a point per batch at
    x = step / batches_per_epoch; a per-epoch one a point per epoch, at the
    epoch it starts, plus a closing point so its last epoch shows as a step."""
    from .models import load_module, read_prm, schedule_rates

    prm = read_prm(folder)
    epoch_max = _epoch_max(folder, prm)
    module = load_module(folder / "new_nn.py")
    epochs_run = epoch_max + PAST_HORIZON
    per_batch = variant.stepping == "batch"
    # The rate only moves between epochs in a per-epoch schedule: one batch
    # an epoch shows it all.
    batches = batches_per_epoch if per_batch else 1
    seen = schedule_rates(module, variant.stepping, prm, epochs_run, batches)
    ys = [rates[0] for rates in seen]
    if per_batch:
        xs = [step / batches_per_epoch for step in range(len(seen))]
    else:
        xs = [float(epoch) for epoch in range(len(seen) + 1)]
        ys.append(ys[-1])
    return Trajectory(folder.name, variant, epoch_max, xs, ys)


def family_panels(variants: Sequence[Variant]) -> dict[str, list[Variant]]:
    """The panels of a picture: each family of `variants` (catalog order of
    first appearance) with its variants, in the order given."""
    order = {v.family: i for i, v in reversed(list(enumerate(catalog.VARIANTS)))}
    panels: dict[str, list[Variant]] = {}
    for variant in sorted(variants, key=lambda v: order.get(v.family, len(order))):
        panels.setdefault(variant.family, []).append(variant)
    return panels


def _scale(trajectories: Sequence[Trajectory]) -> float | None:
    """The bottom of the panel when it is drawn in log scale (zeros are
    clipped to it: a decade under the lowest positive rate, so they stand
    apart), or None for linear scale."""
    rates = [r for t in trajectories for r in t.rates]
    positive = [r for r in rates if r > 0]
    if not positive:
        return None
    low, high = min(positive), max(positive)
    if math.log10(high / low) <= LOG_DECADES:
        return None
    below = 1 if len(positive) < len(rates) else 0
    return float(10 ** (math.floor(math.log10(low)) - below))


def _turns(ys: Sequence[float]) -> int:
    """How often a curve changes direction."""
    slopes = [b - a for a, b in itertools.pairwise(ys) if b != a]
    return sum(1 for a, b in itertools.pairwise(slopes) if (a > 0) != (b > 0))


def _draw_panel(
    ax: Axes, family: str, trajectories: Sequence[Trajectory], big: bool = False
) -> None:
    """One family's curves, with its legend under the axes (never over them)."""
    from matplotlib.transforms import ScaledTranslation

    text = 11.0 if big else 8.0
    floor = _scale(trajectories)
    has_zero = False
    for index, t in enumerate(trajectories):
        ys = t.rates
        if floor is not None:
            has_zero = has_zero or min(ys) < floor
            ys = [max(r, floor) for r in ys]
        # A curve with many waves would hide the others: drawn light, behind.
        busy = _turns(ys) > BUSY_TURNS
        ax.plot(
            t.epochs,
            ys,
            label=f"{t.label}: {t.variant.summary}" if big else t.label,
            color=f"C{index}",
            linewidth=(1.4 if t.variant.stepping == "epoch" else 1.0)
            * (1.3 if big else 1),
            alpha=0.45 if busy else 1.0,
            drawstyle="steps-post" if t.variant.stepping == "epoch" else "default",
            zorder=(2.5 if busy else 3) + (len(trajectories) - index) / 100,
        )
    for epoch_max in sorted({t.epoch_max for t in trajectories}):
        ax.axvline(epoch_max, color="0.35", linestyle=":", linewidth=1.2, zorder=2)
    end = max(t.epoch_max for t in trajectories) + PAST_HORIZON
    ax.axvspan(min(t.epoch_max for t in trajectories), end, color="0.95", zorder=0)
    stepping = sorted({t.variant.stepping for t in trajectories})
    scale = "linear y" if floor is None else "log y"
    if has_zero:
        scale += f", 0 drawn at {floor:.0e}"
    ax.set_title(
        f"{family}  (per {'/'.join(stepping)}, {scale})",
        fontsize=text + 2,
        fontweight="bold",
    )
    ax.set_xlim(0, end)
    if floor is None:
        ax.set_ylim(-0.03, 1.05)
    else:
        ax.set_yscale("log")
        ax.set_ylim(floor / 1.6, 1.6)
        if floor < 1e-4:
            ax.minorticks_off()  # eight a decade over many decades: just noise
    ax.grid(True, which="major", color="0.88", linewidth=0.6, zorder=0)
    ax.tick_params(labelsize=text)
    ax.set_xlabel("epoch", fontsize=text, labelpad=1)
    ax.set_ylabel("rate / lr", fontsize=text, labelpad=1)
    # Anchored just under the tick labels and the x label, whatever the size.
    below = ScaledTranslation(0, -3.4 * text / 72, ax.figure.dpi_scale_trans)
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(0.0, 0.0),
        bbox_transform=ax.transAxes + below,
        fontsize=text - 0.5,
        frameon=False,
        borderaxespad=0.0,
        handlelength=1.6,
        labelspacing=0.25,
    )


def schedule_figure(
    synth_dir: Path, only: Sequence[str] | None = None, batches_per_epoch: int = 100
) -> Figure:
    """The picture `plot_schedules` saves: one axes per family, in catalog
    order (a single larger panel when `only` leaves one variant)."""
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    if batches_per_epoch < 1:
        raise ValueError(
            f"batches_per_epoch must be at least 1, got {batches_per_epoch}"
        )
    chosen = select_variants(synth_dir, only)
    runs = {v.name: trajectory(f, v, batches_per_epoch) for f, v in chosen}
    panels = family_panels([v for _, v in chosen])
    horizons = sorted({t.epoch_max for t in runs.values()})
    horizon = ", ".join(str(h) for h in horizons)
    title = (
        f"Learning-rate schedules of {len(runs)} variant{'s' * (len(runs) != 1)}"
        f" in {synth_dir.name}/: epoch_max {horizon} (dotted line), "
        f"{batches_per_epoch} batches per epoch, "
        f"run {PAST_HORIZON} epochs past the horizon (shaded)"
    )
    if len(runs) == 1:
        figure = Figure(figsize=SINGLE_SIZE, dpi=DPI, layout="constrained")
        ax = figure.add_subplot()
        ((family, variants),) = panels.items()
        _draw_panel(ax, family, [runs[v.name] for v in variants], big=True)
        figure.suptitle(title, fontsize=12)
        return figure
    columns = min(PANEL_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    entries = [len(vs) for vs in panels.values()]
    legends = [max(entries[row * columns : (row + 1) * columns]) for row in range(rows)]
    width = PANEL_SIZE[0] * columns
    height = sum(PANEL_SIZE[1] + 0.55 + LEGEND_LINE * n for n in legends) + 0.5
    layout = ConstrainedLayoutEngine(h_pad=0.06, w_pad=0.08)
    figure = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    grid = figure.add_gridspec(rows, columns)
    for index, (family, variants) in enumerate(panels.items()):
        ax = figure.add_subplot(grid[index // columns, index % columns])
        _draw_panel(ax, family, [runs[v.name] for v in variants])
    figure.suptitle(title, fontsize=13)
    return figure


def plot_schedules(
    synth_dir: Path,
    png: Path,
    only: list[str] | None = None,
    batches_per_epoch: int = 100,
) -> Path:
    """Draw the learning rate of every variant in `synth_dir` (or of those
    `only` names) to the PNG `png`, written atomically, and return `png`.
    The same folder and arguments give a byte-identical file."""
    try:
        import matplotlib.style
    except ImportError as error:  # pragma: no cover - matplotlib is installed
        raise RuntimeError(
            "plotting needs matplotlib: pip install matplotlib"
        ) from error
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    png = Path(png)
    with matplotlib.style.context("default"):
        figure = schedule_figure(Path(synth_dir), only, batches_per_epoch)
        FigureCanvasAgg(figure)  # the non-interactive Agg renderer; no pyplot
        png.parent.mkdir(parents=True, exist_ok=True)
        # Beside the target, so os.replace is atomic; mode 0o666 minus the
        # umask, like any file the user writes (mkstemp would give 0o600).
        name = png.parent / f".{png.name}.{secrets.token_hex(6)}.tmp"
        handle = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(handle, "wb") as stream:
                figure.savefig(
                    stream, format="png", dpi=DPI, metadata={"Software": None}
                )
            os.replace(name, png)
        except BaseException:
            name.unlink(missing_ok=True)
            raise
    return png
