"""Train one generated variant as the LEMUR loop does, and keep its results.

Each seed is a run of its own: the seeds of `random`, numpy and torch are set,
the variant's `new_nn.py` is imported as a fresh module, and then, as in the
LEMUR loop, `Net(in_shape, out_shape, prm, device)` is built with
`in_shape = (batch, 3, 32, 32)` and `out_shape = (classes,)`,
`train_setup(prm)` is called once, and every epoch is `model.train()`, one
`model.learn(batches)`, the rate read from
`model.optimizer.param_groups[0]['lr']` and a test pass in eval mode without
gradients. `prm` is hp.txt with `epoch_max` (the epochs trained unless given)
and `epoch` (the epochs trained).

Train loss and accuracy cost no extra pass over the data: a forward hook on
the model takes the outputs of its first call after the batch iterator
handed `learn` a batch, and scores them against that batch's labels. They are
the running cross-entropy and accuracy of the epoch, weighted by batch size,
measured in training mode on the weights as they were at each batch (as most
training logs report them); the model's own loss function and whatever
`learn` returns are not used, so every variant is measured alike. An
epoch's seconds are the wall time of its `learn` call, and its samples per
second the training images `learn` was handed in that time.

A run fails, and the variant with it, on any exception from the model's
code, `SystemExit` included (recorded as one line saying where, and the
traceback), on a loss that is not finite, or on a test accuracy below chance
after any epoch: the LEMUR loop stops such a run with an error. Chance is
1 / classes, less two standard errors of a guesser's accuracy on the test set
(0.068 for the 359 digits, 0.094 for CIFAR-10's 10,000 images): a model that
guesses one class scores about chance, above or below it by the luck of the
split, and on a test set this small a schedule that warms up from a tiny
rate still guesses after its first epoch; only a model that is surely worse
than guessing is stopped. Later seeds of a failed variant are not trained.

The same seed gives the same numbers on the same machine (on the CPU); only
the measured times differ between runs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import math
import os
import random
import re
import signal
import sys
import tempfile
import time
import traceback
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import catalog
from .generate import VARIANT_FOLDER, BadInput

if TYPE_CHECKING:
    import torch
    from torch.utils.data import DataLoader

    from .data import Data

DEFAULT_DATASET = "digits"
DEFAULT_EPOCHS = 6
"""Epochs for which the 30 ResNet18 variants train on the digits in about
ten minutes on two cores, one worker process: bench/eval_bench.py --all
measured 7.8 and 9.1 minutes for the whole run (2.6 to 3.0 s an epoch, its
learn and test pass); 7 epochs would take 9.1 to 10.7, too close to the
limit on a busier machine."""
FORMAT = 1
RECORD = "lrgen_eval.json"
EVAL_INFO = "eval_info.json"
ERROR = "error.txt"
NNEVAL_DEFAULTS: dict[str, object] = dict(catalog.BASE_DEFAULTS)
"""The prm NNEval trains a model folder without hp.txt with."""
NNEVAL_DATASETS = {"digits": "digits", "cifar10": "cifar-10"}
"""Dataset names as LEMUR writes them."""
_TRIAL = re.compile(r"[1-9][0-9]*\.json")
_serial = itertools.count()

OnEpoch = Callable[[int, int, int], None]
"""on_epoch(seed_index, epoch, epochs), called after each finished epoch."""


@dataclass(frozen=True)
class EvalSettings:
    dataset: str = DEFAULT_DATASET
    data_dir: Path | None = None
    download: bool = False
    limit: int | None = None
    epochs: int = DEFAULT_EPOCHS
    epoch_max: int | None = None  # None: the number of epochs trained
    batch: int | None = None  # None: prm["batch"] from hp.txt
    seeds: tuple[int, ...] = (0,)
    threads: int | None = None  # torch.set_num_threads while training

    def __post_init__(self) -> None:
        for option, value in [
            ("--epochs", self.epochs),
            ("--epoch-max", self.epoch_max),
            ("--batch", self.batch),
            ("--limit", self.limit),
            ("--threads", self.threads),
        ]:
            if value is not None and value < 1:
                raise BadInput(f"{option} {value}: must be at least 1")
        if not self.seeds:
            raise BadInput("no seeds to train with; --repeats must be at least 1")

    def key(self) -> dict[str, Any]:
        """What must match for earlier results to count as complete."""
        return {
            "batch": self.batch,
            "dataset": self.dataset,
            "epoch_max": self.epoch_max,
            "epochs": self.epochs,
            "limit": self.limit,
            "seeds": list(self.seeds),
        }


class _Stop(Exception):
    """A failure that is no exception of the model's code (a run the LEMUR
    loop would stop, an unusable hp.txt): the message says what and when."""


# ----------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------


def new_record(
    folder: Path, settings: EvalSettings, code: bytes | None, hp: bytes | None
) -> dict[str, Any]:
    """A record of the variant in `folder` with no run yet: what it is, the
    settings, and the digests of the code and hp.txt it is for."""
    entry = _catalog_entry(folder.name)
    return {
        "format": FORMAT,
        "variant": folder.name,
        "name": entry.name if entry else None,
        "family": entry.family if entry else None,
        "status": "ok",
        "error": None,
        "traceback": None,
        "settings": settings.key(),
        "code_sha256": _sha256(code),
        "hp_sha256": _sha256(hp),
        "prm": {},
        "classes": [],
        "train_samples": None,
        "test_samples": None,
        "runs": [],
    }


def train_variant(
    folder: Path,
    settings: EvalSettings,
    data: Data | None = None,
    on_epoch: OnEpoch | None = None,
) -> dict[str, Any]:
    """Train the variant in `folder` once per seed; its record (see
    write_results). A failure of the model never raises: it is the record's."""
    import torch

    from .data import load_data

    if data is None:
        data = load_data(
            settings.dataset, settings.data_dir, settings.download, settings.limit
        )
    code, hp = file_bytes(folder / "new_nn.py"), file_bytes(folder / "hp.txt")
    record = new_record(folder, settings, code, hp)
    record.update(
        classes=list(data.classes),
        train_samples=len(data.train),  # type: ignore[arg-type]
        test_samples=len(data.test),  # type: ignore[arg-type]
    )
    try:
        if code is None:
            raise _Stop("new_nn.py is missing or unreadable")
        source = code.decode("utf-8-sig")  # a BOM is Python's too
        prm, batch = _prm(hp, settings)
    except (UnicodeDecodeError, _Stop) as error:
        record.update(status="failed", error=f"{folder.name}: {_message(error)}")
        return record
    record["prm"] = prm
    threads = torch.get_num_threads()
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    try:
        for index, seed in enumerate(settings.seeds):
            tell = functools.partial(on_epoch, index) if on_epoch else _nobody
            run = _Run(folder, source, prm, batch, data, seed, settings.epochs, tell)
            result = run.train()
            record["runs"].append(result)
            if result["status"] == "failed":
                record.update(status="failed", error=result["error"],
                              traceback=result["traceback"])  # fmt: skip
                break
    finally:
        torch.set_num_threads(threads)
    return record


