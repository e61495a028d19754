"""Load generated models and run their schedules (imports torch)."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from . import catalog
from .catalog import Variant

_STEP_ORDER = r"Detected call of `lr_scheduler\.step\(\)` before"
_DOC = re.compile(r"The (\w+) schedule, stepped")


def load_module(path: Path) -> ModuleType:
    """Import a generated `new_nn.py` under a name of its own, registered in
    `sys.modules` so that its models pickle."""
    name = "lrgen_model_" + re.sub(r"\W", "_", str(path.resolve()))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def variant_of(code: str) -> Variant | None:
    """The catalog variant a generated file holds, from its builder's
    docstring; None for a file lrgen did not generate."""
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.FunctionDef) and node.name == "build_lr_scheduler":
            found = _DOC.search(ast.get_docstring(node) or "")
            if found and found.group(1) in catalog.BY_NAME:
                return catalog.BY_NAME[found.group(1)]
    return None


def read_prm(folder: Path) -> dict[str, Any]:
    prm: dict[str, Any] = json.loads((folder / "hp.txt").read_text())
    return prm


def schedule_rates(
    module: ModuleType,
    stepping: str,
    prm: dict[str, Any],
    epochs_run: int,
    batches_per_epoch: int,
    bases: Sequence[float] = (1.0,),
) -> list[list[float]]:
    """The rate of every group at every optimizer step, running the module's
    `build_lr_scheduler` on one scalar parameter per group and stepping it as
    the generated `learn()` does. The optimizer itself is not stepped: the
    rates do not depend on it, and the run is the cheaper."""
    groups = [
        {"params": [torch.nn.Parameter(torch.zeros(()))], "lr": base} for base in bases
    ]
    optimizer = torch.optim.SGD(groups, lr=bases[0], momentum=prm.get("momentum", 0))
    if stepping == "batch":
        scheduler = module.build_lr_scheduler(optimizer, prm, batches_per_epoch)
    else:
        scheduler = module.build_lr_scheduler(optimizer, prm)
    budget = getattr(scheduler, "total_steps", None)
    seen: list[list[float]] = []
    with warnings.catch_warnings():
        # The scheduler steps without the optimizer on purpose (see above).
        warnings.filterwarnings("ignore", message=_STEP_ORDER, category=UserWarning)
        for _ in range(epochs_run):
            for _ in range(batches_per_epoch):
                seen.append([float(g["lr"]) for g in optimizer.param_groups])
                if stepping == "batch" and (
                    budget is None or scheduler.last_epoch + 1 < budget
                ):
                    scheduler.step()
            if stepping == "epoch":
                scheduler.step()
    return seen
