"""`lrgen eval`: train a folder of variants and gather their results.

Which variants to train (`--only`, and resume: a variant whose results are
complete for the same settings and the same files is skipped), where they run
(in this process, in local worker processes, or as Ray tasks), and the run's
`results.csv`. Training one variant and writing its files is `lrgen.train`'s
work; the driver here writes each variant's files as soon as it finishes, so
an interrupted run loses at most the variants in flight.

Local runs train in worker processes even one at a time: a variant that
ends its process (os._exit, a crash in native code, the kernel's
out-of-memory killer) or hangs fails alone, and the run goes on.
`workers=0` trains in this process instead, for a debugger.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import multiprocessing
import os
import pickle
import signal
import statistics
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Literal, Protocol, TypeGuard

from . import catalog
from .data import Data, load_data
from .generate import VARIANT_FOLDER, BadInput
from .train import (
    FORMAT,
    RECORD,
    EvalSettings,
    file_bytes,
    is_complete,
    new_record,
    read_record,
    strict_json,
    train_variant,
    write_results,
)

Executor = Literal["local", "ray"]
Record = dict[str, Any]

COLUMNS = (
    "variant", "name", "family", "seed", "epoch", "train_loss", "train_accuracy",
    "test_loss", "test_accuracy", "lr", "seconds", "samples_per_second", "status",
    "error",
)  # fmt: skip
RESULTS = "results.csv"


class Listener(Protocol):
    """What the run tells its caller (the CLI draws progress bars with it)."""

    def started(self, folder: Path) -> None: ...

    def epoch(self, folder: Path, run: int, epoch: int, epochs: int) -> None: ...

    def finished(self, folder: Path, record: Record) -> None: ...


# ----------------------------------------------------------------------------
# Which variants to train.
# ----------------------------------------------------------------------------


def variant_folders(synth_dir: Path) -> list[Path]:
    """The variant folders (`A0_NNN` or `<model>_A0_NNN`, with a new_nn.py)."""
    if not synth_dir.is_dir():
        return []
    return sorted(
        p
        for p in synth_dir.iterdir()
        if VARIANT_FOLDER.fullmatch(p.name) and (p / "new_nn.py").is_file()
    )


@dataclass(frozen=True)
class Plan:
    """The selected variant folders: those to train, and those skipped because
    their results are complete for these settings."""

    todo: list[Path]
    skipped: list[Path]

    @property
    def selected(self) -> list[Path]:
        return sorted(self.todo + self.skipped)


def plan(
    synth_dir: Path, only: list[str] | None, settings: EvalSettings, force: bool
) -> Plan:
    """The variant folders of `synth_dir` matching `only` (ids, names, globs;
    all when None), split into those to train and those already done."""
    if not synth_dir.is_dir():
        what = "not a folder" if synth_dir.exists() else "no such folder"
        raise BadInput(
            f"{synth_dir}: {what}; pass the synth_nn folder lrgen generate wrote"
        )
    folders = variant_folders(synth_dir)
    if not folders:
        raise BadInput(
            f"{synth_dir}: no variant folders (A0_NNN/new_nn.py) in it; pass the "
            "synth_nn folder lrgen generate wrote"
        )
    if only:
        try:
            ids = {v.id for v in catalog.select(only)}
        except catalog.UnknownVariantError as error:
            raise BadInput(str(error)) from None
        folders = [f for f in folders if f.name[-6:] in ids]
        if not folders:
            shown = ", ".join(only)
            raise BadInput(
                f"{synth_dir}: no variant folder matches --only {shown}; generate "
                "those variants first or choose others"
            )
    if force:
        chosen = Plan(folders, [])
    else:
        done = [f for f in folders if is_complete(f, settings)]
        chosen = Plan([f for f in folders if f not in done], done)
    locked = [f.name for f in chosen.todo if not os.access(f, os.W_OK)]
    if locked:
        shown = ", ".join(locked[:3]) + (", ..." if len(locked) > 3 else "")
        raise BadInput(
            f"{synth_dir}: {len(locked)} variant folder(s) not writable ({shown}); "
            "their results go into them: make them writable or leave them out "
            "with --only"
        )
    return chosen


# ----------------------------------------------------------------------------
# A variant that could not be trained at all (its worker died, ...).
# ----------------------------------------------------------------------------


def failed_record(
    folder: Path, settings: EvalSettings, error: str, details: str | None = None
) -> Record:
    """The record of a variant whose training ended before `train_variant`
    could return: status failed, the error in one line, no runs."""
    code, hp = file_bytes(folder / "new_nn.py"), file_bytes(folder / "hp.txt")
    try:
        prm = strict_json(hp or b"")
    except ValueError:
        prm = {}
    record = new_record(folder, settings, code, hp)
    record.update(
        status="failed",
        error=error,
        traceback=details,
        prm=prm if isinstance(prm, dict) else {},
    )
    return record


def _crash_record(folder: Path, settings: EvalSettings, error: BaseException) -> Record:
    line = f"{type(error).__name__}: {error}".splitlines()[0]
    return failed_record(folder, settings, line, traceback.format_exc())


def _died(exitcode: int | None, where: str) -> str:
    """Why a worker process ended, in a user's words; `where` says when."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        how = f"killed by {name}"
        if name == "SIGKILL":
            how += ", perhaps out of memory"
        return f"{where}the worker process training it died ({how})"
    return (
        f"{where}the worker process training it ended (exit code {exitcode}) "
        "before the variant finished"
    )


