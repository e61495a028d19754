"""One picture of every generated schedule: a panel per scheduler family.

Each variant's rate is found by running its own generated
`build_lr_scheduler` (see `lrgen.models.schedule_rates`), so the picture
shows what the files do, not what the catalog says they should do.

torch (through `lrgen.models`) and matplotlib are imported only when a
picture is made, so importing this module stays cheap.

Error messages are written for `lrgen plot`'s user: they name its options
(`--variant`, `--batches`, `--out`), and each is one line.
"""

from __future__ import annotations

import difflib
import fnmatch
import itertools
import math
import os
import re
import secrets
import warnings
from collections.abc import Callable, Sequence
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
"""Curves turning more often (short cycles) are drawn thin, light and behind."""
SUMMARY_WIDTH = SINGLE_SIZE[0] - 2.0
"""Inches a variant's label and summary may take in a single panel's legend."""
TITLE_SIZE = {"single": 12.0, "grid": 13.0}
"""Font size in points of the picture's title."""

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
"""The picture types `--out` may name, by extension, as matplotlib calls them."""
METADATA: dict[str, dict[str, str | None]] = {
    # No dates and no software versions: the same input gives the same bytes.
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "Creator": None, "Producer": None},
}
MATPLOTLIB_HINT = "lrgen plot needs matplotlib: pip install 'lrgen[plot]'"

# The builder's docstring, found in the text of a file Python cannot parse.
_RAW_DOC = re.compile(
    r"def build_lr_scheduler\b.{0,200}?The (\w+) schedule, stepped", re.DOTALL
)


class NeedsMatplotlib(ImportError):
    """matplotlib, which only pictures need, is not installed."""


class BrokenVariant(ValueError):
    """A variant folder whose files cannot be read or whose schedule cannot
    be run; the message names the file and the error."""


class BrokenVariantWarning(UserWarning):
    """A variant left out of a picture (see `BrokenVariant`)."""


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
    """Whether a `--variant` pattern names the folder or its variant; case
    does not matter."""
    names = (folder.upper(), variant.id.upper(), variant.name.upper())
    if any(ch in pattern for ch in "*?["):
        return any(fnmatch.fnmatchcase(name, pattern.upper()) for name in names)
    return pattern.upper() in names


def _variant_in(folder: Path) -> Variant | None:
    """The catalog variant of a folder's `new_nn.py`, None for a file lrgen
    did not write. Nothing is imported. A file Python cannot parse (or read)
    still names its variant, from its builder's docstring or else from its
    folder's id, so that it can be selected and reported as broken."""
    from .models import variant_of

    try:
        code = (folder / "new_nn.py").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return catalog.BY_ID.get(folder.name)
    try:
        return variant_of(code)
    except (SyntaxError, ValueError):  # ValueError: a NUL byte in the code
        found = _RAW_DOC.search(code)
        if found and found.group(1) in catalog.BY_NAME:
            return catalog.BY_NAME[found.group(1)]
        return catalog.BY_ID.get(folder.name)


def _no_match(pattern: str, synth_dir: Path, found: list[tuple[Path, Variant]]) -> str:
    """Why `--variant pattern` selects nothing, with the closest names."""
    glob = any(ch in pattern for ch in "*?[")
    known = catalog.BY_ID.get(pattern.upper()) or next(
        (v for v in catalog.VARIANTS if v.name.upper() == pattern.upper()), None
    )
    if known is not None and not glob:
        return (
            f"--variant {pattern}: {known.id} {known.name} is not in {synth_dir}; "
            "'lrgen generate' writes it"
        )
    names: dict[str, str] = {}
    for folder, variant in found:
        if glob:
            names.setdefault(variant.family.lower(), f"'{variant.family}*'")
        names.setdefault(variant.name.lower(), variant.name)
    bare = re.sub(r"[*?\[\]]", "", pattern).lower()
    close = difflib.get_close_matches(bare, list(names), n=3, cutoff=0.5)
    if close:
        hint = "the closest: " + ", ".join(names[c] for c in close)
    else:
        hint = (
            f"use a folder id such as {found[0][0].name}, a name such as "
            f"{found[0][1].name} or a glob such as 'Cyclic*'"
        )
    return f"--variant {pattern} matches no variant in {synth_dir}; {hint}"


