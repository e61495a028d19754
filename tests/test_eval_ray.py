"""`lrgen eval --executor ray`: three tiny variants trained as tasks of a Ray
instance started on this machine give the files and numbers of a local run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_evaluate import (
    TIMING,
    VARIANTS,
    break_learn,
    generate_tiny,
    read_csv,
    record,
    run_eval,
)

pytest.importorskip("ray")

MEASURED = TIMING | {"traceback"}


def without_times(value: object) -> object:
    """The value with the measured times (and tracebacks, which name the
    temporary folder a task trained in) taken out, at any depth."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k not in MEASURED}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def test_ray_tasks_write_what_a_local_run_writes(tmp_path: Path) -> None:
    local = generate_tiny(tmp_path / "local")
    remote = generate_tiny(tmp_path / "ray")
    for synth in (local, remote):
        break_learn(synth / "A0_017", "raise RuntimeError('no rate today')")

    here = run_eval(local)
    assert here.exit_code == 1, here.output
    result = run_eval(remote, "--executor", "ray", "--workers", "2")
    assert result.exit_code == 1, result.output
    assert "3 variants run: 2 trained, 1 failed" in result.output

    for variant in VARIANTS:
        names = sorted(p.name for p in (local / variant).iterdir())
        assert sorted(p.name for p in (remote / variant).iterdir()) == names
        assert without_times(record(remote, variant)) == without_times(
            record(local, variant)
        )
    assert record(remote, "A0_017")["status"] == "failed"
    assert "no rate today" in (remote / "A0_017" / "error.txt").read_text()
    for variant in ("A0_001", "A0_005"):
        info = [json.loads((s / variant / "eval_info.json").read_text())
                for s in (local, remote)]  # fmt: skip
        assert without_times(info[0]) == without_times(info[1])
        assert (remote / variant / "2.json").is_file()
    columns = ("seconds", "samples_per_second")
    assert [{k: v for k, v in r.items() if k not in columns}
            for r in read_csv(remote)] == [
        {k: v for k, v in r.items() if k not in columns} for r in read_csv(local)
    ]  # fmt: skip

    # Resume through Ray: the finished variants are skipped.
    again = run_eval(remote, "--executor", "ray", "--workers", "2")
    assert "2 of 3 variants already trained" in again.output
    assert "1 variant run: 0 trained, 1 failed" in again.output

    # A task asking for more CPUs than the cluster has would wait forever.
    greedy = run_eval(remote, "--executor", "ray", "--threads", "64", "--force")
    assert greedy.exit_code == 2, greedy.output
    assert greedy.stderr.splitlines() == [
        "error: --threads 64: each Ray task would ask for 64 CPUs and the cluster "
        "has 1; ask for fewer"
    ]
