"""Shared fixtures: the catalog generated once per session, and its models
imported as real, picklable modules."""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from lrgen import catalog
from lrgen.catalog import Variant
from lrgen.generate import SYNTH_PATH, folder_files, generate, write_atomically

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BASE_MODEL = PROJECT_ROOT / "base_model" / "resnet18.py"
COMMITTED_SYNTH = PROJECT_ROOT / "out" / SYNTH_PATH
TEST_EPOCH_MAX = 2
"""The horizon of the session's main generation: short, so training is cheap."""

_serial = itertools.count()


def import_model_file(path: Path) -> ModuleType:
    """Import a generated `new_nn.py` under a unique name registered in
    `sys.modules`, so that pickle finds its classes and functions."""
    name = f"lrgen_model_{next(_serial)}_{path.parent.name}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"cannot import {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@dataclass
class GeneratedFolder:
    """A `synth_nn` folder as lrgen writes it, read the way NNEval reads it."""

    root: Path
    epoch_max: int
    _modules: dict[str, ModuleType] = field(default_factory=dict, repr=False)

    def model_dir(self, variant: Variant) -> Path:
        return self.root / variant.id

    def code(self, variant: Variant) -> str:
        return (self.model_dir(variant) / "new_nn.py").read_text(encoding="utf-8")

    def hp_text(self, variant: Variant) -> str:
        return (self.model_dir(variant) / "hp.txt").read_text(encoding="utf-8")

    def hp(self, variant: Variant) -> dict[str, object]:
        """A fresh copy of the variant's `prm`, as NNEval builds it from hp.txt."""
        return json.loads(self.hp_text(variant))

    def module(self, variant: Variant) -> ModuleType:
        """The variant's `new_nn.py`, imported once per session."""
        if variant.name not in self._modules:
            path = self.model_dir(variant) / "new_nn.py"
            self._modules[variant.name] = import_model_file(path)
        return self._modules[variant.name]


def _generate_folder(parent: Path, epoch_max: int) -> GeneratedFolder:
    results = generate(BASE_MODEL, list(catalog.VARIANTS), epoch_max)
    target = parent / SYNTH_PATH
    write_atomically(target, folder_files(results))
    return GeneratedFolder(target, epoch_max)


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFolder:
    """Every catalog variant of the base ResNet18, generated once with
    epoch_max=2 into a temporary `out/` tree."""
    parent = tmp_path_factory.mktemp(f"epoch_max_{TEST_EPOCH_MAX}")
    return _generate_folder(parent, TEST_EPOCH_MAX)


@pytest.fixture(scope="session")
def generated_default(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFolder:
    """Every catalog variant generated once with lrgen's default epoch_max (50)."""
    parent = tmp_path_factory.mktemp(f"epoch_max_{catalog.DEFAULT_EPOCH_MAX}")
    return _generate_folder(parent, catalog.DEFAULT_EPOCH_MAX)


@pytest.fixture(scope="session")
def import_model() -> Callable[[Path], ModuleType]:
    """`import_model(path)` imports any generated `new_nn.py` (for example one
    under the committed `out/`) as a uniquely named, picklable module."""
    return import_model_file
