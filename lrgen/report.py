"""The training report: what `lrgen eval` measured, ranked and drawn.

Every variant folder's `lrgen_eval.json` is read; with several seeds a
variant's curves are the mean over its seeds per epoch, and its spread the
standard deviation over them (`statistics.stdev`, the sample standard
deviation, which is also what stability is measured with). `report.md` and
its pictures are written together (see `write_report`).

matplotlib is imported only when pictures are drawn, so importing this
module stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import statistics
import tempfile
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import catalog
from .generate import VARIANT_FOLDER, BadInput, exchange_folders, output_lock
from .plot import LOG_DECADES, METADATA, NeedsMatplotlib

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

RECORD = "lrgen_eval.json"
REPORT = "report.md"
PICTURES = "report_files"
"""The folder beside report.md that holds its pictures."""
NEAR_BEST = 0.95
"""Converged: the first epoch whose test accuracy reaches this share of the
variant's own best."""
CONTENDER = 0.95
"""The fastest and the most stable are chosen among the variants whose best
accuracy reaches this share of the highest best: one that never learns
'converges' at once and keeps a flat loss."""
MATPLOTLIB_HINT = "lrgen report needs matplotlib: pip install 'lrgen[plot]'"
FORMATS = ("png", "svg")
DPI = 100
ROW = 0.24
"""Inches a variant takes in the pictures with a row per variant."""


@dataclass(frozen=True)
class Spread:
    """A mean over seeds and its sample standard deviation (None: one seed)."""

    mean: float
    std: float | None


@dataclass(frozen=True)
class Result:
    """One trained variant: its mean curves over seeds and what they show."""

    folder: str
    name: str | None
    family: str | None
    dataset: str
    epochs: tuple[int, ...]
    seeds: tuple[int, ...]
    accuracy: tuple[Spread, ...]
    loss: tuple[Spread, ...]
    rate: tuple[float, ...]
    seconds: float
    classes: tuple[str, ...]
    class_accuracy: tuple[float, ...] | None
    settings: dict[str, Any]
    tested: int | None = None
    """Test images each epoch was scored on."""

    @property
    def label(self) -> str:
        return f"{self.folder} {self.name}" if self.name else self.folder

    @property
    def final(self) -> Spread:
        return self.accuracy[-1]

    @property
    def best_index(self) -> int:
        """The index of the first epoch with the highest mean accuracy."""
        means = [a.mean for a in self.accuracy]
        return means.index(max(means))

    @property
    def best(self) -> Spread:
        return self.accuracy[self.best_index]

    @property
    def best_epoch(self) -> int:
        return self.epochs[self.best_index]

    @property
    def converged_epoch(self) -> int:
        """The first epoch whose mean accuracy reaches NEAR_BEST x the best."""
        bar = NEAR_BEST * self.best.mean
        return next(e for e, a in zip(self.epochs, self.accuracy) if a.mean >= bar)

    @property
    def last_third(self) -> int:
        """Epochs in the last third: a third of the run rounded up, at least
        2 (and at most the whole run)."""
        return min(len(self.epochs), max(2, math.ceil(len(self.epochs) / 3)))

    @property
    def loss_spread(self) -> float | None:
        """The standard deviation of the mean test loss over the last third;
        None for a run of one epoch."""
        if len(self.epochs) < 2:
            return None
        return statistics.stdev(s.mean for s in self.loss[-self.last_third :])

    @property
    def loss_rises(self) -> int:
        """Epochs whose mean test loss is above the epoch before's."""
        means = [s.mean for s in self.loss]
        return sum(b > a for a, b in zip(means, means[1:]))


@dataclass(frozen=True)
class Failure:
    """A variant whose training failed, or whose results cannot be read."""

    folder: str
    name: str | None
    error: str

    @property
    def label(self) -> str:
        return f"{self.folder} {self.name}" if self.name else self.folder


@dataclass(frozen=True)
class Answer:
    """One of the report's three questions and the variant that answers it."""

    question: str
    result: Result | None
    because: str
    picture: str


