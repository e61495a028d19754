"""Output is replaced whole or not at all: runs killed at random moments and
runs racing on one folder never leave a mix."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lrgen.generate import write_atomically

ROOT = Path(__file__).resolve().parents[1]
SYNTH = Path("nngpt", "llm", "epoch", "A0", "synth_nn")

# A writer with enough files that the write itself takes a while, so that
# kills land inside it and not only before it.
WRITER = """
import sys
from pathlib import Path
from lrgen.generate import write_atomically
tag = sys.argv[2]
files = {f"A0_{n:03d}/hp.txt": f"{tag} {n}\\n" * 50 for n in range(1, 1000)}
files["__init__.py"] = tag
print("ready", flush=True)
write_atomically(Path(sys.argv[1]), files)
"""


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def expected(tag: str) -> dict[str, bytes]:
    files = {f"A0_{n:03d}/hp.txt": (f"{tag} {n}\n" * 50).encode() for n in range(1, 1000)}
    files["__init__.py"] = tag.encode()
    return files


def start_writer(target: Path, tag: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target), tag],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    return process


def test_a_writer_killed_at_random_moments_leaves_a_whole_output(tmp_path: Path) -> None:
    target = tmp_path / "synth_nn"
    write_atomically(target, {k: v.decode() for k, v in expected("old").items()})
    old, new = expected("old"), expected("new")
    # How long an uninterrupted write takes, to spread the kills over it.
    probe = tmp_path / "probe" / "synth_nn"
    started = time.perf_counter()
    start_writer(probe, "new").wait()
    span = time.perf_counter() - started
    rng = random.Random(7)
    outcomes = set()
    for _ in range(12):
        writer = start_writer(target, "new")
        time.sleep(rng.uniform(0, span))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        now = snapshot(target)
        assert now in (old, new), "a killed write left a partial output"
        outcomes.add("new" if now == new else "old")
        if any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
            outcomes.add("mid-write")
        write_atomically(target, {k: v.decode() for k, v in old.items()})
        assert snapshot(target) == old
    # The next run clears what killed runs left beside the target.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".synth_nn.lock", "probe", "synth_nn"
    ]
    assert {"old", "mid-write"} <= outcomes, outcomes


def test_generate_killed_at_random_moments_keeps_the_previous_output(
    tmp_path: Path,
) -> None:
    command = [sys.executable, "-m", "lrgen", "generate", "-q", "--out", str(tmp_path)]
    subprocess.run([*command, "--epoch-max", "7"], check=True, cwd=ROOT)
    before = snapshot(tmp_path / SYNTH)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    span = time.perf_counter() - started
    after = snapshot(tmp_path / SYNTH)
    assert before != after
    rng = random.Random(11)
    for index in range(4):
        subprocess.run([*command, "--epoch-max", "7"], check=True, cwd=ROOT)
        process = subprocess.Popen(command, cwd=ROOT)
        # The last kills land where the writing happens: the end of the run.
        time.sleep(span * (rng.uniform(0.85, 1.0) if index >= 2 else rng.random()))
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert snapshot(tmp_path / SYNTH) in (before, after)


def test_two_runs_on_one_folder_do_not_interleave(tmp_path: Path) -> None:
    target = tmp_path / "synth_nn"
    for _ in range(3):
        first = start_writer(target, "first")
        second = start_writer(target, "second")
        assert first.wait() == 0 and second.wait() == 0
        assert snapshot(target) in (expected("first"), expected("second"))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.skipif(sys.platform != "linux", reason="folder swap is Linux's")
def test_a_swap_never_leaves_the_target_missing(tmp_path: Path) -> None:
    # While one process rewrites the folder, another finds it there each time.
    target = tmp_path / "synth_nn"
    write_atomically(target, {"__init__.py": "a"})
    writer = start_writer(target, "x")
    misses = 0
    while writer.poll() is None:
        misses += not (target / "__init__.py").exists()
    assert misses == 0
