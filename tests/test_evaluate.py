"""`lrgen eval`: one-line refusals, the files a run writes, resume, failures,
worker processes and seeds, on three variants of a tiny model."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lrgen import cli, evaluate, train
from lrgen.cli import app
from lrgen.generate import SYNTH_PATH

TINY = '''"""A tiny image classifier in the LEMUR model format."""

import torch
import torch.nn as nn


def supported_hyperparameters():
    return {'lr', 'momentum', 'dropout'}


class Net(nn.Module):
    def __init__(self, in_shape, out_shape, prm, device):
        super().__init__()
        self.device = device
        self.conv = nn.Conv2d(in_shape[1], 8, kernel_size=3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.dropout = nn.Dropout(p=prm['dropout'])
        self.fc = nn.Linear(8 * 16, out_shape[0])

    def forward(self, x):
        x = self.pool(torch.relu(self.conv(x)))
        return self.fc(self.dropout(torch.flatten(x, 1)))

    def train_setup(self, prm):
        self.to(self.device)
        self.criteria = (nn.CrossEntropyLoss().to(self.device),)
        self.optimizer = torch.optim.SGD(
            self.parameters(), lr=prm['lr'], momentum=prm['momentum']
        )

    def learn(self, train_data):
        self.train()
        for inputs, labels in train_data:
            inputs, labels = inputs.to(self.device), labels.to(self.device)
            self.optimizer.zero_grad()
            loss = self.criteria[0](self(inputs), labels)
            loss.backward()
            self.optimizer.step()
'''
VARIANTS = ("A0_001", "A0_005", "A0_017")  # StepLR, ExponentialLR, CyclicLR
TINY_RUN = ["--limit", "64", "--epochs", "2", "--threads", "1"]
TIMING = {"seconds", "samples_per_second", "duration"}
DIGITS_TEST = 359  # a fifth of each digit of scikit-learn's 1,797

runner = CliRunner()


def generate_tiny(root: Path) -> Path:
    """Three variants of the tiny model, as `lrgen generate` writes them."""
    base = root / "tiny.py"
    root.mkdir(parents=True, exist_ok=True)
    base.write_text(TINY)
    only = [arg for v in VARIANTS for arg in ("--only", v)]
    result = runner.invoke(
        app, ["generate", "--base", str(base), "--out", str(root / "out"), *only,
              "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return root / "out" / SYNTH_PATH


@pytest.fixture
def synth(tmp_path: Path) -> Path:
    return generate_tiny(tmp_path)


def run_eval(synth: Path, *args: str) -> Any:
    return runner.invoke(app, ["eval", str(synth), *TINY_RUN, *args])


def record(synth: Path, variant: str) -> dict[str, Any]:
    data = json.loads((synth / variant / "lrgen_eval.json").read_text())
    assert isinstance(data, dict)
    return data


def numbers(synth: Path, variant: str) -> list[list[dict[str, Any]]]:
    """Each run's epochs without the measured times."""
    return [
        [{k: v for k, v in e.items() if k not in TIMING} for e in run["epochs"]]
        for run in record(synth, variant)["runs"]
    ]


def stamps(synth: Path) -> dict[str, int]:
    return {v: (synth / v / "lrgen_eval.json").stat().st_mtime_ns for v in VARIANTS}


def written(root: Path) -> list[str]:
    """Files a run of eval writes, anywhere under `root`."""
    names = {"results.csv", "lrgen_eval.json", "eval_info.json", "error.txt",
             "1.json"}  # fmt: skip
    return sorted(str(p) for p in root.rglob("*") if p.name in names)


# ----------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written.
# ----------------------------------------------------------------------------