@dataclass(frozen=True)
class Results:
    """Everything read from a synth_nn folder: the ranking, best first."""

    ranked: list[Result]
    failed: list[Failure]
    missing: list[str]
    """Variant folders with no results yet."""
    stale: list[str]
    """Variants whose new_nn.py or hp.txt changed since they were trained."""

    @property
    def title(self) -> str:
        count = len(self.ranked) + len(self.failed)
        datasets = _listed(sorted({r.dataset for r in self.ranked}))
        epochs = _listed(sorted({len(r.epochs) for r in self.ranked}))
        seeds = sorted({s for r in self.ranked for s in r.seeds})
        return (
            f"Training report: {count} variant{'s' * (count != 1)} on {datasets}, "
            f"{epochs} epochs, seed{'s' * (len(seeds) > 1)} {_listed(seeds)}"
        )

    @property
    def seeds_per_variant(self) -> set[int]:
        return {len(r.seeds) for r in self.ranked}

    @property
    def repeated(self) -> bool:
        return any(len(r.seeds) > 1 for r in self.ranked)

    def answers(self) -> list[Answer]:
        """Most accurate at the end, fastest to converge, most stable: each
        decided by one figure, ties broken in a fixed order."""
        return [self._most_accurate(), self._fastest(), self._most_stable()]

    def contenders(self) -> list[Result]:
        top = max(r.best.mean for r in self.ranked)
        return [r for r in self.ranked if r.best.mean >= CONTENDER * top]

    def _most_accurate(self) -> Answer:
        first = self.ranked[0]
        tied = [r for r in self.ranked[1:] if r.final.mean == first.final.mean]
        because = (
            f"{_percent(first.final)} test accuracy after the last epoch "
            f"(best {_percent(first.best)} at epoch {first.best_epoch})"
        )
        if tied:
            because += _ties(tied, "final accuracy", "the higher best accuracy, "
                             "then the variant folder's name")
        return Answer("Most accurate at the end", first, because, "accuracy.{ext}")

    def _fastest(self) -> Answer:
        pool = sorted(
            self.contenders(),
            key=lambda r: (r.converged_epoch, *_rank_key(r)),
        )
        first = pool[0]
        tied = [r for r in pool[1:] if r.converged_epoch == first.converged_epoch]
        because = (
            f"reaches {NEAR_BEST:.0%} of its best accuracy "
            f"({_percent(first.best)}) at epoch {first.converged_epoch} of "
            f"{len(first.epochs)}; {_among(len(pool))}"
        )
        if tied:
            because += _ties(tied, "that epoch", "the ranking (final, then best "
                             "accuracy)")
        return Answer("Fastest to converge", first, because, "convergence.{ext}")

    def _most_stable(self) -> Answer:
        pool = sorted(
            (r for r in self.contenders() if r.loss_spread is not None),
            key=lambda r: (r.loss_spread, r.loss_rises, *_rank_key(r)),
        )
        if not pool:
            return Answer("Most stable", None, "no variant ran 2 epochs or more",
                          "stability.{ext}")
        first = pool[0]
        spread = first.loss_spread or 0.0
        tied = [r for r in pool[1:] if r.loss_spread == spread]
        because = (
            f"test loss standard deviation {spread:.4g} over the last "
            f"{first.last_third} epochs, and {_rises(first.loss_rises)} over "
            f"the run; {_among(len(pool))}"
        )
        if tied:
            because += _ties(tied, "that spread", "fewer rises, then the ranking")
        return Answer("Most stable", first, because, "stability.{ext}")


def _among(count: int) -> str:
    if count == 1:
        return (f"the only variant whose best accuracy is at least "
                f"{CONTENDER:.0%} of the highest")
    return (f"chosen among the {count} variants whose best accuracy is at least "
            f"{CONTENDER:.0%} of the highest")


def _listed(values: Sequence[object]) -> str:
    text = [str(v) for v in values]
    return text[0] if len(text) == 1 else ", ".join(text[:-1]) + " and " + text[-1]


TIES_NAMED = 3
"""Variants a tie names; the rest are counted (the ranking shows them all)."""


def _ties(tied: list[Result], what: str, rule: str) -> str:
    names = ", ".join(r.label for r in tied[:TIES_NAMED])
    if len(tied) > TIES_NAMED:
        names += f" and {len(tied) - TIES_NAMED} more"
    return f"; tied on {what} with {names}: {rule} decides"


def _rises(count: int) -> str:
    return f"{count} rise{'s' * (count != 1)}"


def _percent(value: Spread, sign: str = "%") -> str:
    text = f"{100 * value.mean:.2f}"
    if value.std is not None:
        text += f" ± {100 * value.std:.2f}"
    return text + sign


def _rank_key(result: Result) -> tuple[float, float, str]:
    """Higher final accuracy first, then higher best, then folder name."""
    return (-result.final.mean, -result.best.mean, result.folder)


# ----------------------------------------------------------------------------
# Reading the records
# ----------------------------------------------------------------------------


class BadRecord(ValueError):
    """A record that does not hold what `lrgen eval` writes."""


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRecord(f"{where} is {value!r}, not a number")
    if not math.isfinite(value):
        raise BadRecord(f"{where} is {value!r}")
    return float(value)


def _spread(values: Sequence[float]) -> Spread:
    std = statistics.stdev(values) if len(values) > 1 else None
    return Spread(statistics.fmean(values), std)