# ----------------------------------------------------------------------------
# Running: in this process, in local worker processes, or as Ray tasks.
# ----------------------------------------------------------------------------


def run(
    todo: list[Path],
    settings: EvalSettings,
    listener: Listener,
    workers: int = 1,
    executor: Executor = "local",
    address: str | None = None,
    data: Data | None = None,
    timeout: float | None = None,
) -> None:
    """Train the `todo` variant folders and write each one's files as it
    finishes: in `workers` local processes (0: in this process), or as Ray
    tasks. A local variant with no epoch finished for `timeout` seconds is
    stopped and fails. KeyboardInterrupt stops the run: the variants already
    finished keep their files, those in flight get none."""
    if not todo:
        return
    if executor == "ray":
        _run_ray(todo, settings, listener, max(workers, 1), address)
    elif workers == 0:
        _run_here(todo, settings, listener, data)
    else:
        _run_pool(todo, settings, listener, workers, timeout)


def _finish(folder: Path, record: Record, listener: Listener) -> None:
    try:
        write_results(folder, record)
    except (OSError, ValueError) as error:  # the folder went away or turned
        # read-only; or the record holds what JSON cannot
        why = getattr(error, "strerror", None) or str(error)
        error_line = f"{folder.name}: cannot write its results there ({why})"
        record = {**record, "status": "failed", "error": error_line}
    listener.finished(folder, record)


def _run_here(
    todo: list[Path], settings: EvalSettings, listener: Listener, data: Data | None
) -> None:
    for folder in todo:
        listener.started(folder)

        def on_epoch(run: int, epoch: int, epochs: int, folder: Path = folder) -> None:
            listener.epoch(folder, run, epoch, epochs)

        try:
            record = train_variant(folder, settings, data, on_epoch)
        except Exception as error:  # noqa: BLE001 (one variant never stops the run)
            record = _crash_record(folder, settings, error)
        _finish(folder, record, listener)