REFUSALS = [
    pytest.param(["--epochs", "0"], "--epochs 0: must be at least 1", id="epochs-0"),
    pytest.param(["--limit", "-3"], "--limit -3: must be at least 1", id="limit"),
    pytest.param(["--batch", "0"], "--batch 0: must be at least 1", id="batch"),
    pytest.param(["--epoch-max", "0"], "--epoch-max 0: must be at least 1",
                 id="epoch-max"),
    pytest.param(["--repeats", "0"], "--repeats 0: must be at least 1",
                 id="repeats"),
    pytest.param(["--workers", "-1"], "--workers -1: must be 0 (this process) or "
                 "more", id="workers"),
    pytest.param(["--workers", "0", "--executor", "ray"], "--workers 0 trains in "
                 "this process", id="workers-0-on-ray"),
    pytest.param(["--workers", "0", "--timeout", "5"], "--timeout applies to "
                 "local worker processes", id="timeout-in-this-process"),
    pytest.param(["--timeout", "-1"], "--timeout -1: must be 0 (no limit) or more",
                 id="timeout"),
    pytest.param(["--seed", str(2**32)], f"--seed {2**32}: the seed must lie "
                 f"from 0 to {2**32 - 1}", id="seed-beyond-numpy"),
    pytest.param(["--seed", str(2**32 - 1), "--repeats", "2"], f"--seed {2**32 - 1}"
                 f" --repeats 2: the seeds {2**32 - 1} to {2**32} must lie from 0",
                 id="repeats-beyond-numpy"),
    pytest.param(["--threads", "100000"], "--threads 100000: this machine has",
                 id="threads-beyond-the-cores"),
    pytest.param(["--batch", "65"], "--batch 65: more than the 64 training images",
                 id="batch-beyond-the-set"),
    pytest.param(["--threads", "0"], "--threads 0: must be at least 1",
                 id="threads"),
    pytest.param(["--seed", "-1"], "--seed -1: the seed must lie from 0 to",
                 id="seed"),
    pytest.param(["--limit", "5000"], "--limit 5000 is outside the 1,438 "
                 "training images of digits", id="limit-above-the-set"),
    pytest.param(["--dataset", "mnist"], "unknown dataset 'mnist'",
                 id="unknown-dataset"),
    pytest.param(["--dataset", "cifar10"], "cifar10 needs --data-dir",
                 id="cifar10-without-folder"),
    pytest.param(["--dataset", "cifar10", "--data-dir", "{tmp}/nowhere"],
                 "no CIFAR-10 in {tmp}/nowhere", id="cifar10-folder-missing"),
    pytest.param(["--data-dir", "{tmp}"], "--data-dir and --download are for "
                 "--dataset cifar10", id="data-dir-with-digits"),
    pytest.param(["--executor", "spark"], "--executor spark: unknown; use local "
                 "or ray", id="unknown-executor"),
    pytest.param(["--address", "ray://head:10001"], "--address names a Ray "
                 "cluster: add --executor ray", id="address-without-ray"),
    pytest.param(["--only", "Nope"], "unknown variant 'Nope'", id="unknown-only"),
    pytest.param(["--only", "A0_002"], "no variant folder matches --only A0_002",
                 id="only-not-generated"),
    pytest.param(["--only", "Polynomial*"], "no variant folder matches --only "
                 "Polynomial*", id="glob-not-generated"),
]