def _runs(record: dict[str, Any]) -> list[dict[str, Any]]:
    runs = record.get("runs")
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise BadRecord("'runs' is not a list of runs")
    ok = [r for r in runs if r.get("status") == "ok"]
    if not ok:
        raise BadRecord("no run finished")
    for index, run in enumerate(ok):
        epochs = run.get("epochs")
        if not isinstance(epochs, list) or not epochs:
            raise BadRecord(f"run {index + 1} has no epochs")
        if not all(isinstance(e, dict) for e in epochs):
            raise BadRecord(f"run {index + 1}'s epochs are not objects")
    return ok


def summarize(folder: str, record: dict[str, Any]) -> Result | Failure:
    """What one record shows; a Failure for a failed variant. Raises
    BadRecord when the record does not hold a training's results."""
    known = catalog.BY_ID.get(folder[-6:])
    name = record.get("name") or (known.name if known else None)
    family = record.get("family") or (known.family if known else None)
    if record.get("status") == "failed":
        runs = record.get("runs") or []
        errors = [r.get("error") for r in runs if isinstance(r, dict)]
        error = record.get("error") or next((e for e in errors if e), None)
        text = str(error or "failed, with no error given")
        text = text.removeprefix(f"{folder}: ")  # the label names the folder
        return Failure(folder, name, text)
    if record.get("status") != "ok":
        raise BadRecord(f"status is {record.get('status')!r}, not 'ok' or 'failed'")
    runs = _runs(record)
    length = min(len(run["epochs"]) for run in runs)
    columns: dict[str, list[list[float]]] = {}
    for key in ("test_accuracy", "test_loss", "lr", "seconds"):
        columns[key] = [
            [_number(e.get(key), f"epoch {i + 1}'s {key}")
             for i, e in enumerate(run["epochs"][:length])]
            for run in runs
        ]
    per_epoch = {key: list(zip(*rows)) for key, rows in columns.items()}
    epochs = tuple(
        int(_number(e.get("epoch", i + 1), f"epoch {i + 1}'s number"))
        for i, e in enumerate(runs[0]["epochs"][:length])
    )
    classes = tuple(str(c) for c in record.get("classes") or ())
    class_rows = [run.get("class_accuracy") for run in runs]
    class_accuracy = None
    if classes and all(isinstance(c, list) and len(c) == len(classes)
                       for c in class_rows):
        columns_of_class = zip(*(c for c in class_rows if isinstance(c, list)))
        class_accuracy = tuple(
            statistics.fmean(_number(v, "a class accuracy") for v in values)
            for values in columns_of_class
        )
    settings = record.get("settings")
    settings = settings if isinstance(settings, dict) else {}
    tested = record.get("test_samples")
    return Result(
        folder=folder,
        name=str(name) if name else None,
        family=str(family) if family else None,
        dataset=_dataset(settings),
        epochs=epochs,
        seeds=tuple(int(r.get("seed", i)) for i, r in enumerate(runs)),
        accuracy=tuple(_spread(v) for v in per_epoch["test_accuracy"]),
        loss=tuple(_spread(v) for v in per_epoch["test_loss"]),
        rate=tuple(statistics.fmean(v) for v in per_epoch["lr"]),
        seconds=math.fsum(s for run in columns["seconds"] for s in run),
        classes=classes,
        class_accuracy=class_accuracy,
        settings=settings,
        tested=tested if isinstance(tested, int) and tested > 0 else None,
    )


def _dataset(settings: dict[str, Any]) -> str:
    name = str(settings.get("dataset") or "an unnamed dataset")
    limit = settings.get("limit")
    return f"{name} (first {limit} training samples)" if limit else name