def _catalog_entry(folder_name: str) -> catalog.Variant | None:
    """The catalog variant a folder named `A0_NNN` or `<model>_A0_NNN` holds."""
    if VARIANT_FOLDER.fullmatch(folder_name) is None:
        return None
    return catalog.BY_ID.get(folder_name[-6:])


def _nobody(epoch: int, epochs: int) -> None:
    pass


def _prm(hp_text: bytes | None, settings: EvalSettings) -> tuple[dict[str, Any], int]:
    """The prm a run trains with (NNEval's defaults without hp.txt), and its
    batch size."""
    hp: Any = dict(NNEVAL_DEFAULTS)
    if hp_text is not None:
        try:
            hp = strict_json(hp_text)
        except ValueError as error:
            raise _Stop(f"hp.txt is not JSON ({error}); regenerate the variant")
        if not isinstance(hp, dict):
            raise _Stop("hp.txt does not hold a JSON object; regenerate the variant")
    hp.setdefault("transform", NNEVAL_DEFAULTS["transform"])
    batch = settings.batch if settings.batch is not None else hp.get("batch", 64)
    if isinstance(batch, bool) or not isinstance(batch, (int, float)) or (
        batch < 1 or batch != int(batch)
    ):
        raise _Stop(f"hp.txt batch {batch!r} is not a whole number of at least 1")
    epochs = settings.epochs
    prm = {**hp, "batch": int(batch), "epoch_max": settings.epoch_max or epochs}
    prm["epoch"] = epochs
    return prm, int(batch)


