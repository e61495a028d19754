"""Training speed of `lrgen eval` against a bare PyTorch loop, same model,
data and batch size, in one run.

    python bench/eval_bench.py [--variant A0_001] [--epochs 2] [--rounds 3]
                               [--threads N] [--all]

The model is a generated ResNet18 variant from the committed out/ folder; the
data the offline digits (1,438 training images); the batch the variant's
hp.txt batch (64). Each round times, in alternating order:

- lrgen: `lrgen.train.train_variant`, the path `lrgen eval` trains with (a
  fresh import of new_nn.py, `Net`, `train_setup`, one `learn` per epoch over
  the batch iterator that scores each batch, the rate read, a test pass);
- bare: a plain loop on the same `Net`: a DataLoader, `model(x)`,
  CrossEntropyLoss, backward, the gradient clipping the model's own `learn`
  does, `optimizer.step()`, and a StepLR stepped after each epoch; then the
  same test pass in eval mode.

Training samples per second count only the time spent training (lrgen: the
time of `learn`, as it records it; bare: its batch loop), and the end to end
figure the whole call, model build and test passes included (timed here for
both). Medians over the rounds, their ratio lrgen / bare, and the median of each
round's ratio (less swayed by a shared machine's load) are printed; the goal
is a ratio of at least 0.95.

With --all it then times the real command, `lrgen eval` at its defaults, on a
temporary copy of the 30 variants (goal: about ten minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from lrgen.data import Data, load_data
from lrgen.evaluate import variant_folders
from lrgen.train import DEFAULT_EPOCHS, EvalSettings, train_variant

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SYNTH = PROJECT_ROOT / "out" / "nngpt" / "llm" / "epoch" / "A0" / "synth_nn"
GOAL_RATIO = 0.95
GOAL_ALL_SECONDS = 600.0


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"
    except OSError:
        return "unknown"


def lrgen_round(folder: Path, settings: EvalSettings, data: Data) -> dict[str, float]:
    start = time.perf_counter()
    record = train_variant(folder, settings, data)
    wall = time.perf_counter() - start
    if record["status"] != "ok":
        raise SystemExit(f"error: {folder.name} failed: {record['error']}")
    epochs = record["runs"][0]["epochs"]
    samples = record["train_samples"] * len(epochs)
    return {
        "train": samples / sum(e["seconds"] for e in epochs),
        "wall": samples / wall,
        "accuracy": epochs[-1]["test_accuracy"],
    }


def _import(folder: Path) -> types.ModuleType:
    module = types.ModuleType(f"bench_{folder.name}")
    path = folder / "new_nn.py"
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    exec(compile(path.read_text(), str(path), "exec"), module.__dict__)
    return module


def bare_round(
    folder: Path, settings: EvalSettings, data: Data, seed: int = 0
) -> dict[str, float]:
    """The plain loop; returns the same figures as lrgen_round."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    prm = json.loads((folder / "hp.txt").read_text())
    batch = prm["batch"]
    image = tuple(data.train[0][0].shape)
    model = _import(folder).Net((batch, *image), (len(data.classes),), prm,
                                torch.device("cpu"))  # fmt: skip
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=prm["lr"],
                                momentum=prm["momentum"])  # fmt: skip
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    shuffle = torch.Generator().manual_seed(seed)
    train = DataLoader(data.train, batch_size=batch, shuffle=True, generator=shuffle)
    test = DataLoader(data.test, batch_size=batch)
    training = 0.0
    correct = 0
    for _ in range(settings.epochs):
        began = time.perf_counter()
        model.train()
        for inputs, labels in train:
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 3)
            optimizer.step()
        scheduler.step()
        training += time.perf_counter() - began
        model.eval()
        correct = 0
        with torch.no_grad():
            for inputs, labels in test:
                correct += int((model(inputs).argmax(1) == labels).sum())
    wall = time.perf_counter() - start
    samples = len(data.train) * settings.epochs  # type: ignore[arg-type]
    return {
        "train": samples / training,
        "wall": samples / wall,
        "accuracy": correct / len(data.test),  # type: ignore[arg-type]
    }