def read_record(path: Path) -> dict[str, Any]:
    """One `lrgen_eval.json`, parsed; BadRecord when it is not a format-1
    record."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise BadRecord(f"cannot be read ({error})") from error
    if not isinstance(record, dict):
        raise BadRecord("is not a JSON object")
    if record.get("format") != 1:
        raise BadRecord(f"has format {record.get('format')!r}; this lrgen reads 1")
    return record


def _changed(folder: Path, record: dict[str, Any]) -> bool:
    """Whether the folder's new_nn.py or hp.txt differ from what was trained
    (by the sha256 the record holds; a file or hash that is absent counts as
    no change)."""
    for name, key in (("new_nn.py", "code_sha256"), ("hp.txt", "hp_sha256")):
        trained = record.get(key)
        try:
            now = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        except OSError:
            continue
        if isinstance(trained, str) and trained != now:
            return True
    return False


def read_results(synth_dir: Path) -> Results:
    """Every variant folder's results in `synth_dir`, ranked: higher final
    test accuracy first, then higher best, then by folder name. A record that
    cannot be read is listed with the failed variants. Raises BadInput when
    there are no results at all."""
    if not synth_dir.is_dir():
        raise BadInput(f"{synth_dir}: not a folder; pass the synth_nn folder "
                       "lrgen generate wrote")
    folders = sorted(
        p for p in synth_dir.iterdir()
        if p.is_dir() and VARIANT_FOLDER.fullmatch(p.name)
    )
    ranked: list[Result] = []
    failed: list[Failure] = []
    missing: list[str] = []
    stale: list[str] = []
    for folder in folders:
        path = folder / RECORD
        if not path.exists():
            missing.append(folder.name)
            continue
        try:
            record = read_record(path)
            found = summarize(folder.name, record)
        except (BadRecord, TypeError, ValueError, KeyError, AttributeError) as error:
            # A record of another shape (edited, or another program's).
            why = str(error) if isinstance(error, BadRecord) else (
                f"is not a record this lrgen wrote ({type(error).__name__})"
            )
            known = catalog.BY_ID.get(folder.name[-6:])
            found = Failure(
                folder.name, known.name if known else None,
                f"{path.name} {why}; train it again: lrgen eval --only "
                f"{folder.name} --force",
            )
        if isinstance(found, Failure):
            failed.append(found)
            continue
        ranked.append(found)
        if _changed(folder, record):
            stale.append(folder.name)
    if not ranked:
        if not folders:
            what = ("no variant folders (A0_NNN) in it; pass the synth_nn folder "
                    "lrgen generate wrote")
        elif failed:
            first = failed[0]
            shown = textwrap.shorten(first.error, 120, placeholder=" ...")
            what = (f"every variant with results failed ({len(failed)}; "
                    f"{first.label}: {shown}); nothing to rank")
        else:
            what = ("its variant folder has no results" if len(folders) == 1 else
                    f"none of its {len(folders)} variant folders has results")
            what += "; run lrgen eval first"
        raise BadInput(f"{synth_dir}: {what}")
    ranked.sort(key=_rank_key)
    return Results(ranked, failed, missing, stale)


# ----------------------------------------------------------------------------
# The table, as text for Markdown and the terminal alike
# ----------------------------------------------------------------------------

COLUMNS = (
    "rank", "variant", "name", "family", "final test acc. %", "best test acc. % "
    "(epoch)", "epochs to 95% of best", "test loss std, last third",
    "test loss rises", "seconds",
)


def table_rows(results: Results) -> list[tuple[str, ...]]:
    """A row of text per ranked variant, in COLUMNS' order."""
    rows: list[tuple[str, ...]] = []
    for rank, r in enumerate(results.ranked, 1):
        spread = r.loss_spread
        rows.append((
            str(rank), r.folder, r.name or "?", r.family or "?",
            _percent(r.final, ""), f"{_percent(r.best, '')} ({r.best_epoch})",
            str(r.converged_epoch),
            "n/a" if spread is None else f"{spread:.4f}",
            str(r.loss_rises), f"{r.seconds:.1f}",
        ))
    return rows


def missing_line(results: Results) -> str | None:
    count = len(results.missing)
    if not count:
        return None
    has = "variant has" if count == 1 else "variants have"
    return f"{count} {has} no results; run lrgen eval"


def stale_line(results: Results) -> str | None:
    count = len(results.stale)
    if not count:
        return None
    whose = "variant's" if count == 1 else "variants'"
    return (f"{count} {whose} new_nn.py or hp.txt changed since training "
            f"({', '.join(results.stale)}); run lrgen eval again for them")


def mixed_line(results: Results) -> str | None:
    """A warning when the ranked variants were trained with different
    settings, naming the settings that differ."""
    differ: dict[str, list[str]] = {}
    for key in sorted({k for r in results.ranked for k in r.settings}):
        seen = sorted({json.dumps(r.settings.get(key)) for r in results.ranked})
        if len(seen) > 1:
            differ[key] = seen
    if not differ:
        return None
    shown = "; ".join(f"{k} {' or '.join(v)}" for k, v in differ.items())
    return (f"the variants were trained with different settings ({shown}), so "
            "they do not compare like with like; train them alike with lrgen "
            "eval --force")


def resolution_line(results: Results) -> str | None:
    """How much one test image weighs, when every variant was tested on the
    same number of images."""
    counts = {r.tested for r in results.ranked}
    if len(counts) != 1 or None in counts:
        return None
    (count,) = counts
    assert count is not None
    return (f"one test image is {100 / count:.2f} points of accuracy on these "
            f"{count:,} test images: variants a few images apart may differ by "
            "luck alone (--repeats in lrgen eval measures the spread over seeds)")


def third_note(results: Results) -> str:
    """How the last third was counted, with an example from the run."""
    lengths = sorted({len(r.epochs) for r in results.ranked if len(r.epochs) > 1})
    if not lengths:
        return "With one epoch a run has no spread of its test loss."
    examples = ", ".join(
        f"the last {min(n, max(2, math.ceil(n / 3)))} of {n}" for n in lengths
    )
    return (
        "The last third is a third of the epochs rounded up, at least 2 "
        f"({examples}); the spread is the sample standard deviation "
        "(statistics.stdev) of the test loss over it."
    )