@contextlib.contextmanager
def _fresh_module(name: str, source: str, path: Path) -> Iterator[types.ModuleType]:
    """`source` run as a module of its own, in `sys.modules` (where pickle
    and dataclasses look for it) only while it is in use. Compiled from the
    text that was hashed; no bytecode is written beside it."""
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    try:
        exec(compile(source, str(path), "exec"), module.__dict__)
        yield module
    finally:
        sys.modules.pop(name, None)


class _Batches:
    """The `train_data` handed to `learn`: the training DataLoader, with
    `len()`, remembering the labels of the batch it yielded last so that a
    forward hook can score the model's outputs for it."""

    def __init__(self, loader: DataLoader[Any]) -> None:
        self.loader = loader
        self.labels: torch.Tensor | None = None
        self.reset()

    def reset(self) -> None:
        self.labels = None
        self.samples = 0  # handed to learn
        self.scored = 0  # of which the hook saw outputs
        self.loss_sum: torch.Tensor | float = 0.0
        self.correct: torch.Tensor | int = 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for inputs, labels in self.loader:
            self.labels = labels
            self.samples += len(labels)
            yield inputs, labels
        self.labels = None

    def hook(self, module: Any, args: Any, output: Any) -> None:
        import torch

        labels, self.labels = self.labels, None
        if labels is None or not isinstance(output, torch.Tensor):
            return
        if output.dim() != 2 or output.shape[0] != labels.shape[0]:
            return
        with torch.no_grad():
            scores = output.detach().float()
            labels = labels.to(scores.device)
            loss = torch.nn.functional.cross_entropy(scores, labels, reduction="sum")
            self.loss_sum = self.loss_sum + loss
            self.correct = self.correct + (scores.argmax(1) == labels).sum()
            self.scored += labels.shape[0]

    def measured(self) -> tuple[float | None, float | None]:
        """Train loss and accuracy of the epoch; None if no batch was scored."""
        if not self.scored:
            return None, None
        return float(self.loss_sum) / self.scored, int(self.correct) / self.scored


