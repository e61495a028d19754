"""Training one variant as the LEMUR loop does, and the files it leaves.

The models here are small LEMUR-format files written by the tests, so every
expected number (rates, losses, accuracies, counts) is worked out below from
the data and the schedule's formula, not by the code under test."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import TensorDataset

from lrgen import train
from lrgen.data import Data, load_data
from lrgen.generate import BadInput
from lrgen.train import (
    EvalSettings,
    chance_floor,
    is_complete,
    read_record,
    train_variant,
    write_results,
)

COMMITTED = Path(__file__).resolve().parents[1] / "out/nngpt/llm/epoch/A0/synth_nn"

LINEAR = '''
import torch
import torch.nn as nn


def supported_hyperparameters():
    return {'lr', 'momentum', 'step_size', 'gamma'}


class Net(nn.Module):
    def __init__(self, in_shape, out_shape, prm, device):
        super().__init__()
        self.device = device
        self.fc = nn.Linear(in_shape[1] * in_shape[2] * in_shape[3], out_shape[0])

    def forward(self, x):
        return self.fc(torch.flatten(x, 1))

    def train_setup(self, prm):
        self.to(self.device)
        self.criteria = (nn.CrossEntropyLoss(),)
        self.optimizer = torch.optim.SGD(
            self.parameters(), lr=prm['lr'], momentum=prm['momentum'])
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=prm['step_size'], gamma=prm['gamma'])

    def learn(self, train_data):
        for inputs, labels in train_data:
            inputs, labels = inputs.to(self.device), labels.to(self.device)
            self.optimizer.zero_grad()
            loss = self.criteria[0](self(inputs), labels)
            loss.backward()
            self.optimizer.step()
        self.scheduler.step()
'''
LINEAR_HP = {"lr": 0.05, "momentum": 0.9, "step_size": 2, "gamma": 0.5, "batch": 32}

ZERO = '''
import torch
import torch.nn as nn


def supported_hyperparameters():
    return {'lr', 'momentum'}


class Net(nn.Module):
    """Zero logits for every image: every class equally likely."""

    def __init__(self, in_shape, out_shape, prm, device):
        super().__init__()
        self.classes = out_shape[0]
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return torch.zeros(x.shape[0], self.classes) * self.w

    def train_setup(self, prm):
        self.optimizer = torch.optim.SGD(
            self.parameters(), lr=prm['lr'], momentum=prm['momentum'])

    def learn(self, train_data):
        for inputs, labels in train_data:
            self.optimizer.zero_grad()
            nn.functional.cross_entropy(self(inputs), labels).backward()
            self.optimizer.step()
'''
ZERO_HP = {"lr": 0.1, "momentum": 0.0, "batch": 32}


@pytest.fixture(scope="module")
def digits() -> Data:
    return load_data("digits", limit=200)


def variant(parent: Path, name: str, code: str, hp: dict[str, Any] | None) -> Path:
    folder = parent / name
    folder.mkdir(parents=True)
    (folder / "new_nn.py").write_text(textwrap.dedent(code).lstrip())
    if hp is not None:
        (folder / "hp.txt").write_text(json.dumps(hp, indent=2) + "\n")
    return folder


def without_times(record: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(record))
    for run in copy["runs"]:
        for epoch in run["epochs"]:
            for key in ("seconds", "samples_per_second", "duration"):
                epoch.pop(key)
    return copy


def labels_of(dataset: Any) -> torch.Tensor:
    return torch.as_tensor([int(dataset[i][1]) for i in range(len(dataset))])


# ----------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------


def test_settings_key_holds_what_results_depend_on() -> None:
    settings = EvalSettings(limit=64, epochs=3, seeds=(4, 5), threads=1,
                            data_dir=Path("/data"))  # fmt: skip
    assert settings.key() == {
        "batch": None, "dataset": "digits", "epoch_max": None, "epochs": 3,
        "limit": 64, "seeds": [4, 5],
    }  # fmt: skip
    assert EvalSettings().epochs == train.DEFAULT_EPOCHS


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("epochs", 0, "--epochs 0: must be at least 1"),
        ("batch", -1, "--batch -1: must be at least 1"),
        ("epoch_max", 0, "--epoch-max 0: must be at least 1"),
        ("threads", 0, "--threads 0: must be at least 1"),
        ("seeds", (), "no seeds to train with; --repeats must be at least 1"),
    ],
)
def test_settings_refuse_what_cannot_train(
    field: str, value: Any, message: str
) -> None:
    with pytest.raises(BadInput) as refused:
        EvalSettings(**{field: value})
    assert str(refused.value) == message


# ----------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------


def test_rate_and_test_figures_follow_the_model(tmp_path: Path, digits: Data) -> None:
    folder = variant(tmp_path, "A0_001", LINEAR, LINEAR_HP)
    seen: list[tuple[int, int, int]] = []
    record = train_variant(
        folder, EvalSettings(limit=200, epochs=3, seeds=(0, 1)), digits,
        lambda *args: seen.append(args),
    )  # fmt: skip
    assert record["status"] == "ok" and record["error"] is None
    assert (record["name"], record["family"]) == ("StepLR_default", "StepLR")
    assert record["prm"] == {**LINEAR_HP, "transform": "norm_256_flip",
                             "epoch_max": 3, "epoch": 3}  # fmt: skip
    assert (record["train_samples"], record["test_samples"]) == (200, 359)
    assert record["classes"] == list("0123456789")
    assert seen == [(0, 1, 3), (0, 2, 3), (0, 3, 3), (1, 1, 3), (1, 2, 3), (1, 3, 3)]
    test_counts = torch.bincount(labels_of(digits.test), minlength=10).tolist()
    for run, seed in zip(record["runs"], (0, 1)):
        assert run["seed"] == seed and run["status"] == "ok"
        epochs = run["epochs"]
        assert [e["epoch"] for e in epochs] == [1, 2, 3]
        # StepLR(step_size=2, gamma=0.5), read after each epoch's step
        assert [e["lr"] for e in epochs] == [0.05 * 0.5 ** (n // 2) for n in (1, 2, 3)]
        confusion = run["confusion"]
        assert [sum(row) for row in confusion] == test_counts
        correct = sum(confusion[c][c] for c in range(10))
        assert epochs[-1]["test_accuracy"] == correct / 359
        assert run["class_accuracy"] == [confusion[c][c] / test_counts[c]
                                         for c in range(10)]  # fmt: skip
        assert epochs[-1]["test_accuracy"] > 0.7  # a linear model learns digits
        for e in epochs:
            assert 0 <= e["train_accuracy"] <= 1 and e["train_loss"] > 0
            assert e["seconds"] > 0
            assert e["samples_per_second"] == pytest.approx(200 / e["seconds"])
        durations = [e["duration"] for e in epochs]
        assert durations == sorted(durations) and isinstance(durations[0], int)


def test_zero_logits_give_the_closed_form_losses_and_accuracies(
    tmp_path: Path,
) -> None:
    data = load_data("digits", limit=70)  # batches of 32, 32 and 6
    folder = variant(tmp_path, "zero", ZERO, ZERO_HP)
    record = train_variant(folder, EvalSettings(limit=70, epochs=2), data)
    assert record["status"] == "ok", record["error"]
    assert (record["name"], record["family"]) == (None, None)
    train_labels, test_labels = labels_of(data.train), labels_of(data.test)
    for epoch in record["runs"][0]["epochs"]:
        assert epoch["train_loss"] == pytest.approx(math.log(10), rel=1e-6)
        assert epoch["test_loss"] == pytest.approx(math.log(10), rel=1e-6)
        # argmax of equal logits is class 0; shares over all samples, not
        # a mean of the three batches' shares
        assert epoch["train_accuracy"] == int((train_labels == 0).sum()) / 70
        assert epoch["test_accuracy"] == int((test_labels == 0).sum()) / 359
        assert epoch["lr"] == 0.1
    confusion = record["runs"][0]["confusion"]
    counts = torch.bincount(test_labels, minlength=10).tolist()
    assert confusion == [[count] + [0] * 9 for count in counts]
    assert record["runs"][0]["class_accuracy"] == [1.0] + [0.0] * 9


def test_same_seed_same_numbers_other_seed_others(tmp_path: Path, digits: Data) -> None:
    folder = variant(tmp_path, "A0_001", LINEAR, LINEAR_HP)
    first = train_variant(folder, EvalSettings(limit=200, epochs=2), digits)
    again = train_variant(folder, EvalSettings(limit=200, epochs=2), digits)
    other = train_variant(folder, EvalSettings(limit=200, epochs=2, seeds=(1,)), digits)
    assert without_times(first) == without_times(again)
    ours = [e["train_loss"] for e in first["runs"][0]["epochs"]]
    theirs = [e["train_loss"] for e in other["runs"][0]["epochs"]]
    assert ours != theirs


def test_batch_and_epoch_max_from_the_settings(tmp_path: Path, digits: Data) -> None:
    folder = variant(tmp_path, "A0_001", LINEAR, LINEAR_HP)
    record = train_variant(
        folder, EvalSettings(limit=200, epochs=1, epoch_max=9, batch=50), digits
    )
    assert record["prm"]["batch"] == 50
    assert (record["prm"]["epoch_max"], record["prm"]["epoch"]) == (9, 1)


def test_without_hp_txt_nnevals_defaults_are_used(tmp_path: Path, digits: Data) -> None:
    folder = variant(tmp_path, "A0_002", ZERO, None)
    record = train_variant(folder, EvalSettings(limit=200, epochs=1), digits)
    assert record["status"] == "ok"
    assert record["prm"] == {"lr": 0.01, "momentum": 0.9, "dropout": 0.2,
                             "batch": 64, "transform": "norm_256_flip",
                             "epoch_max": 1, "epoch": 1}  # fmt: skip
    assert record["hp_sha256"] is None
    assert record["runs"][0]["epochs"][0]["lr"] == 0.01


RAISES = LINEAR.replace(
    "        self.scheduler.step()\n",
    "        self.scheduler.step()\n"
    "        if self.scheduler.last_epoch == 2:\n"
    "            raise RuntimeError('boom\\nsecond line')\n",
)


def test_an_error_in_learn_fails_that_variant_only(
    tmp_path: Path, digits: Data
) -> None:
    bad = variant(tmp_path, "A0_002", RAISES, LINEAR_HP)
    good = variant(tmp_path, "A0_003", LINEAR, LINEAR_HP)
    settings = EvalSettings(limit=200, epochs=2, seeds=(0, 1))
    failed = train_variant(bad, settings, digits)
    fine = train_variant(good, settings, digits)
    line = RAISES.lstrip().splitlines().index(
        "            raise RuntimeError('boom\\nsecond line')"
    ) + 1
    error = f"A0_002: epoch 2, learn(): RuntimeError: boom (new_nn.py line {line})"
    assert failed["status"] == "failed" and failed["error"] == error
    assert "RuntimeError: boom" in failed["traceback"]
    assert f'new_nn.py", line {line}, in learn' in failed["traceback"]
    assert len(failed["runs"]) == 1  # the second seed is not trained
    run = failed["runs"][0]
    assert (run["status"], run["error"]) == ("failed", error)
    assert [e["epoch"] for e in run["epochs"]] == [1]
    assert run["confusion"] is None and run["class_accuracy"] is None
    assert fine["status"] == "ok" and len(fine["runs"]) == 2
    assert not [m for m in sys.modules if m.startswith("lrgen_run_")]


def test_a_model_that_does_not_import_fails_with_its_line(
    tmp_path: Path, digits: Data
) -> None:
    folder = variant(tmp_path, "A0_004", "import torch\nx = (\n", LINEAR_HP)
    record = train_variant(folder, EvalSettings(limit=200, epochs=1), digits)
    assert record["status"] == "failed"
    assert record["error"].startswith("A0_004: importing new_nn.py: SyntaxError: ")
    assert record["runs"][0]["epochs"] == []


def test_unreadable_hp_txt_fails_the_variant(tmp_path: Path, digits: Data) -> None:
    folder = variant(tmp_path, "A0_005", LINEAR, None)
    (folder / "hp.txt").write_text("{not json")
    record = train_variant(folder, EvalSettings(limit=200, epochs=1), digits)
    assert record["status"] == "failed" and record["runs"] == []
    assert record["error"].startswith("A0_005: hp.txt is not JSON (")


NAN = ZERO.replace(
    "torch.zeros(x.shape[0], self.classes) * self.w",
    "torch.full((x.shape[0], self.classes), float('nan')) * self.w",
)


def test_a_loss_that_is_not_finite_stops_the_run(tmp_path: Path, digits: Data) -> None:
    folder = variant(tmp_path, "A0_006", NAN, ZERO_HP)
    record = train_variant(folder, EvalSettings(limit=200, epochs=3), digits)
    assert record["status"] == "failed"
    assert record["error"] == "A0_006: epoch 1: the train loss is nan; the run diverged"
    assert record["traceback"] is None
    (epoch,) = record["runs"][0]["epochs"]
    assert epoch["train_loss"] is None and epoch["test_loss"] is None


def _share_data(test_zeros: int, tested: int) -> Data:
    """Random images; the test set holds `test_zeros` images of class 0 and
    the rest of class 1, so that zero logits score test_zeros / tested."""
    generator = torch.Generator().manual_seed(0)
    train_set = TensorDataset(torch.randn(40, 3, 32, 32, generator=generator),
                              torch.arange(40) % 10)  # fmt: skip
    labels = torch.tensor([0] * test_zeros + [1] * (tested - test_zeros))
    images = torch.randn(tested, 3, 32, 32, generator=generator)
    test_set = TensorDataset(images, labels)
    return Data("toy", train_set, test_set, tuple("abcdefghij"))


def test_below_chance_stops_the_run_beyond_the_luck_of_the_test_set(
    tmp_path: Path,
) -> None:
    folder = variant(tmp_path, "A0_007", ZERO, ZERO_HP)
    floor = 0.1 - 2 * math.sqrt(0.1 * 0.9 / 1000)  # 0.0810
    assert chance_floor(10, 1000) == pytest.approx(floor)
    settings = EvalSettings(epochs=2)
    lucky = train_variant(folder, settings, _share_data(82, 1000))
    assert lucky["status"] == "ok"
    unlucky = train_variant(folder, settings, _share_data(80, 1000))
    assert unlucky["status"] == "failed"
    assert unlucky["error"] == (
        "A0_007: epoch 1: test accuracy 0.0800 is below chance (0.1 for 10 "
        "classes, 0.0810 allowing for the luck of 1000 test images); the LEMUR "
        "loop stops such a run"
    )


THREADS = ZERO.replace(
    "    def learn(self, train_data):\n",
    "    def learn(self, train_data):\n"
    "        assert torch.get_num_threads() == 1, torch.get_num_threads()\n",
)


def test_threads_apply_while_training_only(tmp_path: Path, digits: Data) -> None:
    folder = variant(tmp_path, "A0_008", THREADS, ZERO_HP)
    threads = torch.get_num_threads()
    record = train_variant(folder, EvalSettings(limit=200, epochs=1, threads=1), digits)
    assert record["status"] == "ok", record["error"]
    assert torch.get_num_threads() == threads


# ----------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------


NNEVAL_KEYS = {"uid", "duration", "accuracy", "train_loss", "test_loss",
               "train_accuracy", "samples_per_second", "best_accuracy",
               "best_epoch", "transform", "epoch"}  # fmt: skip


def test_success_writes_nneval_files_and_the_record_last(
    tmp_path: Path, digits: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = variant(tmp_path, "A0_001", LINEAR, LINEAR_HP)
    settings = EvalSettings(limit=200, epochs=3)
    record = train_variant(folder, settings, digits)
    (folder / "error.txt").write_text("old failure\n")
    (folder / "4.json").write_text("{}")
    (folder / "12.json").write_text("{}")
    (folder / "notes.json").write_text("{}")
    replaced: list[str] = []
    real_replace = os.replace

    def spy(source: Any, target: Any) -> None:
        replaced.append(Path(target).name)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    write_results(folder, record)
    assert replaced == ["1.json", "2.json", "3.json", "eval_info.json",
                        "lrgen_eval.json"]  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == [
        "1.json", "2.json", "3.json", "eval_info.json", "hp.txt", "lrgen_eval.json",
        "new_nn.py", "notes.json",
    ]  # fmt: skip
    epochs = record["runs"][0]["epochs"]
    trials = [json.loads((folder / f"{n}.json").read_text()) for n in (1, 2, 3)]
    best = 0.0
    for number, (trial, epoch) in enumerate(zip(trials, epochs), 1):
        assert set(trial) == NNEVAL_KEYS | set(record["prm"])
        assert trial["epoch"] == number
        assert trial["accuracy"] == epoch["test_accuracy"]
        assert trial["train_loss"] == epoch["train_loss"]
        assert trial["duration"] == epoch["duration"]
        best = max(best, epoch["test_accuracy"])
        assert trial["best_accuracy"] == best
        assert epochs[trial["best_epoch"] - 1]["test_accuracy"] == best
        assert trial["lr"] == 0.05 and trial["transform"] == "norm_256_flip"
    assert len({t["uid"] for t in trials}) == 1
    info = json.loads((folder / "eval_info.json").read_text())
    assert info["eval_results"]["accuracy"] == epochs[-1]["test_accuracy"]
    assert info["eval_results"]["checksum"] == record["code_sha256"]
    assert info["cli_args"] == {
        "task": "img-classification", "dataset": "digits", "metric": "acc",
        "lr": 0.05, "batch": 32, "dropout": None, "momentum": 0.9,
        "transform": "norm_256_flip",
    }  # fmt: skip
    text = (folder / "lrgen_eval.json").read_text()
    assert text == json.dumps(record, sort_keys=True, indent=2) + "\n"
    assert read_record(folder) == record
    assert is_complete(folder, settings)


def test_failure_writes_error_txt_and_takes_eval_info_away(
    tmp_path: Path, digits: Data
) -> None:
    folder = variant(tmp_path, "A0_002", RAISES, LINEAR_HP)
    settings = EvalSettings(limit=200, epochs=2)
    for name in ("eval_info.json", "1.json", "2.json"):
        (folder / name).write_text("{}")
    record = train_variant(folder, settings, digits)
    write_results(folder, record)
    assert sorted(p.name for p in folder.iterdir()) == [
        "error.txt", "hp.txt", "lrgen_eval.json", "new_nn.py"
    ]
    error, blank, *trace = (folder / "error.txt").read_text().splitlines()
    assert error == record["error"] and blank == ""
    assert trace[0] == "Traceback (most recent call last):"
    assert trace[-2:] == ["RuntimeError: boom", "second line"]
    assert read_record(folder)["status"] == "failed"  # type: ignore[index]
    assert not is_complete(folder, settings)


def test_completeness_follows_code_hp_and_settings(
    tmp_path: Path, digits: Data
) -> None:
    folder = variant(tmp_path, "A0_001", LINEAR, LINEAR_HP)
    settings = EvalSettings(limit=200, epochs=1)
    assert not is_complete(folder, settings) and read_record(folder) is None
    write_results(folder, train_variant(folder, settings, digits))
    assert is_complete(folder, settings)
    assert is_complete(folder, EvalSettings(limit=200, epochs=1, threads=1))
    for other in (
        EvalSettings(limit=200, epochs=2),
        EvalSettings(limit=100, epochs=1),
        EvalSettings(limit=200, epochs=1, seeds=(0, 1)),
        EvalSettings(limit=200, epochs=1, batch=16),
        EvalSettings(limit=200, epochs=1, epoch_max=5),
    ):
        assert not is_complete(folder, other)
    hp = (folder / "hp.txt").read_text()
    (folder / "hp.txt").write_text(hp + " ")
    assert not is_complete(folder, settings)
    (folder / "hp.txt").write_text(hp)
    assert is_complete(folder, settings)
    (folder / "new_nn.py").write_text(LINEAR.lstrip() + "# changed\n")
    assert not is_complete(folder, settings)
    (folder / "lrgen_eval.json").write_text("{broken")
    assert read_record(folder) is None


# ----------------------------------------------------------------------------
# The real output
# ----------------------------------------------------------------------------


def test_a_generated_resnet18_variant_trains_under_the_protocol(tmp_path: Path) -> None:
    folder = tmp_path / "A0_001"
    shutil.copytree(COMMITTED / "A0_001", folder)
    settings = EvalSettings(limit=64, epochs=1)
    record = train_variant(folder, settings)
    assert record["status"] == "ok", record["error"]
    assert record["name"] == "StepLR_default"
    (epoch,) = record["runs"][0]["epochs"]
    # StepLR_default with epoch_max = 1: step_size round(0.3 x 1) -> 1 (at
    # least 1), gamma 0.01 x 100 ** 0.5 = 0.1, one step after the epoch
    step_size = max(1, round(0.3 * 1))
    gamma = 0.01 * 100**0.5
    assert epoch["lr"] == pytest.approx(0.01 * gamma ** (1 // step_size))
    assert record["train_samples"] == 64
    assert math.isfinite(epoch["train_loss"]) and math.isfinite(epoch["test_loss"])
    confusion = record["runs"][0]["confusion"]
    data = load_data("digits")
    counts = torch.bincount(labels_of(data.test), minlength=10).tolist()
    assert [sum(row) for row in confusion] == counts
    write_results(folder, record)
    assert json.loads((folder / "1.json").read_text())["epoch"] == 1
    assert is_complete(folder, settings)