# ----------------------------------------------------------------------------
# report.md
# ----------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _code(text: str) -> str:
    """`text` as a Markdown code span, whatever backticks it holds."""
    text = " ".join(text.split())
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_NUMERIC = {c for c in COLUMNS if c not in ("variant", "name", "family")}


def markdown(results: Results, pictures: dict[str, str]) -> str:
    """The text of report.md; `pictures` maps each picture's relative path to
    its caption, in the order they are shown."""
    lines = [f"# {results.title}", ""]
    reps = sorted(results.seeds_per_variant)
    if results.repeated:
        lines += [
            f"Each variant was trained with {_listed(reps)} seeds: curves and "
            "figures are the mean over seeds per epoch, and ± gives the sample "
            "standard deviation over seeds (of the final accuracy, and of the "
            "accuracy at the epoch of the best mean).",
            "",
        ]
    for answer in results.answers():
        picture = answer.picture.format(ext=_ext(pictures))
        who = answer.result.label if answer.result else "none"
        lines.append(
            f"- **{answer.question}:** {who}: {answer.because}; see "
            f"[{picture}]({PICTURES}/{picture})."
        )
    lines += ["", "## Ranking", ""]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "|".join("---:" if c in _NUMERIC else "---" for c in COLUMNS)
                 + "|")
    for row in table_rows(results):
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    lines += [
        "",
        "Ranked by final test accuracy, then best test accuracy, then the "
        "variant folder's name. The best is the highest mean accuracy (its "
        "first epoch if it recurs); a variant converges at the first epoch "
        f"whose accuracy reaches {NEAR_BEST:.0%} of its own best. "
        + third_note(results) + " Loss rises count the epochs whose test loss "
        "is above the epoch before's, over the whole run. Seconds are the "
        "training and test time of every seed.",
    ]
    note = resolution_line(results)
    if note:
        lines += ["", note[0].upper() + note[1:] + "."]
    note = missing_line(results)
    if note:
        lines += ["", f"{note}: {', '.join(results.missing)}."]
    note = stale_line(results)
    if note:
        lines += ["", f"{note}."]
    note = mixed_line(results)
    if note:
        lines += ["", f"**Warning:** {note}."]
    if results.failed:
        lines += ["", "## Failed variants", ""]
        lines += [f"- {_cell(f.label)}: {_code(f.error)}" for f in results.failed]
    lines += ["", "## Figures"]
    headings = set()
    for path, caption in pictures.items():
        heading = "Curves by family" if path.startswith("family-") else caption
        if heading not in headings:
            lines += ["", f"### {heading}"]
            headings.add(heading)
        lines += ["", f"![{caption}]({PICTURES}/{path})"]
    return "\n".join(lines).rstrip("\n") + "\n"



def _ext(pictures: dict[str, str]) -> str:
    return next(iter(pictures)).rsplit(".", 1)[1]


# ----------------------------------------------------------------------------
# Pictures
# ----------------------------------------------------------------------------


def family_order(results: Sequence[Result]) -> dict[str, list[Result]]:
    """Each family with its variants by folder name; families in catalog
    order, then unknown ones by name."""
    order = {v.family: i for i, v in reversed(list(enumerate(catalog.VARIANTS)))}
    groups: dict[str, list[Result]] = {}
    for r in sorted(results, key=lambda r: r.folder):
        groups.setdefault(r.family or "other", []).append(r)
    return dict(sorted(groups.items(), key=lambda g: (order.get(g[0], len(order)),
                                                      g[0])))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "other"


def _percent_axis(axis: Any) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(1.0))


def _rate_scale(rates: Sequence[float]) -> float | None:
    """The bottom of a log-scale rate axis (zeros are drawn there), or None
    for a linear one: log when the positive rates span decades."""
    positive = [r for r in rates if r > 0]
    if not positive or math.log10(max(positive) / min(positive)) <= LOG_DECADES:
        return None
    below = 1 if len(positive) < len(rates) else 0
    return float(10 ** (math.floor(math.log10(min(positive))) - below))


def _stepping(result: Result) -> str:
    known = catalog.BY_ID.get(result.folder[-6:])
    return known.stepping if known else "epoch"


