"""The package and the codemods type-check under mypy --strict."""

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_strict_passes() -> None:
    stdout, stderr, status = api.run(
        ["--strict", "--no-incremental", str(ROOT / "lrgen"), str(ROOT / "transforms")]
    )
    assert status == 0, stdout + stderr