def time_all(workers: int) -> None:
    """`lrgen eval` at its defaults on a temporary copy of the 30 variants."""
    with tempfile.TemporaryDirectory(prefix="lrgen-eval-bench-") as temp:
        copy = Path(temp, "synth_nn")
        for folder in variant_folders(SYNTH):
            (copy / folder.name).mkdir(parents=True)
            for name in ("new_nn.py", "hp.txt"):
                shutil.copy2(folder / name, copy / folder.name / name)
        command = ["lrgen", "eval", str(copy), "--quiet"]
        if workers != 1:
            command += ["--workers", str(workers)]
        print(f"\n$ {' '.join(command)}   ({len(variant_folders(copy))} variants, "
              f"{DEFAULT_EPOCHS} epochs each)", flush=True)  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(command, check=False)
        wall = time.perf_counter() - start
        rows = (copy / "results.csv").read_text().splitlines()[1:]
        failed = sum(1 for row in rows if ",failed," in row)
        print(f"wall time:     {wall:.0f} s ({wall / 60:.1f} min; goal about "
              f"{GOAL_ALL_SECONDS / 60:.0f} min), exit code {done.returncode}, "
              f"{len(rows)} rows in results.csv, {failed} failed")  # fmt: skip
        print(f"load average:  {_load()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="A0_001",
                        help="variant folder under out/ [default: A0_001]")
    parser.add_argument("--epochs", type=int, default=2,
                        help="epochs a round [default: 2]")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of each, alternated [default: 3]")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads for both [default: all cores]")
    parser.add_argument("--all", action="store_true",
                        help="also time lrgen eval of all 30 variants")
    parser.add_argument("--workers", type=int, default=1,
                        help="--workers for the --all run [default: 1]")
    args = parser.parse_args(argv)  # fmt: skip
    folder = SYNTH / args.variant
    if not (folder / "new_nn.py").is_file():
        print(f"error: {folder}: no variant there", file=sys.stderr)
        return 2
    if min(args.epochs, args.rounds, args.threads, args.workers) < 1:
        print("error: --epochs, --rounds, --threads and --workers must be at "
              "least 1", file=sys.stderr)  # fmt: skip
        return 2

    torch.set_num_threads(args.threads)
    data = load_data("digits")
    settings = EvalSettings(epochs=args.epochs, threads=args.threads)
    batch = json.loads((folder / "hp.txt").read_text())["batch"]
    images = len(data.train)  # type: ignore[arg-type]
    print(f"model:         {folder} (digits, {images} training images, "
          f"batch {batch}, {args.epochs} epochs a round, {args.threads} threads)")
    print(f"machine:       {os.cpu_count()} CPUs, load {_load()}")
    warm_up = EvalSettings(epochs=1, threads=args.threads)
    lrgen_round(folder, warm_up, data)  # warm-ups, not timed
    bare_round(folder, warm_up, data)
    figures: dict[str, list[dict[str, float]]] = {"lrgen": [], "bare": []}
    for index in range(args.rounds):
        order = ["lrgen", "bare"] if index % 2 == 0 else ["bare", "lrgen"]
        for name in order:
            run = lrgen_round if name == "lrgen" else bare_round
            result = run(folder, settings, data)
            figures[name].append(result)
            print(f"round {index + 1} {name:<6} train {result['train']:7.1f} "
                  f"samples/s, end to end {result['wall']:7.1f} samples/s, test "
                  f"accuracy {result['accuracy']:.4f}", flush=True)  # fmt: skip

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in figures[name])

    print()
    for key, label in [("train", "training"), ("wall", "end to end")]:
        ours, bare = median("lrgen", key), median("bare", key)
        ratio = ours / bare
        verdict = "meets" if ratio >= GOAL_RATIO else "misses"
        paired = statistics.median(
            a[key] / b[key] for a, b in zip(figures["lrgen"], figures["bare"])
        )
        print(f"{label:<11} lrgen {ours:7.1f}  bare {bare:7.1f} samples/s (medians); "
              f"ratio {ratio:.3f} ({verdict} the goal of {GOAL_RATIO}); median of "
              f"each round's ratio {paired:.3f}")
    if args.all:
        time_all(args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