def _curves(ax: Axes, rate_ax: Axes, metric: str, group: list[Result],
            floor: float | None) -> None:
    for index, r in enumerate(group):
        color = f"C{index % 10}"
        spreads = r.accuracy if metric == "accuracy" else r.loss
        means = [s.mean for s in spreads]
        marker = "o" if len(r.epochs) <= 30 else None
        ax.plot(r.epochs, means, color=color, linewidth=1.6, marker=marker,
                markersize=3, zorder=3)
        if all(s.std is not None for s in spreads):
            low = [s.mean - (s.std or 0.0) for s in spreads]
            high = [s.mean + (s.std or 0.0) for s in spreads]
            ax.fill_between(r.epochs, low, high, color=color, alpha=0.18,
                            linewidth=0, zorder=2)
        # The rate read after epoch e is the one epoch e + 1 trains with: a
        # per-epoch schedule holds it from e to e + 1.
        rates = [max(x, floor) for x in r.rate] if floor else list(r.rate)
        steps = "default" if _stepping(r) == "batch" else "steps-post"
        rate_ax.plot(r.epochs, rates, color=color, linestyle=(0, (1.5, 1.5)),
                     linewidth=1.2, alpha=0.75, zorder=1, drawstyle=steps)
    ax.set_zorder(rate_ax.get_zorder() + 1)  # the measures over the rates
    ax.patch.set_visible(False)