def _ignore_interrupt() -> None:
    """Ctrl-C is the driver's to handle: it ends the workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _end_with_driver() -> None:
    """End this worker process as soon as the driver that started it ends,
    however it ended, rather than train on for nobody."""
    driver = multiprocessing.parent_process()
    if driver is None:
        return

    def watch() -> None:
        driver.join()
        if hasattr(os, "killpg") and os.getpgid(0) == os.getpid():
            os.killpg(0, signal.SIGKILL)  # this worker's own group: what it forked
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _work(channel: Connection, settings: EvalSettings) -> None:
    """A worker process: train the variant folders the driver sends, one at a
    time, and send back each epoch and each record."""
    _ignore_interrupt()
    _end_with_driver()
    if hasattr(os, "setpgid"):  # a group of its own, ended with what it forks
        os.setpgid(0, 0)
    data: Data | None = None
    while True:
        try:
            name = channel.recv()
        except EOFError:  # the driver has gone
            return
        if name is None:
            return
        folder = Path(name)

        def on_epoch(run: int, epoch: int, epochs: int) -> None:
            _tell(channel, ("epoch", run, epoch, epochs))

        try:
            if data is None:
                data = load_data(
                    settings.dataset, settings.data_dir, settings.download,
                    settings.limit,
                )  # fmt: skip
            _tell(channel, ("began",))  # the time limit counts from here
            record = train_variant(folder, settings, data, on_epoch)
        except BaseException as error:  # noqa: BLE001 (SIGINT is ignored here: even
            # a KeyboardInterrupt or SystemExit is the model's, and its failure)
            record = _crash_record(folder, settings, error)
        _tell(channel, ("done", record))


def _tell(channel: Connection, message: tuple[Any, ...]) -> None:
    """Send the driver `message`; if the driver has gone, end quietly."""
    try:
        channel.send(message)
    except OSError:
        os._exit(1)


@dataclass
class _Worker:
    """A worker process, the pipe to it, and the variant it is training."""

    process: Any  # multiprocessing's SpawnProcess
    channel: Connection
    folder: Path | None = None
    heard: float = 0.0  # time.monotonic() of its last epoch, or of its start
    training: tuple[int, int] = (0, 1)  # (seed index, epoch) it is in

    def read(self) -> list[tuple[Any, ...]]:
        """The messages it has sent; empty once it has ended."""
        messages = []
        try:
            while self.channel.poll():
                messages.append(self.channel.recv())
        except (EOFError, OSError, pickle.UnpicklingError):
            pass  # it ended, perhaps halfway through a message
        return messages

    def give(self, folder: Path) -> None:
        """Send it a variant to train; if it has ended, the run finds out
        when it waits on it, and fails the variant."""
        self.folder, self.heard, self.training = folder, time.monotonic(), (0, 1)
        try:
            self.channel.send(str(folder))
        except OSError:
            pass

    def stop(self) -> None:
        """End the worker: an idle one is asked to; one still training (the
        run was interrupted) is killed, with what it forked."""
        if self.folder is None:
            try:
                self.channel.send(None)
            except OSError:
                pass
            self.process.join(timeout=5)
        self.end_group()
        self.channel.close()

    def end_group(self) -> None:
        """Kill the worker and every process it forked (its process group),
        and wait for it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (OSError, AttributeError):  # the group is gone (or no groups here)
            pass
        self.process.kill()  # also where the model moved it to another group
        self.process.join(timeout=5)


