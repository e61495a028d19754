"""Generate the catalog's variants of a base model into an NNEval folder."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext

from transforms.add_lr_scheduler import AddLrSchedulerCommand
from transforms.model_shape import ModelRefused

from . import catalog
from .catalog import Variant

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BASE = PROJECT_ROOT / "base_model" / "resnet18.py"
SYNTH_PATH = Path("nngpt", "llm", "epoch", "A0", "synth_nn")


class BadInput(Exception):
    """Input lrgen cannot use; the message says what, where and what to do."""


@dataclass(frozen=True)
class Generated:
    variant: Variant
    code: str
    hp: str

    @property
    def bytes(self) -> int:
        return len(self.code.encode())


def read_base(path: Path) -> cst.Module:
    """Parse a base model, turning every way it can fail into one line."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise BadInput(
            f"{path}: no such file; pass a LEMUR model with --base"
        ) from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a folder; pass a model file with --base") from None
    except PermissionError:
        raise BadInput(f"{path}: not readable; check its permissions") from None
    except UnicodeDecodeError as error:
        raise BadInput(
            f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None
    try:
        compile(text, str(path), "exec", dont_inherit=True)
        return cst.parse_module(text)
    except SyntaxError as error:
        raise BadInput(
            f"{path}:{error.lineno}:{error.offset}: syntax error: {error.msg}; "
            "fix the model so that Python can parse it"
        ) from None
    except cst.ParserSyntaxError as error:
        raise BadInput(
            f"{path}:{error.editor_line}:{error.editor_column}: LibCST cannot "
            f"parse it: {error.message}"
        ) from None


def apply_variant(base: cst.Module, variant: Variant, path: Path) -> str:
    """The code of one variant of a parsed base model."""
    command = AddLrSchedulerCommand(CodemodContext(filename=str(path)), variant.name)
    try:
        code = command.transform_module(base).code
    except ModelRefused as refusal:
        raise BadInput(f"{path}: cannot add {variant.name}: {refusal}") from None
    compile(code, f"{variant.id}/new_nn.py", "exec")  # a guard, not the method
    return code


def hp_text(variant: Variant, epoch_max: int) -> str:
    return json.dumps(catalog.hp_values(variant, epoch_max), indent=2) + "\n"


def generate(
    base_path: Path, variants: list[Variant], epoch_max: int
) -> list[Generated]:
    """Every selected variant of the base, in memory; nothing is written."""
    if epoch_max < 1:
        raise BadInput(f"--epoch-max must be at least 1, got {epoch_max}")
    base = read_base(base_path)
    return [
        Generated(v, apply_variant(base, v, base_path), hp_text(v, epoch_max))
        for v in variants
    ]


def folder_files(results: list[Generated]) -> dict[str, str]:
    """The synth_nn folder as relative path -> text."""
    files = {"__init__.py": ""}
    for result in results:
        files[f"{result.variant.id}/new_nn.py"] = result.code
        files[f"{result.variant.id}/hp.txt"] = result.hp
    return files


def stale_files(target: Path, files: dict[str, str]) -> list[str]:
    """Relative paths in `target` that differ from `files`: changed, missing
    or not generated."""
    present = {
        p.relative_to(target).as_posix()
        for p in target.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    } if target.is_dir() else set()
    stale = [
        name
        for name, text in files.items()
        if name not in present or (target / name).read_bytes() != text.encode()
    ]
    return sorted(stale + sorted(present - set(files)))


def write_atomically(target: Path, files: dict[str, str]) -> None:
    """Replace `target` by a folder holding exactly `files`, all at once:
    built beside it, then swapped in with renames."""
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = next(p for p in [parent, *parent.parents] if p.is_file())
        raise BadInput(
            f"{blocking}: is a file, not a folder; choose another --out"
        ) from None
    except PermissionError:
        raise BadInput(f"{parent}: cannot create it; choose a writable --out") from None
    if target.exists() and not target.is_dir():
        raise BadInput(f"{target}: is a file, not a folder; choose another --out")
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    except PermissionError:
        raise BadInput(f"{parent}: not writable; choose another --out") from None
    try:
        for name, text in sorted(files.items()):
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.chmod(staging, 0o755)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=parent))
            os.rename(target, retired / target.name)
            os.rename(staging, target)
            shutil.rmtree(retired)
        else:
            os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