def family_figure(family: str, group: list[Result], repeated: bool) -> Figure:
    """Test accuracy and test loss of a family's variants per epoch, each
    with its rate after the epoch on a second axis."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(12.0, 4.6 + 0.2 * len(group)), dpi=DPI,
                    layout="constrained")
    floor = _rate_scale([x for r in group for x in r.rate])
    axes = figure.subplots(1, 2)
    for ax, metric in zip(axes, ("accuracy", "loss")):
        rate_ax = ax.twinx()
        _curves(ax, rate_ax, metric, group, floor)
        ax.set_title(f"test {metric}", fontsize=11)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"test {metric} (solid)")
        ax.grid(True, color="0.9", linewidth=0.6)
        if metric == "accuracy":
            _percent_axis(ax.yaxis)
        label = "rate after the epoch (dotted)"
        if floor is not None:
            rate_ax.set_yscale("log")
            rate_ax.set_ylim(bottom=floor / 1.5)
            if any(x <= 0 for r in group for x in r.rate):
                label += f", 0 drawn at {floor:.0e}"
        else:
            rate_ax.set_ylim(bottom=0)
        rate_ax.set_ylabel(label, color="0.35")
        rate_ax.tick_params(axis="y", colors="0.35")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles: list[Any] = [
        Line2D([], [], color=f"C{i % 10}", linewidth=2) for i in range(len(group))
    ]
    labels = [r.label for r in group]
    handles.append(Line2D([], [], color="0.2", linestyle=(0, (1.5, 1.5))))
    per_batch = any(_stepping(r) == "batch" for r in group)
    labels.append("rate read after each epoch (right axis"
                  + ("; sampled once an epoch)" if per_batch else ")"))
    if repeated:
        handles.append(Patch(color="0.2", alpha=0.18))
        labels.append("± 1 std over seeds")
    figure.legend(handles, labels, loc="outside lower center", frameon=False,
                  ncols=2 if len(labels) > 3 else len(labels), fontsize=9.5)
    figure.suptitle(f"{family}: test accuracy and test loss per epoch, with the "
                    "rate", fontsize=13, fontweight="bold")
    return figure


def _rows(ax: Axes, results: Sequence[Result]) -> list[int]:
    """A row per variant, the first at the top, labelled with its rank."""
    ys = list(range(len(results)))[::-1]
    ax.set_yticks(ys, [f"{i}. {r.label}" for i, r in enumerate(results, 1)],
                  fontsize=8.5)
    ax.set_ylim(-0.7, len(results) - 0.3)
    ax.grid(True, axis="x", color="0.9", linewidth=0.6)
    return ys


def _listing_figure(count: int, title: str) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10.0, 1.6 + ROW * count), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    figure.suptitle(title, fontsize=12, fontweight="bold")
    return figure, ax


def accuracy_figure(results: Results) -> Figure:
    """Final and best test accuracy of every variant, in rank order."""
    ranked = results.ranked
    figure, ax = _listing_figure(len(ranked), "Final and best test accuracy, "
                                 "in rank order")
    ys = _rows(ax, ranked)
    finals = [r.final.mean for r in ranked]
    bests = [r.best.mean for r in ranked]
    ax.hlines(ys, finals, bests, color="0.75", linewidth=1.2, zorder=1)
    error = [r.final.std or 0.0 for r in ranked] if results.repeated else None
    ax.errorbar(finals, ys, xerr=error, fmt="o", color="C0", markersize=5,
                capsize=2.5, label="final (after the last epoch)"
                + (", ± 1 std" if error else ""), zorder=3)
    ax.scatter(bests, ys, marker="D", facecolors="none", edgecolors="C3", s=30,
               linewidths=1.2, label="best (at any epoch)", zorder=4)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: not labels[i].startswith("final"))
    _percent_axis(ax.xaxis)
    ax.set_xlabel("test accuracy")
    figure.legend([handles[i] for i in order], [labels[i] for i in order],
                  loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    return figure


def _bar_colors(results: Results, winner: Result | None) -> list[str]:
    contenders = {r.folder for r in results.contenders()}
    return [
        "C1" if winner is not None and r.folder == winner.folder
        else "C0" if r.folder in contenders else "0.8"
        for r in results.ranked
    ]


def _contender_legend(figure: Figure, results: Results, winner: str) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color="C1"), Patch(color="C0")]
    labels = [winner, "contender"]
    if len(results.contenders()) < len(results.ranked):
        handles.append(Patch(color="0.8"))
        labels.append(f"best accuracy below {CONTENDER:.0%} of the highest: not "
                      "a contender")
    figure.legend(handles, labels, loc="outside lower center", ncols=3,
                  frameon=False, fontsize=9)


def convergence_figure(results: Results, fastest: Result | None) -> Figure:
    """Epochs each variant needs to reach NEAR_BEST of its own best."""
    ranked = results.ranked
    figure, ax = _listing_figure(len(ranked), f"Epochs to reach {NEAR_BEST:.0%} "
                                 "of the variant's own best test accuracy")
    ys = _rows(ax, ranked)
    epochs = [r.converged_epoch for r in ranked]
    ax.barh(ys, epochs, color=_bar_colors(results, fastest), height=0.7)
    for y, r in zip(ys, ranked):
        ax.text(r.converged_epoch, y, f" {r.converged_epoch}", va="center",
                fontsize=8)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, max(len(r.epochs) for r in ranked) + 0.8)
    ax.set_xlabel("epoch")
    _contender_legend(figure, results, "fastest")
    return figure


def stability_figure(results: Results, stable: Result | None) -> Figure:
    """The spread of the test loss over the last third, and its rises."""
    ranked = results.ranked
    figure, ax = _listing_figure(len(ranked), "Test loss standard deviation over "
                                 "the last third of the epochs (and how often "
                                 "the loss rose)")
    ys = _rows(ax, ranked)
    spreads = [r.loss_spread or 0.0 for r in ranked]
    positive = [s for s in spreads if s > 0]
    log = bool(positive) and max(positive) / min(positive) > 10 ** LOG_DECADES
    ax.barh(ys, spreads, color=_bar_colors(results, stable), height=0.7)
    for y, r, s in zip(ys, ranked, spreads):
        text = "n/a" if r.loss_spread is None else f"{s:.3g}" if log else f"{s:.4f}"
        ax.text(s, y, f" {text}, {_rises(r.loss_rises)}", va="center", fontsize=8)
    if log:
        ax.set_xscale("log")
        ax.set_xlim(min(positive) / 2, max(positive) * 8)
    else:
        ax.set_xlim(0, max(spreads) * 1.35 or 1.0)
    ax.set_xlabel("test loss standard deviation, last third"
                  + (" (log scale)" if log else ""))
    _contender_legend(figure, results, "most stable")
    return figure


def class_figure(results: Results, top: int) -> Figure | None:
    """Test accuracy per class of the `top` best-ranked variants that
    recorded it (and share the first one's classes), as a heat map."""
    from matplotlib.figure import Figure

    shown = [r for r in results.ranked if r.class_accuracy is not None]
    if not shown:
        return None
    shown = [r for r in shown if r.classes == shown[0].classes][:top]
    classes = shown[0].classes
    values = [list(r.class_accuracy or ()) for r in shown]
    width = max(7.0, 4.2 + 0.62 * len(classes))
    figure = Figure(figsize=(width, 1.9 + 0.5 * len(shown)), dpi=DPI,
                    layout="constrained")
    ax = figure.subplots()
    low = min(min(row) for row in values)
    image = ax.imshow(values, cmap="viridis", vmin=min(low, 0.9), vmax=1.0,
                      aspect="auto")
    rank = {r.folder: i for i, r in enumerate(results.ranked, 1)}
    ax.set_yticks(range(len(shown)), [f"{rank[r.folder]}. {r.label}" for r in shown],
                  fontsize=9)
    long = max(len(c) for c in classes) > 3
    ax.set_xticks(range(len(classes)), classes, fontsize=9,
                  rotation=30 if long else 0, ha="right" if long else "center")
    ax.set_xlabel("class")
    middle = (min(low, 0.9) + 1.0) / 2
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center",
                    fontsize=8.5, color="black" if value > middle else "white")
    bar = figure.colorbar(image, ax=ax, shrink=0.9, pad=0.02)
    bar.set_label("test accuracy")
    _percent_axis(bar.ax.yaxis)
    figure.suptitle(f"Test accuracy per class after the last epoch, top {len(shown)}"
                    " (%)", fontsize=12, fontweight="bold")
    return figure