def worker_threads(settings: EvalSettings, workers: int) -> int:
    """Threads each of `workers` local processes trains with: --threads, or
    the machine's cores shared out evenly."""
    return settings.threads or max(1, (os.cpu_count() or 1) // workers)


def _run_pool(
    todo: list[Path],
    settings: EvalSettings,
    listener: Listener,
    workers: int,
    timeout: float | None,
) -> None:
    """Train in `workers` spawned processes, each taking one variant at a
    time. A worker that dies (segfault, out of memory) or finishes no epoch
    for `timeout` seconds fails its variant and is replaced; the others go
    on."""
    context = multiprocessing.get_context("spawn")
    settings = replace(settings, threads=worker_threads(settings, workers))
    pending = deque(todo)
    pool: list[_Worker] = []
    try:
        while pending or any(w.folder for w in pool):
            idle = [w for w in pool if w.folder is None]
            while len(idle) < len(pending) and len(pool) < workers:
                idle.append(_start_worker(context, settings))
                pool.append(idle[-1])
            for worker in idle[: len(pending)]:
                folder = pending.popleft()
                worker.give(folder)
                listener.started(folder)
            busy = [(w, w.folder) for w in pool if w.folder is not None]
            wait([w.channel for w, _ in busy] + [w.process.sentinel for w, _ in busy],
                 _patience(busy, timeout))  # fmt: skip
            for worker, folder in busy:
                for kind, *rest in worker.read():
                    if kind == "began":
                        worker.heard = time.monotonic()
                    elif kind == "epoch":
                        run_, epoch, epochs = rest
                        worker.heard = time.monotonic()
                        worker.training = (
                            (run_, epoch + 1) if epoch < epochs else (run_ + 1, 1)
                        )
                        listener.epoch(folder, *rest)
                    else:
                        worker.folder = None
                        _finish(folder, rest[0], listener)
                overdue = worker.folder is not None and _overdue(worker, timeout)
                if worker.process.is_alive() and not overdue:
                    continue
                worker.end_group()  # what it forked goes with it
                if worker.folder is not None:
                    worker.folder = None
                    where = f"{folder.name}: {_epoch_of(worker, settings)}: "
                    reason = _hung(folder, worker, settings, timeout) if overdue else (
                        _died(worker.process.exitcode, where)
                    )
                    _finish(folder, failed_record(folder, settings, reason), listener)
                pool.remove(worker)
                worker.channel.close()
    finally:
        with _deaf_to_signals():  # a second Ctrl-C must not cut the ending short
            for worker in pool:
                worker.stop()


@contextlib.contextmanager
def _deaf_to_signals() -> Iterator[None]:
    """Within: SIGINT and SIGTERM are ignored (in the main thread only,
    where Python handles signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT,
                                                          signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in kept.items():
            signal.signal(number, handler)


POLL = 1.0
"""Seconds between looks at whether each worker is alive: a worker's end is
not always seen on its pipes (a process it forked may hold them open)."""


def _patience(busy: list[tuple[_Worker, Any]], timeout: float | None) -> float:
    """Seconds to wait for news: until the first busy worker is overdue, and
    at most POLL."""
    if timeout is None:
        return POLL
    left = min(w.heard + timeout for w, _ in busy) - time.monotonic()
    return min(max(left, 0.0), POLL)


def _overdue(worker: _Worker, timeout: float | None) -> bool:
    return timeout is not None and time.monotonic() - worker.heard >= timeout


def _epoch_of(worker: _Worker, settings: EvalSettings) -> str:
    """The epoch (and seed, of several) the worker was training."""
    run_, epoch = worker.training
    seed = f" of seed {settings.seeds[run_]}" if len(settings.seeds) > 1 else ""
    return f"epoch {epoch}{seed}"


def _hung(
    folder: Path, worker: _Worker, settings: EvalSettings, timeout: float | None
) -> str:
    """Why a worker was stopped, in a user's words."""
    return (
        f"{folder.name}: stopped in "
        f"{_epoch_of(worker, settings)}: no epoch finished within the "
        f"{timeout:g} s time limit; it may hang (raise --timeout if its epochs "
        "are this slow)"
    )


def _start_worker(context: Any, settings: EvalSettings) -> _Worker:
    driver_end, worker_end = context.Pipe()
    process = context.Process(
        target=_work, args=(worker_end, settings), daemon=True
    )
    process.start()
    worker_end.close()
    return _Worker(process, driver_end)


_DATA: dict[tuple[Any, ...], Data] = {}


def train_shipped(
    name: str, code: bytes, hp: bytes | None, settings: EvalSettings
) -> Record:
    """A Ray task: train one variant from its files' bytes, on any node.

    The files are written into a temporary folder named like the variant, so
    no shared file system is needed; the record goes back to the driver,
    which writes the results. The data is loaded once per worker process."""
    key = (settings.dataset, settings.data_dir, settings.download, settings.limit)
    if key not in _DATA:
        _DATA[key] = load_data(*key)
    with tempfile.TemporaryDirectory(prefix="lrgen-eval-") as temp:
        folder = Path(temp, name)
        folder.mkdir()
        (folder / "new_nn.py").write_bytes(code)
        if hp is not None:  # without it the model trains on NNEval's defaults
            (folder / "hp.txt").write_bytes(hp)
        return train_variant(folder, settings, _DATA[key])


def _run_ray(
    todo: list[Path],
    settings: EvalSettings,
    listener: Listener,
    workers: int,
    address: str | None,
) -> None:
    """Each variant a Ray task: one CPU (--threads of them when given) and
    one GPU where the cluster has GPUs."""
    import logging

    import ray

    if address:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    else:  # a new instance on this machine, even if one is running
        ray.init(
            address="local", num_cpus=workers, include_dashboard=False,
            logging_level=logging.ERROR, log_to_driver=False,
        )  # fmt: skip
    jobs: dict[Any, Path] = {}
    try:
        cpus = settings.threads or 1
        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
        if cpus > resources.get("CPU", 0):
            raise BadInput(
                f"--threads {cpus}: each Ray task would ask for {cpus} CPUs and "
                f"the cluster has {resources.get('CPU', 0):g}; ask for fewer"
            )
        gpus = 1 if resources.get("GPU", 0) >= 1 else 0
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(
            train_shipped
        )
        shipped = replace(settings, threads=cpus)
        for folder in todo:
            code = (folder / "new_nn.py").read_bytes()
            hp_file = folder / "hp.txt"
            hp = hp_file.read_bytes() if hp_file.is_file() else None
            jobs[task.remote(folder.name, code, hp, shipped)] = folder
        while jobs:
            ready, _ = ray.wait(list(jobs), num_returns=1)
            for ref in ready:
                folder = jobs.pop(ref)
                try:
                    record = ray.get(ref)
                except ray.exceptions.RayError as error:
                    line = f"Ray: {error}".splitlines()[0]
                    record = failed_record(folder, settings, line, str(error))
                _finish(folder, record, listener)
    finally:
        for ref in jobs:  # interrupted: the tasks still queued or running
            ray.cancel(ref, force=True)
        ray.shutdown()


# ----------------------------------------------------------------------------
# The run's results.csv and summary.
# ----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return str(value)


def result_rows(synth_dir: Path) -> list[list[str]]:
    """One row per variant x seed x epoch of every variant folder's record; a
    run without epochs (or a variant without runs) gets one row."""
    rows: list[list[str]] = []
    for folder in variant_folders(synth_dir):
        record = read_record(folder)
        if not usable(record):
            continue
        head = [folder.name, _cell(record.get("name")), _cell(record.get("family"))]
        runs = sorted(record.get("runs") or [], key=lambda r: r["seed"])
        if not runs:
            blank = [""] * (len(COLUMNS) - 5)
            rows.append([*head, *blank, record["status"], _cell(record.get("error"))])
        for run_ in runs:
            tail = [run_["status"], _cell(run_.get("error"))]
            epochs = sorted(run_.get("epochs") or [], key=lambda e: e["epoch"])
            if not epochs:
                blank = [""] * (len(COLUMNS) - 6)
                rows.append([*head, _cell(run_["seed"]), *blank, *tail])
            for e in epochs:
                numbers = [_cell(e.get(c)) for c in COLUMNS[4:12]]
                rows.append([*head, _cell(run_["seed"]), *numbers, *tail])
    return rows


def write_results_csv(synth_dir: Path) -> Path:
    """Rebuild `synth_dir/results.csv` from every variant folder's record,
    replacing the old file atomically."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(result_rows(synth_dir))
    target = synth_dir / RESULTS
    handle, temp = tempfile.mkstemp(prefix=f".{RESULTS}.", dir=synth_dir)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text.getvalue())
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


@dataclass(frozen=True)
class Summary:
    """One variant's outcome, for the table at the end of a run."""

    variant: str
    name: str | None
    status: str
    error: str | None
    final: list[float] = field(default_factory=list)  # per run, last epoch
    best: list[float] = field(default_factory=list)  # per run
    seconds: float = 0.0


def usable(record: Record | None) -> TypeGuard[Record]:
    """Whether `record` has the shape this lrgen writes: a format-1 record
    whose runs hold epochs with their numbers (not one edited by hand or
    written by another program)."""
    if record is None or record.get("format") != FORMAT:
        return False
    if record.get("status") not in ("ok", "failed"):
        return False
    runs = record.get("runs")
    if not isinstance(runs, list):
        return False
    for run_ in runs:
        if not isinstance(run_, dict) or not isinstance(run_.get("epochs"), list):
            return False
        seed = run_.get("seed")
        if not isinstance(run_.get("status"), str) or not _number(seed, int):
            return False
        for e in run_["epochs"]:
            if not isinstance(e, dict) or not all(
                _number(e.get(key), (int, float)) for key in NUMBERS
            ):
                return False
    return True


def _number(value: Any, kinds: type | tuple[type, ...]) -> bool:
    """Whether `value` is a finite number of `kinds` (a bool is none)."""
    if isinstance(value, bool) or not isinstance(value, kinds):
        return False
    return not isinstance(value, float) or math.isfinite(value)


NUMBERS = ("epoch", "test_accuracy", "seconds")
"""The figures of an epoch that the table and results.csv cannot do without."""


def summarize(folder: Path) -> Summary | None:
    record = read_record(folder)
    if record is None:
        return None
    if not usable(record):
        return Summary(folder.name, None, "unreadable", f"{RECORD} is not a "
                       "record this lrgen wrote; train it again with --force")
    finals, bests, seconds = [], [], 0.0
    for run_ in record.get("runs") or []:
        accuracies = [e["test_accuracy"] for e in run_.get("epochs") or []]
        seconds += sum(e["seconds"] for e in run_.get("epochs") or [])
        if run_["status"] == "ok" and accuracies:
            finals.append(accuracies[-1])
            bests.append(max(accuracies))
    return Summary(
        folder.name, record.get("name"), record["status"], record.get("error"),
        finals, bests, seconds,
    )  # fmt: skip


def spread(values: Iterable[float]) -> tuple[float, float] | None:
    """Mean and sample standard deviation (0 for one value); None for none."""
    values = list(values)
    if not values:
        return None
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), deviation


def seeds(seed: int, repeats: int) -> tuple[int, ...]:
    return tuple(range(seed, seed + repeats))