@pytest.mark.parametrize(("args", "message"), REFUSALS)
def test_bad_input_is_one_line_and_trains_nothing(
    synth: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = run_eval(synth, *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert message.replace("{tmp}", str(tmp_path)) in lines[0]
    assert written(tmp_path) == []


@pytest.mark.parametrize("where", ["missing", "empty", "file"])
def test_a_folder_without_variants_is_refused(tmp_path: Path, where: str) -> None:
    folder = tmp_path / "synth_nn"
    if where == "empty":
        folder.mkdir()
    elif where == "file":
        folder.write_text("not a folder")
    result = runner.invoke(app, ["eval", str(folder)])
    assert result.exit_code == 2, result.output
    what = {
        "missing": "no such folder;",
        "empty": "no variant folders (A0_NNN/new_nn.py) in it;",
        "file": "not a folder;",
    }[where]
    assert result.stderr.splitlines() == [
        f"error: {folder}: {what} pass the synth_nn folder lrgen generate wrote"
    ]
    assert written(tmp_path) == []


def test_ray_missing_names_the_extra(
    synth: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *a: None if name == "ray" else found(name, *a),
    )  # fmt: skip
    result = run_eval(synth, "--executor", "ray")
    assert result.exit_code == 2, result.output
    assert "install 'lrgen[ray]'" in result.stderr
    assert written(synth) == []


def test_help_shows_the_default_epochs() -> None:
    assert cli.EVAL_EPOCHS == train.DEFAULT_EPOCHS
    result = runner.invoke(app, ["eval", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert f"(default: {train.DEFAULT_EPOCHS})" in result.output


# ----------------------------------------------------------------------------
# A run: the files, results.csv, resume.
# ----------------------------------------------------------------------------


def expected_rows(synth: Path) -> list[dict[str, str]]:
    """results.csv as the contract describes it, from the records."""
    rows = []
    for variant in sorted(VARIANTS):
        rec = record(synth, variant)
        for run in sorted(rec["runs"], key=lambda r: r["seed"]):
            for e in run["epochs"]:
                row = {
                    "variant": variant, "name": rec["name"], "family": rec["family"],
                    "seed": str(run["seed"]), "status": run["status"],
                    "error": run["error"] or "",
                }  # fmt: skip
                for key in ("epoch", "train_loss", "train_accuracy", "test_loss",
                            "test_accuracy", "lr", "seconds",
                            "samples_per_second"):  # fmt: skip
                    row[key] = repr(e[key]) if isinstance(e[key], float) else str(
                        e[key]
                    )
                rows.append(row)
    return rows


def read_csv(synth: Path) -> list[dict[str, str]]:
    with (synth / "results.csv").open(newline="") as stream:
        return list(csv.DictReader(stream))


def test_a_run_writes_every_file_and_results_csv(synth: Path) -> None:
    result = run_eval(synth)
    assert result.exit_code == 0, result.output
    assert "3 variants run: 3 trained, 0 failed; 0 skipped" in result.output
    for variant in VARIANTS:
        folder = synth / variant
        assert sorted(p.name for p in folder.iterdir()) == [
            "1.json", "2.json", "eval_info.json", "hp.txt", "lrgen_eval.json",
            "new_nn.py",
        ]  # fmt: skip
        rec = record(synth, variant)
        assert rec["status"] == "ok" and [r["seed"] for r in rec["runs"]] == [0]
        epochs = rec["runs"][0]["epochs"]
        assert [e["epoch"] for e in epochs] == [1, 2]
        for e in epochs:  # accuracies are counts of the 359 test digits
            count = e["test_accuracy"] * DIGITS_TEST
            assert count == pytest.approx(round(count), abs=1e-6)
        info = json.loads((folder / "eval_info.json").read_text())
        assert info["eval_results"]["accuracy"] == epochs[-1]["test_accuracy"]
        second = json.loads((folder / "2.json").read_text())
        assert second["epoch"] == 2 and second["accuracy"] == epochs[1]["test_accuracy"]
    with (synth / "results.csv").open(newline="") as stream:
        assert next(csv.reader(stream)) == list(evaluate.COLUMNS)
    assert read_csv(synth) == expected_rows(synth)
    # ExponentialLR multiplies the rate by the same factor after each epoch.
    lr = [float(r["lr"]) for r in read_csv(synth) if r["variant"] == "A0_005"]
    start = json.loads((synth / "A0_005" / "hp.txt").read_text())["lr"]
    assert lr[0] < start and lr[1] / lr[0] == pytest.approx(lr[0] / start)


def test_a_second_run_skips_force_retrains_a_changed_hp_retrains_one(
    synth: Path,
) -> None:
    assert run_eval(synth).exit_code == 0
    first = stamps(synth)
    trained = {v: numbers(synth, v) for v in VARIANTS}
    again = run_eval(synth)
    assert again.exit_code == 0, again.output
    assert "3 of 3 variants already trained with these settings, skipped" in (
        again.output
    )
    assert "0 variants run" in again.output
    assert stamps(synth) == first

    forced = run_eval(synth, "--force")
    assert forced.exit_code == 0, forced.output
    after_force = stamps(synth)
    assert all(after_force[v] != first[v] for v in VARIANTS)
    assert {v: numbers(synth, v) for v in VARIANTS} == trained

    hp = synth / "A0_005" / "hp.txt"
    hp.write_text(hp.read_text().replace('"lr": 0.01', '"lr": 0.02'))
    changed = run_eval(synth)
    assert changed.exit_code == 0, changed.output
    assert "2 of 3 variants already trained" in changed.output
    now = stamps(synth)
    assert now["A0_005"] != after_force["A0_005"]
    assert {v: now[v] for v in ("A0_001", "A0_017")} == {
        v: after_force[v] for v in ("A0_001", "A0_017")
    }
    assert record(synth, "A0_005")["prm"]["lr"] == 0.02

    other_settings = run_eval(synth, "--seed", "1")
    assert "0 variants run" not in other_settings.output
    assert all(stamps(synth)[v] != now[v] for v in VARIANTS)


def test_only_trains_the_chosen_variants(synth: Path) -> None:
    result = run_eval(synth, "--only", "Cyclic*", "--only", "a0_001")
    assert result.exit_code == 0, result.output
    assert (synth / "A0_001" / "lrgen_eval.json").is_file()
    assert (synth / "A0_017" / "lrgen_eval.json").is_file()
    assert not (synth / "A0_005" / "lrgen_eval.json").exists()
    assert {r["variant"] for r in read_csv(synth)} == {"A0_001", "A0_017"}


# ----------------------------------------------------------------------------
# Failures: one variant's never stops the others.
# ----------------------------------------------------------------------------


def break_learn(folder: Path, statement: str) -> None:
    code = folder / "new_nn.py"
    text = code.read_text()
    head = "    def learn(self, train_data):\n"
    assert head in text
    code.write_text(text.replace(head, f"{head}        {statement}\n", 1))


def test_a_variant_that_raises_is_recorded_failed(synth: Path) -> None:
    break_learn(synth / "A0_005", "raise RuntimeError('no rate today')")
    result = run_eval(synth)
    assert result.exit_code == 1, result.output
    assert "RuntimeError: no rate today" in result.output
    assert "3 variants run: 2 trained, 1 failed" in result.output
    broken = synth / "A0_005"
    assert record(synth, "A0_005")["status"] == "failed"
    assert not (broken / "eval_info.json").exists()
    error = (broken / "error.txt").read_text().split("\n")
    assert "RuntimeError: no rate today" in error[0] and error[1] == ""
    assert "Traceback" in error[2]
    for variant in ("A0_001", "A0_017"):
        assert record(synth, variant)["status"] == "ok"
        assert (synth / variant / "eval_info.json").is_file()
    rows = [r for r in read_csv(synth) if r["variant"] == "A0_005"]
    assert [(r["status"], r["epoch"]) for r in rows] == [("failed", "")]
    assert "no rate today" in rows[0]["error"]
    # The failure is not complete: the next run trains it again.
    again = run_eval(synth)
    assert "2 of 3 variants already trained" in again.output


def test_in_worker_processes_a_death_or_an_error_fails_one_variant(
    synth: Path,
) -> None:
    break_learn(synth / "A0_001", "import os, signal; os.kill(os.getpid(), "
                "signal.SIGKILL)")  # fmt: skip
    break_learn(synth / "A0_005", "raise RuntimeError('no rate today')")
    result = run_eval(synth, "--workers", "2")
    assert result.exit_code == 1, result.output
    assert "3 variants run: 1 trained, 2 failed" in result.output
    rec = record(synth, "A0_001")
    assert rec["status"] == "failed" and rec["runs"] == []
    assert "died (killed by SIGKILL" in rec["error"]
    assert "died (killed by SIGKILL" in (synth / "A0_001" / "error.txt").read_text()
    raised = record(synth, "A0_005")
    assert raised["status"] == "failed" and "no rate today" in raised["error"]
    assert record(synth, "A0_017")["status"] == "ok"
    rows = [r for r in read_csv(synth) if r["variant"] == "A0_001"]
    assert [(r["status"], r["seed"], r["epoch"]) for r in rows] == [
        ("failed", "", "")
    ]


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("import sys; sys.exit(3)", "epoch 1, learn(): SystemExit: 3 (new_nn.py "
         "line"),
        ("raise KeyboardInterrupt", "epoch 1, learn(): KeyboardInterrupt "
         "(new_nn.py line"),
        ("import os; os._exit(0)", "the worker process training it ended (exit "
         "code 0)"),
        ("import time; time.sleep(600)", "stopped in epoch 1: no epoch finished "
         "within the 20 s time limit"),
        ("import os, time; os.setpgid(0, os.getpgid(os.getppid())); "
         "time.sleep(600)", "stopped in epoch 1: no epoch finished within the 20 s"),
    ],
    ids=["sys.exit", "KeyboardInterrupt", "os._exit", "hangs",
         "hangs-out-of-its-group"],
)
def test_a_variant_that_ends_its_process_or_hangs_fails_alone(
    synth: Path, statement: str, error: str
) -> None:
    break_learn(synth / "A0_005", statement)
    result = run_eval(synth, "--timeout", "20")
    assert result.exit_code == 1, result.output
    assert "3 variants run: 2 trained, 1 failed" in result.output
    rec = record(synth, "A0_005")
    assert rec["status"] == "failed" and error in rec["error"], rec["error"]
    assert error in (synth / "A0_005" / "error.txt").read_text()
    for variant in ("A0_001", "A0_017"):
        assert train.is_complete(synth / variant, settings_of_tiny_run())


def fork_then(folder: Path, pid_file: Path, statement: str) -> None:
    """Make the variant's learn() fork a child that writes its pid into
    `pid_file` and sleeps, then run `statement` once the pid is written."""
    learn = (
        "import os, time\n"
        "        if os.fork() == 0:  # a child meant to outlive the worker\n"
        "            open(PID, 'w').write(str(os.getpid()))\n"
        "            time.sleep(300)\n"
        "        while not os.path.exists(PID) or not os.path.getsize(PID):\n"
        "            time.sleep(0.01)\n"
        f"        {statement}"
    )
    break_learn(folder, learn.replace("PID", repr(str(pid_file))))


def ends_soon(pid: int, seconds: float = 30) -> bool:
    """Whether process `pid` is gone (or a zombie) within `seconds`."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
        except OSError:  # gone
            return True
        if state == "Z":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def test_a_killed_driver_takes_its_workers_and_their_forks_along(
    synth: Path, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "fork.pid"
    fork_then(synth / "A0_001", pid_file, "time.sleep(600)")
    command = [sys.executable, "-m", "lrgen", "eval", str(synth), *TINY_RUN, "-q"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline, "the fork never started"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert ends_soon(int(pid_file.read_text())), "the fork outlived the run"


def test_sigterm_ends_the_run_as_ctrl_c_does(synth: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    # A0_005 hangs, deaf to SIGTERM: the run still ends, its worker killed.
    break_learn(synth / "A0_005", "import signal, time; signal.signal("
                "signal.SIGTERM, signal.SIG_IGN); time.sleep(600)")  # fmt: skip
    command = [sys.executable, "-m", "lrgen", "eval", str(synth), *TINY_RUN, "-q"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    first = synth / "A0_001" / "lrgen_eval.json"
    deadline = time.monotonic() + 120
    while not first.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # A0_005 is in flight, sleeping
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert stderr.splitlines()[-1] == (
        "error: terminated: 1 of 3 variants finished, their results kept; run "
        "the same command again to train the rest"
    )
    assert {r["variant"] for r in read_csv(synth)} == {"A0_001"}
    assert not (synth / "A0_005" / "lrgen_eval.json").exists()


def test_a_variant_whose_fork_outlives_it_fails_at_once_and_the_fork_ends(
    synth: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "fork.pid"
    fork_then(synth / "A0_005", pid_file, "os._exit(1)")
    result = run_eval(synth, "--timeout", "100")
    assert result.exit_code == 1, result.output
    error = record(synth, "A0_005")["error"]
    assert error.startswith("A0_005: epoch 1: the worker process training it ended "
                            "(exit code 1)"), error
    assert ends_soon(int(pid_file.read_text()))


@pytest.mark.parametrize(
    "value", ["NaN", "Infinity", "1e999", "[" * 100_000 + "]" * 100_000],
    ids=["NaN", "Infinity", "1e999", "nested-too-deep"],
)
def test_a_hp_txt_number_json_cannot_hold_fails_that_variant(
    synth: Path, value: str
) -> None:
    hp = synth / "A0_005" / "hp.txt"
    hp.write_text(hp.read_text().replace('"lr": 0.01', f'"lr": {value}'))
    result = run_eval(synth)
    assert result.exit_code == 1, result.output
    assert "hp.txt is not JSON (" in record(synth, "A0_005")["error"]
    for variant in ("A0_001", "A0_017"):
        assert record(synth, variant)["status"] == "ok"


def test_a_foreign_record_beside_is_left_out_of_results_csv(synth: Path) -> None:
    (synth / "A0_005" / "lrgen_eval.json").write_text("{}")
    (synth / "A0_017" / "lrgen_eval.json").write_text('{"format": 1, "status": '
                                                      '"ok", "runs": "x"}')
    (synth / "A0_001" / "lrgen_eval.json").write_text(
        '{"format": 1, "status": "ok", "runs": [{"seed": null, "status": "ok", '
        '"epochs": []}, {"seed": 0, "status": "ok", "epochs": []}]}'
    )
    assert evaluate.result_rows(synth) == []
    result = run_eval(synth, "--only", "A0_001")
    assert result.exit_code == 0, result.output
    assert {r["variant"] for r in read_csv(synth)} == {"A0_001"}
    foreign = evaluate.summarize(synth / "A0_005")
    assert foreign is not None and foreign.status == "unreadable"


def test_a_second_eval_on_the_same_folder_is_refused(
    synth: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lrgen.generate import eval_lock

    link = synth.parent / "link"
    link.symlink_to(synth)
    monkeypatch.chdir(synth)
    for spelling in (synth, Path("."), link):  # every spelling, one lock
        with eval_lock(synth):
            result = run_eval(spelling)
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [
            f"error: {spelling}: another lrgen eval is training these variants; "
            "wait for it to finish"
        ]
    assert written(synth) == []


def test_a_lock_that_cannot_be_made_is_one_line(
    synth: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from filelock import FileLock

    def refused(self: FileLock, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(FileLock, "acquire", refused)
    result = run_eval(synth)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {synth.parent}/.synth_nn.eval.lock: cannot "
                           "create the lock") and "Permission denied" in line
    assert written(synth) == []


def test_a_folder_it_cannot_write_is_refused_before_training(
    synth: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.access
    monkeypatch.setattr(
        os, "access",
        lambda path, mode: not str(path).endswith("A0_017") and real(path, mode),
    )  # fmt: skip
    result = run_eval(synth)
    assert result.exit_code == 2, result.output
    assert "1 variant folder(s) not writable (A0_017)" in result.stderr
    assert written(synth) == []


def test_a_record_without_every_epoch_is_not_complete(synth: Path) -> None:
    assert run_eval(synth, "--only", "A0_001").exit_code == 0
    folder, settings = synth / "A0_001", settings_of_tiny_run()
    assert train.is_complete(folder, settings)
    path = folder / "lrgen_eval.json"
    rec = json.loads(path.read_text())
    rec["runs"][0]["epochs"].pop()
    path.write_text(json.dumps(rec))
    assert not train.is_complete(folder, settings)
    rec["runs"] = []
    path.write_text(json.dumps(rec))
    assert not train.is_complete(folder, settings)


def test_an_interrupted_run_keeps_what_finished(
    synth: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = evaluate.train_variant
    calls: list[str] = []

    def interrupted_second(folder: Path, *args: Any, **kwargs: Any) -> Any:
        calls.append(folder.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(folder, *args, **kwargs)

    monkeypatch.setattr(evaluate, "train_variant", interrupted_second)
    result = run_eval(synth, "--workers", "0")
    assert result.exit_code == 130, result.output
    assert result.stderr.splitlines() == [
        "error: interrupted: 1 of 3 variants finished, their results kept; run "
        "the same command again to train the rest"
    ]
    assert train.is_complete(synth / "A0_001", settings_of_tiny_run())
    assert not (synth / "A0_005" / "lrgen_eval.json").exists()
    assert {r["variant"] for r in read_csv(synth)} == {"A0_001"}
    monkeypatch.setattr(evaluate, "train_variant", real)
    resumed = run_eval(synth)
    assert "1 of 3 variants already trained" in resumed.output
    assert "2 variants run" in resumed.output


def settings_of_tiny_run(**changes: Any) -> train.EvalSettings:
    return train.EvalSettings(limit=64, epochs=2, **changes)


# ----------------------------------------------------------------------------
# Worker processes and seeds.
# ----------------------------------------------------------------------------


def test_two_workers_and_this_process_give_the_numbers_of_one(
    synth: Path, tmp_path: Path
) -> None:
    here = run_eval(synth, "--workers", "1")
    assert here.exit_code == 0, here.output
    alone = {v: numbers(synth, v) for v in VARIANTS}
    for workers in ("2", "0"):
        pooled = run_eval(synth, "--workers", workers, "--force")
        assert pooled.exit_code == 0, pooled.output
        assert {v: numbers(synth, v) for v in VARIANTS} == alone
    for e in alone["A0_001"][0]:
        assert all(math.isfinite(e[k]) for k in ("train_loss", "test_loss", "lr"))


def test_repeats_train_one_run_per_seed(synth: Path) -> None:
    result = run_eval(synth, "--seed", "3", "--repeats", "2", "--only", "A0_001")
    assert result.exit_code == 0, result.output
    rec = record(synth, "A0_001")
    assert [r["seed"] for r in rec["runs"]] == [3, 4]
    assert rec["settings"]["seeds"] == [3, 4]
    both = numbers(synth, "A0_001")
    assert both[0] != both[1]  # another seed, another shuffle and start
    rows = read_csv(synth)
    assert [(r["seed"], r["epoch"]) for r in rows] == [
        ("3", "1"), ("3", "2"), ("4", "1"), ("4", "2")
    ]
    finals = [run[-1]["test_accuracy"] for run in both]
    mean = sum(finals) / 2
    deviation = math.sqrt(sum((f - mean) ** 2 for f in finals))  # n - 1 = 1
    assert f"{mean:.4f} ± {deviation:.4f}" in result.output
    alone = run_eval(synth, "--seed", "4", "--only", "A0_001")
    assert alone.exit_code == 0, alone.output
    assert numbers(synth, "A0_001") == [both[1]]


def test_worker_threads_share_the_cores() -> None:
    settings = train.EvalSettings()
    cores = os.cpu_count() or 1
    assert evaluate.worker_threads(settings, 1) == cores
    assert evaluate.worker_threads(settings, cores * 2) == 1
    assert evaluate.worker_threads(train.EvalSettings(threads=3), 2) == 3