def figures(results: Results, top: int, ext: str
            ) -> list[tuple[str, str, Callable[[], Figure | None]]]:
    """Each picture of the report: its file name, caption and how to draw it."""
    fastest, stable = (a.result for a in results.answers()[1:])
    found: list[tuple[str, str, Callable[[], Figure | None]]] = [
        (f"accuracy.{ext}", "Final and best test accuracy of every variant",
         lambda: accuracy_figure(results)),
        (f"convergence.{ext}", f"Epochs to reach {NEAR_BEST:.0%} of each "
         "variant's best accuracy", lambda: convergence_figure(results, fastest)),
        (f"stability.{ext}", "Spread and rises of the test loss",
         lambda: stability_figure(results, stable)),
        (f"classes.{ext}",
         f"Accuracy per class of the top {min(top, len(results.ranked))}",
         lambda: class_figure(results, top)),
    ]
    for family, group in family_order(results.ranked).items():
        found.append((
            f"family-{_slug(family)}.{ext}",
            f"{family}: test accuracy, test loss and rate per epoch",
            partial(family_figure, family, group, results.repeated),
        ))
    return found


# ----------------------------------------------------------------------------
# Writing it all at once
# ----------------------------------------------------------------------------


def _require_matplotlib() -> None:
    try:
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.style  # noqa: F401
    except ImportError as error:
        raise NeedsMatplotlib(MATPLOTLIB_HINT) from error


def _draw(staging: Path, results: Results, top: int, ext: str) -> dict[str, str]:
    """Every picture saved under `staging`; their captions by file name."""
    import matplotlib
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    pictures: dict[str, str] = {}
    with (
        matplotlib.style.context("default"),
        matplotlib.rc_context({"svg.hashsalt": "lrgen"}),  # the same SVG ids
    ):
        for name, caption, draw in figures(results, top, ext):
            figure = draw()
            if figure is None:
                continue
            FigureCanvasAgg(figure)
            figure.savefig(staging / name, format=ext, dpi=DPI,
                           metadata=METADATA[ext])
            pictures[name] = caption
    return pictures


def _check_out(out_dir: Path) -> None:
    if out_dir.suffix.lower() == ".md" and not out_dir.is_dir():
        raise BadInput(f"--out {out_dir}: names the folder report.md goes into, "
                       "not the file; pass a folder")
    for path in [out_dir, *out_dir.parents]:
        if path.exists() and not path.is_dir():
            where = "is" if path == out_dir else f"lies below {path}, which is"
            raise BadInput(f"--out {out_dir}: {where} not a folder; choose "
                           "another --out")
    for name in (REPORT, PICTURES):
        path = out_dir / name
        if path.is_symlink() or (path.exists() and
                                 path.is_dir() != (name == PICTURES)):
            kind = "a folder" if name == PICTURES else "a file"
            raise BadInput(f"{path}: is not {kind} lrgen report wrote; move it "
                           "or choose another --out")


def write_report(results: Results, out_dir: Path, top: int = 5,
                 ext: str = "png") -> tuple[Path, list[Path]]:
    """Write report.md and its pictures (in report_files/) into `out_dir`,
    and return their paths. Everything is made in a folder beside them
    first; then the pictures folder is swapped in whole and report.md
    replaced, each in one step, so no reader sees a half-written file. The
    same results give byte-identical files.

    Raises NeedsMatplotlib without matplotlib, BadInput for a bad `out_dir`,
    `top` or `ext`."""
    _require_matplotlib()
    if top < 1:
        raise BadInput(f"--top must be at least 1, got {top}")
    if ext not in FORMATS:
        raise BadInput(f"--format {ext}: lrgen report draws png or svg")
    _check_out(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with output_lock(out_dir):
            for leftover in out_dir.glob(f".{REPORT}.*.tmp"):
                shutil.rmtree(leftover, ignore_errors=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{REPORT}.", suffix=".tmp",
                                            dir=out_dir))
            try:
                (staging / PICTURES).mkdir()
                pictures = _draw(staging / PICTURES, results, top, ext)
                (staging / REPORT).write_text(markdown(results, pictures),
                                              encoding="utf-8")
                os.chmod(staging / PICTURES, 0o755)
                os.chmod(staging / REPORT, 0o644)
                _swap_in(staging, out_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except OSError as error:
        raise BadInput(f"--out {out_dir}: cannot write there "
                       f"({error.strerror or error}); choose a writable --out"
                       ) from None
    return out_dir / REPORT, [out_dir / PICTURES / p for p in pictures]


def _swap_in(staging: Path, out_dir: Path) -> None:
    """The pictures folder first, report.md last."""
    new, old = staging / PICTURES, out_dir / PICTURES
    if not old.exists():
        os.rename(new, old)
    elif not exchange_folders(new, old):
        os.rename(old, staging / "retired")
        os.rename(new, old)
    os.replace(staging / REPORT, out_dir / REPORT)