def select_variants(
    synth_dir: Path, only: Sequence[str] | None = None
) -> list[tuple[Path, Variant]]:
    """The lrgen-generated variant folders of `synth_dir`, each with its
    catalog variant, restricted to `only` (folder ids, variant ids, names or
    globs of them). Nothing is imported: a broken file elsewhere in the folder
    does not matter. Raises ValueError when there are none, or when an entry
    of `only` matches nothing."""
    found: list[tuple[Path, Variant]] = []
    for folder in variant_folders(synth_dir):
        variant = _variant_in(folder)
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
        raise ValueError(
            "; ".join(_no_match(m, synth_dir, found) for m in missing)
            + "; 'lrgen list' shows every name"
        )
    return [(f, v) for f, v in found if any(_matches(p, f.name, v) for p in only)]


def _epoch_max(folder: Path, prm: dict[str, object]) -> int:
    value = prm.get("epoch_max", prm.get("epoch"))
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BrokenVariant(
            f"{folder / 'hp.txt'}: needs a whole epoch_max of at least 1, got {value!r}"
        )
    return value


def _failure(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".strip().replace("\n", " ")


def trajectory(folder: Path, variant: Variant, batches_per_epoch: int) -> Trajectory:
    """Run the folder's generated schedule for epoch_max + PAST_HORIZON epochs,
    with lr 1. A per-batch schedule gives a point per batch at
    x = step / batches_per_epoch; a per-epoch one a point per epoch, at the
    epoch it starts, plus a closing point so its last epoch shows as a step.
    Raises BrokenVariant when hp.txt cannot be read, new_nn.py cannot be
    imported or its schedule fails."""
    from .models import load_module, read_prm, schedule_rates

    code = folder / "new_nn.py"
    try:
        prm = read_prm(folder)
    except (OSError, ValueError) as error:  # ValueError: not JSON
        raise BrokenVariant(f"{folder / 'hp.txt'}: {_failure(error)}") from error
    if not isinstance(prm, dict):
        raise BrokenVariant(f"{folder / 'hp.txt'}: not a JSON object")
    epoch_max = _epoch_max(folder, prm)
    try:
        module = load_module(code)
    except Exception as error:  # any error of the generated code
        raise BrokenVariant(
            f"{code} ({variant.name}) cannot be imported: {_failure(error)}"
        ) from error
    epochs_run = epoch_max + PAST_HORIZON
    per_batch = variant.stepping == "batch"
    # The rate only moves between epochs in a per-epoch schedule: one batch
    # an epoch shows it all.
    batches = batches_per_epoch if per_batch else 1
    try:
        seen = schedule_rates(module, variant.stepping, prm, epochs_run, batches)
    except Exception as error:  # any error of the generated code
        raise BrokenVariant(
            f"{code} ({variant.name}): its schedule fails: {_failure(error)}"
        ) from error
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
        # A curve with many waves (a short cycle) would hide the others under
        # its spikes: drawn thin, light and behind every other curve.
        busy = _turns(ys) > BUSY_TURNS
        width = 1.4 if t.variant.stepping == "epoch" else 1.0
        ax.plot(
            t.epochs,
            ys,
            label=_wrap(f"{t.label}: {t.variant.summary}", text - 0.5, SUMMARY_WIDTH)
            if big
            else t.label,
            color=f"C{index}",
            linewidth=(0.5 if busy else width) * (1.3 if big else 1),
            alpha=0.4 if busy else 1.0,
            drawstyle="steps-post" if t.variant.stepping == "epoch" else "default",
            zorder=(2.2 if busy else 3) + (len(trajectories) - index) / 100,
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
    legend = ax.legend(
        loc="upper left",
        bbox_to_anchor=(0.0, 0.0),
        bbox_transform=ax.transAxes + below,
        fontsize=text - 0.5,
        frameon=False,
        borderaxespad=0.0,
        handlelength=1.6,
        labelspacing=0.25,
    )
    for handle in legend.legend_handles:  # a light curve's key in full colour
        if handle is not None:
            handle.set_alpha(1.0)


def _check_batches(batches_per_epoch: int) -> None:
    if batches_per_epoch < 1:
        raise ValueError(f"--batches must be at least 1, got {batches_per_epoch}")


def _warn(message: str) -> None:
    warnings.warn(message, BrokenVariantWarning, stacklevel=3)


def _trajectories(
    chosen: Sequence[tuple[Path, Variant]],
    batches_per_epoch: int,
    warn: Callable[[str], None] | None,
) -> tuple[dict[str, Trajectory], list[Path]]:
    """The trajectory of every chosen variant that can be run, by name, and
    the folders of those that cannot: each is reported to `warn` (a
    BrokenVariantWarning without one). When none can be run, a ValueError
    holds the reasons instead."""
    runs: dict[str, Trajectory] = {}
    broken: list[tuple[Path, str]] = []
    for folder, variant in chosen:
        try:
            runs[variant.name] = trajectory(folder, variant, batches_per_epoch)
        except BrokenVariant as error:
            broken.append((folder, str(error)))
    if not runs:
        reasons = [reason for _, reason in broken]
        shown = "; ".join(reasons[:3])
        if len(reasons) > 3:
            shown += f"; and {len(reasons) - 3} more"
        if len(reasons) == 1:
            raise ValueError(f"{shown}; nothing to draw")
        raise ValueError(f"none of the {len(reasons)} variants can be drawn: {shown}")
    for _, reason in broken:
        (warn or _warn)(f"{reason}; left out of the picture")
    return runs, [folder for folder, _ in broken]


def _wrap(text: str, fontsize: float, width: float) -> str:
    """`text` in lines at most `width` inches wide: broken after a comma,
    colon or semicolon where it can be, else between words."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    measure = TextToPath()
    font = FontProperties(size=fontsize)

    def fits(line: str) -> bool:
        points, _, _ = measure.get_text_width_height_descent(line, font, ismath=False)
        return bool(points <= width * 72)

    lines: list[str] = []
    for clause in re.split(r"(?<=[,:;]) ", text):
        # a clause too long for a line of its own is broken between words
        for piece in [clause] if fits(clause) else clause.split(" "):
            if lines and fits(f"{lines[-1]} {piece}"):
                lines[-1] = f"{lines[-1]} {piece}"
            else:
                lines.append(piece)
    return "\n".join(lines)


def schedule_figure(
    synth_dir: Path,
    only: Sequence[str] | None = None,
    batches_per_epoch: int = 100,
    warn: Callable[[str], None] | None = None,
) -> Figure:
    """The picture `plot_schedules` saves: one axes per family, in catalog
    order (a single larger panel, with each variant's summary, when `only`
    leaves one family). Only the chosen variants are imported and run; one
    that cannot be is left out (see `_trajectories`), and the title says so."""
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    _check_batches(batches_per_epoch)
    chosen = select_variants(synth_dir, only)
    runs, broken = _trajectories(chosen, batches_per_epoch, warn)
    panels = family_panels([run.variant for run in runs.values()])
    horizons = sorted({t.epoch_max for t in runs.values()})
    horizon = ", ".join(str(h) for h in horizons)
    title = (
        f"Learning-rate schedules of {len(runs)} variant{'s' * (len(runs) != 1)}"
        f" in {synth_dir.name}/: epoch_max {horizon} (dotted line), "
        f"{batches_per_epoch} batches per epoch, "
        f"run {PAST_HORIZON} epochs past the horizon (shaded)"
    )
    if broken:
        title += "; not drawn (cannot be run): " + ", ".join(
            folder.name for folder in broken
        )
    if len(panels) == 1:  # one family: a larger panel, with each summary
        size = TITLE_SIZE["single"]
        text = _wrap(title, size, SINGLE_SIZE[0] - 0.3)
        figure = Figure(figsize=SINGLE_SIZE, dpi=DPI, layout="constrained")
        ax = figure.add_subplot()
        ((family, variants),) = panels.items()
        _draw_panel(ax, family, [runs[v.name] for v in variants], big=True)
        figure.suptitle(text, fontsize=size)
        return figure
    columns = min(PANEL_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    entries = [len(vs) for vs in panels.values()]
    legends = [max(entries[row * columns : (row + 1) * columns]) for row in range(rows)]
    width = PANEL_SIZE[0] * columns
    size = TITLE_SIZE["grid"]
    text = _wrap(title, size, width - 0.3)
    title_height = (text.count("\n") + 1) * size * 1.3 / 72
    height = sum(PANEL_SIZE[1] + 0.55 + LEGEND_LINE * n for n in legends)
    layout = ConstrainedLayoutEngine(h_pad=0.06, w_pad=0.08)
    figure = Figure(
        figsize=(width, height + 0.25 + title_height), dpi=DPI, layout=layout
    )
    grid = figure.add_gridspec(rows, columns)
    for index, (family, variants) in enumerate(panels.items()):
        ax = figure.add_subplot(grid[index // columns, index % columns])
        _draw_panel(ax, family, [runs[v.name] for v in variants])
    figure.suptitle(text, fontsize=size)
    return figure


def picture_format(path: Path) -> str:
    """The format (png, svg or pdf) matplotlib is to write to `path`, named by
    its extension, once `path` is known to be a file that can be written in
    a folder that exists: nothing is created but the file itself. Raises
    ValueError saying what is wrong with `path`."""
    if path.is_dir():
        raise ValueError(
            f"--out {path}: is a folder; pass a file name such as "
            f"{path / 'schedules.png'}"
        )
    picture = FORMATS.get(path.suffix.lower())
    if picture is None:
        named = f"a {path.suffix} file" if path.suffix else "a name without extension"
        raise ValueError(
            f"--out {path}: {named} is no picture type lrgen writes; "
            "name a .png, .svg or .pdf file"
        )
    if path.parent.exists() and not path.parent.is_dir():
        raise ValueError(f"--out {path}: {path.parent} is a file, not a folder")
    if not path.parent.is_dir():
        raise ValueError(
            f"--out {path}: the folder {path.parent} does not exist; create it "
            "first, or write the picture elsewhere"
        )
    return picture


def _require_matplotlib() -> None:
    try:
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.style  # noqa: F401
    except ImportError as error:
        raise NeedsMatplotlib(MATPLOTLIB_HINT) from error


def plot_schedules(
    synth_dir: Path,
    png: Path,
    only: list[str] | None = None,
    batches_per_epoch: int = 100,
    warn: Callable[[str], None] | None = None,
) -> Path:
    """Draw the learning rate of every variant in `synth_dir` (or of those
    `only` names) to the picture `png` (.png, .svg or .pdf: see
    `picture_format`), written atomically, and return `png`. The same folder
    and arguments give a byte-identical file. A variant that cannot be run is
    left out and reported to `warn` (see `schedule_figure`).

    Raises NeedsMatplotlib without matplotlib; ValueError for bad input (the
    folder, `only`, `batches_per_epoch`, `png`); OSError when the file
    cannot be written."""
    _require_matplotlib()
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    png = Path(png)
    picture = picture_format(png)
    _check_batches(batches_per_epoch)
    with (
        matplotlib.style.context("default"),
        matplotlib.rc_context({"svg.hashsalt": "lrgen"}),  # the same SVG ids
    ):
        figure = schedule_figure(Path(synth_dir), only, batches_per_epoch, warn)
        FigureCanvasAgg(figure)  # the non-interactive Agg renderer; no pyplot
        # Beside the target, so os.replace is atomic; mode 0o666 minus the
        # umask, like any file the user writes (mkstemp would give 0o600).
        name = png.parent / f".{png.name}.{secrets.token_hex(6)}.tmp"
        try:
            handle = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as error:
            raise OSError(f"--out {png}: cannot be written: {error.strerror}") from error
        try:
            with os.fdopen(handle, "wb") as stream:
                figure.savefig(
                    stream, format=picture, dpi=DPI, metadata=METADATA[picture]
                )
            os.replace(name, png)
        except OSError as error:
            name.unlink(missing_ok=True)
            raise OSError(f"--out {png}: cannot be written: {error.strerror}") from error
        except BaseException:
            name.unlink(missing_ok=True)
            raise
    return png