class _Run:
    """One seed's training of one variant; `train()` gives its result."""

    def __init__(
        self,
        folder: Path,
        source: str,
        prm: dict[str, Any],
        batch: int,
        data: Data,
        seed: int,
        epochs: int,
        tell: Callable[[int, int], None],
    ) -> None:
        self.folder, self.source, self.prm = folder, source, prm
        self.batch, self.data, self.seed, self.epochs = batch, data, seed, epochs
        self.tell = tell
        self.stage = "importing new_nn.py"
        self.result: dict[str, Any] = {
            "seed": seed,
            "status": "ok",
            "error": None,
            "traceback": None,
            "epochs": [],
            "class_accuracy": None,
            "confusion": None,
            "warnings": [],
        }

    def train(self) -> dict[str, Any]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                self._train()
            except _Stop as stop:
                self._fail(f"{self.folder.name}: {stop}", None)
            except (Exception, SystemExit, KeyboardInterrupt) as error:
                if isinstance(error, KeyboardInterrupt) and _ctrl_c_reaches_us():
                    raise  # the user's, not the model's
                self._fail(_describe(self.folder.name, self.stage, error),
                           traceback.format_exc())  # fmt: skip
        seen = {f"{w.category.__name__}: {_first_line(str(w.message))}" for w in caught}
        self.result["warnings"] = sorted(seen)
        return self.result

    def _fail(self, error: str, details: str | None) -> None:
        self.result.update(status="failed", error=error, traceback=details)

    def _train(self) -> None:
        import numpy as np
        import torch
        from torch.utils.data import DataLoader

        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        classes = len(self.data.classes)
        image = tuple(self.data.train[0][0].shape)
        prm = json.loads(json.dumps(self.prm))  # the model's own copy
        name = f"lrgen_run_{os.getpid()}_{next(_serial)}_{self.folder.name}"
        path = self.folder / "new_nn.py"
        with _fresh_module(re.sub(r"\W", "_", name), self.source, path) as module:
            self.stage = "Net()"
            model = module.Net((self.batch, *image), (classes,), prm, device)
            self.stage = "train_setup()"
            model.train_setup(prm)
            shuffle = torch.Generator().manual_seed(self.seed)
            batches = _Batches(DataLoader(
                self.data.train, batch_size=self.batch, shuffle=True,
                generator=shuffle, num_workers=0, drop_last=False,
            ))  # fmt: skip
            model.register_forward_hook(batches.hook)
            test = DataLoader(self.data.test, batch_size=self.batch, shuffle=False)
            began = time.perf_counter_ns()
            for epoch in range(1, self.epochs + 1):
                self._epoch(model, batches, test, device, epoch, began)
                self.tell(epoch, self.epochs)

    def _epoch(
        self,
        model: Any,
        batches: _Batches,
        test: DataLoader[Any],
        device: torch.device,
        epoch: int,
        began: int,
    ) -> None:
        import torch

        self.stage = f"epoch {epoch}, learn()"
        batches.reset()
        model.train()
        start = time.perf_counter()
        model.learn(batches)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        batches.labels = None
        train_loss, train_accuracy = batches.measured()
        self.stage = f"epoch {epoch}, reading the rate"
        rate = float(model.optimizer.param_groups[0]["lr"])
        self.stage = f"epoch {epoch}, test pass"
        test_loss, labels, predicted = _test_pass(model, test, device)
        correct = int((labels == predicted).sum())
        accuracy = correct / len(labels)
        self.result["epochs"].append({
            "epoch": epoch,
            "train_loss": _finite(train_loss),
            "train_accuracy": train_accuracy,
            "test_loss": _finite(test_loss),
            "test_accuracy": accuracy,
            "lr": _finite(rate),
            "seconds": seconds,
            "samples_per_second": batches.samples / seconds if seconds else None,
            "duration": time.perf_counter_ns() - began,
        })  # fmt: skip
        classes = len(self.data.classes)
        self._check(epoch, train_loss, test_loss, accuracy, classes, len(labels))
        if epoch == self.epochs:
            confusion = torch.bincount(
                labels * classes + predicted, minlength=classes * classes
            ).reshape(classes, classes)
            rows = confusion.sum(1).tolist()
            self.result["confusion"] = confusion.tolist()
            self.result["class_accuracy"] = [
                int(confusion[c, c]) / rows[c] if rows[c] else None
                for c in range(classes)
            ]

    def _check(
        self,
        epoch: int,
        train_loss: float | None,
        test_loss: float,
        accuracy: float,
        classes: int,
        tested: int,
    ) -> None:
        """Stop the run where the LEMUR loop stops it."""
        for what, loss in [("train loss", train_loss), ("test loss", test_loss)]:
            if loss is not None and not math.isfinite(loss):
                raise _Stop(f"epoch {epoch}: the {what} is {loss}; the run diverged")
        chance = 1 / classes
        floor = chance_floor(classes, tested)
        if accuracy < floor:
            raise _Stop(
                f"epoch {epoch}: test accuracy {accuracy:.4f} is below chance "
                f"({chance:.4g} for {classes} classes, {floor:.4f} allowing for "
                f"the luck of {tested} test images); the LEMUR loop stops such a run"
            )


def _ctrl_c_reaches_us() -> bool:
    """Whether Ctrl-C raises KeyboardInterrupt here; where it is ignored (a
    worker process), a KeyboardInterrupt can only be the model's own."""
    return signal.getsignal(signal.SIGINT) is not signal.SIG_IGN


def chance_floor(classes: int, tested: int) -> float:
    """The test accuracy below which a run counts as worse than guessing:
    chance (1 / classes) less two standard errors of a guesser's accuracy
    over `tested` images."""
    chance = 1 / classes
    return chance - 2 * math.sqrt(chance * (1 - chance) / tested)


def _test_pass(
    model: Any, test: DataLoader[Any], device: torch.device
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Mean cross-entropy over the test set, its labels and the predictions."""
    import torch

    model.eval()
    total = torch.zeros((), dtype=torch.float64)
    labels, predicted = [], []
    with torch.no_grad():
        for inputs, targets in test:
            outputs = model(inputs.to(device)).float()
            loss = torch.nn.functional.cross_entropy(
                outputs, targets.to(outputs.device), reduction="sum"
            )
            total += loss.double().cpu()
            labels.append(targets)
            predicted.append(outputs.argmax(1).cpu())
    every = torch.cat(labels)
    return float(total) / len(every), every, torch.cat(predicted)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _message(error: _Stop | UnicodeDecodeError) -> str:
    if isinstance(error, _Stop):
        return str(error)
    return f"new_nn.py is not UTF-8 text (byte {error.start}); regenerate the variant"


def _describe(variant: str, stage: str, error: BaseException) -> str:
    """One line: the variant, when it failed, the error and the line of
    new_nn.py it came from."""
    where = ""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.endswith("new_nn.py"):
            where = f" (new_nn.py line {frame.lineno})"
            break
    text = _first_line(str(error))
    kind = type(error).__name__
    return f"{variant}: {stage}: {kind}: {text}{where}" if text else (
        f"{variant}: {stage}: {kind}{where}"
    )


# ----------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------


def write_results(folder: Path, record: dict[str, Any]) -> None:
    """Write the variant's files, each atomically, lrgen_eval.json last (it
    marks the others complete, so it is taken away first).

    On success: `1.json` ... `N.json` (the first seed's epochs, with the keys
    NNEval writes) and `eval_info.json`; error.txt and older `K.json` beyond N
    are removed. On failure: error.txt (the error line, a blank line, the
    traceback); eval_info.json and every `K.json` are removed, so that the
    folder does not look trained to NNEval."""
    (folder / RECORD).unlink(missing_ok=True)
    trials: list[dict[str, Any]] = []
    if record["status"] == "ok":
        trials = nneval_trials(record)
        for number, trial in enumerate(trials, 1):
            _write(folder / f"{number}.json", _json(trial))
        _write(folder / EVAL_INFO, _json(nneval_info(record, trials)))
        (folder / ERROR).unlink(missing_ok=True)
    else:
        details = record.get("traceback")
        text = record["error"] + "\n" + (f"\n{details.rstrip()}\n" if details else "")
        _write(folder / ERROR, text)
        (folder / EVAL_INFO).unlink(missing_ok=True)
    for path in folder.iterdir():
        if _TRIAL.fullmatch(path.name) and int(path.stem) > len(trials):
            path.unlink(missing_ok=True)
    _write(folder / RECORD, _json(record))


def nneval_trials(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The first run's epochs as NNEval's per-epoch trial files: the prm with
    uid, duration, accuracy, losses, best accuracy so far and the epoch."""
    prm = record["prm"]
    uid = _uid(prm)
    trials, best, best_epoch = [], -1.0, 0
    for entry in record["runs"][0]["epochs"]:
        if entry["test_accuracy"] > best:
            best, best_epoch = entry["test_accuracy"], entry["epoch"]
        trials.append({
            **prm,
            "uid": uid,
            "duration": entry["duration"],
            "accuracy": entry["test_accuracy"],
            "train_loss": entry["train_loss"],
            "test_loss": entry["test_loss"],
            "train_accuracy": entry["train_accuracy"],
            "samples_per_second": entry["samples_per_second"],
            "best_accuracy": best,
            "best_epoch": best_epoch,
            "transform": prm.get("transform"),
            "epoch": entry["epoch"],
        })  # fmt: skip
    return trials


def nneval_info(
    record: dict[str, Any], trials: list[dict[str, Any]]
) -> dict[str, Any]:
    """eval_info.json: what was trained, on what, and the final accuracy."""
    prm, settings, last = record["prm"], record["settings"], trials[-1]
    dataset = NNEVAL_DATASETS.get(settings["dataset"], settings["dataset"])
    return {
        "eval_args": {
            "dataset": dataset,
            "epochs": settings["epochs"],
            "limit": settings["limit"],
            "metric": "acc",
            "nn_name": record["variant"],
            "prm": prm,
            "seed": record["runs"][0]["seed"],
            "task": "img-classification",
        },
        "eval_results": {
            "checksum": record["code_sha256"],
            "accuracy": last["accuracy"],
            "full_result": {
                "accuracy": last["accuracy"],
                "best_accuracy": last["best_accuracy"],
                "best_epoch": last["best_epoch"],
                "duration": last["duration"],
                "epochs": len(trials),
                "uid": last["uid"],
            },
        },
        "cli_args": {
            "task": "img-classification",
            "dataset": dataset,
            "metric": "acc",
            **{key: prm.get(key) for key in
               ("lr", "batch", "dropout", "momentum", "transform")},
        },  # fmt: skip
    }


def is_complete(folder: Path, settings: EvalSettings) -> bool:
    """Whether the folder holds finished results for these settings, of the
    variant's code and hp.txt as they are now."""
    record = read_record(folder)
    return (
        record is not None
        and record.get("format") == FORMAT
        and record.get("status") == "ok"
        and record.get("settings") == settings.key()
        and record.get("code_sha256") == _sha256(file_bytes(folder / "new_nn.py"))
        and record.get("hp_sha256") == _sha256(file_bytes(folder / "hp.txt"))
        and _trained_through(record.get("runs"), settings)
    )


def _trained_through(runs: Any, settings: EvalSettings) -> bool:
    """Whether `runs` holds one finished run per seed, each with every epoch."""
    if not isinstance(runs, list) or len(runs) != len(settings.seeds):
        return False
    return all(
        isinstance(run, dict)
        and run.get("status") == "ok"
        and run.get("seed") == seed
        and isinstance(run.get("epochs"), list)
        and len(run["epochs"]) == settings.epochs
        for run, seed in zip(runs, settings.seeds)
    )


def read_record(folder: Path) -> dict[str, Any] | None:
    """The folder's lrgen_eval.json; None when absent or unreadable."""
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def strict_json(text: str | bytes) -> Any:
    """JSON as the standard has it: NaN and Infinity, which Python's json
    reads, are refused (the results could not be written as JSON). Any
    failure to read it is a ValueError, nesting too deep for the parser
    included."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    def finite(digits: str) -> float:
        value = float(digits)
        if not math.isfinite(value):
            raise ValueError(f"{digits} is too large for a float")
        return value

    try:
        return json.loads(text, parse_constant=refuse, parse_float=finite)
    except RecursionError:
        raise ValueError("nested too deep") from None


def _uid(prm: dict[str, Any]) -> str:
    """A stable hash of the prm without uid, duration, accuracy and epoch."""
    kept = {k: v for k, v in prm.items()
            if k not in ("uid", "duration", "accuracy", "epoch")}  # fmt: skip
    return hashlib.md5(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def file_bytes(path: Path) -> bytes | None:
    """The file's bytes; None when it is missing or unreadable."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def _sha256(content: bytes | None) -> str | None:
    return None if content is None else hashlib.sha256(content).hexdigest()


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=2, allow_nan=False) + "\n"


def _write(path: Path, text: str) -> None:
    """Replace `path` by `text` at once: a reader sees the old file or the
    new one, never a part."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                    dir=path.parent)  # fmt: skip
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
