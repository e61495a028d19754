"""Generate the catalog's variants of a base model into an NNEval folder."""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
from filelock import FileLock, Timeout

from transforms.model_shape import ModelRefused

from . import catalog
from .catalog import Variant
from .fast_generate import variant_code

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BASE = PROJECT_ROOT / "base_model" / "resnet18.py"
SYNTH_PATH = Path("nngpt", "llm", "epoch", "A0", "synth_nn")


class BadInput(Exception):
    """Input lrgen cannot use; the message says what, where and what to do."""


class VariantRefused(BadInput):
    """A base model the codemods refuse for one variant, and the reason."""

    def __init__(self, path: Path, variant: Variant, reason: str) -> None:
        super().__init__(f"{path}: cannot add {variant.name}: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Generated:
    variant: Variant
    code: str
    hp: str
    prefix: str = ""  # the base's file name, when several bases are generated

    @property
    def folder(self) -> str:
        """The variant's folder in synth_nn: its id, or `<base>_<id>`."""
        return f"{self.prefix}_{self.variant.id}" if self.prefix else self.variant.id

    @property
    def bytes(self) -> int:
        return len(self.code.encode())


def read_base(path: Path) -> cst.Module:
    """Parse a base model, turning every way it can fail into one line."""
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a BOM is Python's too
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
        where = f"{path}:{error.lineno}:{error.offset}" if error.lineno else f"{path}"
        raise BadInput(
            f"{where}: syntax error: {error.msg}; fix the model so that Python "
            "can parse it"
        ) from None
    except (RecursionError, MemoryError):
        raise BadInput(
            f"{path}: nested too deeply to parse; simplify its longest expression"
        ) from None
    except cst.ParserSyntaxError as error:
        raise BadInput(
            f"{path}:{error.editor_line}:{error.editor_column}: LibCST cannot "
            f"parse it: {error.message}"
        ) from None


def apply_variant(
    base: cst.Module, variant: Variant, path: Path, replace: bool = False
) -> str:
    """The code of one variant of a parsed base model; with `replace`, a
    scheduler the model has is taken out first."""
    try:
        code = variant_code(base, variant, path, replace)
    except ModelRefused as refusal:
        raise VariantRefused(path, variant, str(refusal)) from None
    compile(code, f"{variant.id}/new_nn.py", "exec")  # a guard, not the method
    return code


def hp_text(variant: Variant, epoch_max: int) -> str:
    return json.dumps(catalog.hp_values(variant, epoch_max), indent=2) + "\n"


def generate(
    base_path: Path, variants: list[Variant], epoch_max: int, replace: bool = False
) -> list[Generated]:
    """Every selected variant of the base, in memory; nothing is written."""
    if epoch_max < 1:
        raise BadInput(f"--epoch-max must be at least 1, got {epoch_max}")
    base = read_base(base_path)
    return [
        Generated(
            v, apply_variant(base, v, base_path, replace), hp_text(v, epoch_max)
        )
        for v in variants
    ]


def folder_files(results: list[Generated]) -> Contents:
    """The synth_nn folder as relative path -> text."""
    files: Contents = {"__init__.py": ""}
    for result in results:
        files[f"{result.folder}/new_nn.py"] = result.code
        files[f"{result.folder}/hp.txt"] = result.hp
    return files


@dataclass
class BaseOutcome:
    """What became of one base of a sweep: its variants, or why not."""

    path: Path
    prefix: str
    results: list[Generated]
    refused: list[str]  # one line per refusal: the whole base or a variant


def base_files(paths: list[Path]) -> list[Path]:
    """The model files a list of --base values names: files as given,
    folders as the `*.py` files directly in them, in name order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p for p in sorted(path.glob("*.py")) if p.name != "__init__.py"
            )
        else:
            found.append(path)
    if not found:
        shown = ", ".join(str(p) for p in paths)
        raise BadInput(f"{shown}: no model files (*.py) in it; pass LEMUR models")
    return list(dict.fromkeys(found))


def generate_many(
    paths: list[Path], variants: list[Variant], epoch_max: int, replace: bool = False
) -> list[BaseOutcome]:
    """Every selected variant of every base, in memory, each in the folder
    `<base file name>_<id>`; a base or variant refused is recorded with its
    reason, and the others go on."""
    if epoch_max < 1:
        raise BadInput(f"--epoch-max must be at least 1, got {epoch_max}")
    outcomes: list[BaseOutcome] = []
    prefixes: dict[str, Path] = {}
    for path in paths:
        prefix = re.sub(r"\W", "_", path.stem)
        outcome = BaseOutcome(path, prefix, [], [])
        outcomes.append(outcome)
        if prefix in prefixes:
            outcome.refused.append(
                f"{path}: its folders would be those of {prefixes[prefix]} "
                f"({prefix}_A0_NNN); rename one of the two"
            )
            continue
        prefixes[prefix] = path
        try:
            base = read_base(path)
        except BadInput as error:
            outcome.refused.append(str(error))
            continue
        reasons: dict[str, list[str]] = {}
        for variant in variants:
            try:
                code = apply_variant(base, variant, path, replace)
            except VariantRefused as refusal:
                reasons.setdefault(refusal.reason, []).append(variant.name)
                continue
            outcome.results.append(
                Generated(variant, code, hp_text(variant, epoch_max), prefix)
            )
        for reason, names in reasons.items():
            which = "every variant" if len(names) == len(variants) else ", ".join(names)
            outcome.refused.append(f"{path}: cannot add {which}: {reason}")
    return outcomes


VARIANT_FOLDER = re.compile(r"(\w+_)?A0_\d{3}")
VARIANT_FILES = ("new_nn.py", "hp.txt")


def is_generated_name(name: str) -> bool:
    """Whether a path relative to synth_nn is one lrgen writes: `__init__.py`
    and `<id>/new_nn.py`, `<id>/hp.txt` of a variant folder."""
    parts = name.split("/")
    if parts == ["__init__.py"]:
        return True
    return (
        len(parts) == 2
        and VARIANT_FOLDER.fullmatch(parts[0]) is not None
        and parts[1] in VARIANT_FILES
    )


def present_files(target: Path) -> set[str]:
    """Files under `target`, as relative POSIX paths; Python's caches aside."""
    if not target.is_dir():
        return set()
    return {
        p.relative_to(target).as_posix()
        for p in target.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


Contents = dict[str, "str | bytes"]
"""A synth_nn folder as relative path -> text (what lrgen writes) or bytes
(files of other variants kept as they are)."""


def foreign_files(target: Path, files: Contents | None = None) -> list[str]:
    """Files in `target` that lrgen did not write (NNEval's results, notes,
    other models) and that writing `files` would delete."""
    keep = files or {}
    return sorted(
        n for n in present_files(target) if not is_generated_name(n) and n not in keep
    )


def with_kept_variants(
    target: Path, files: Contents, selected: list[Variant]
) -> Contents:
    """`files` plus every file of the variant folders already in `target`
    that were not selected, NNEval's results included: `--only` regenerates
    some variants and keeps the others as they are."""
    chosen = {v.id for v in selected}
    kept: Contents = {}
    for name in present_files(target):
        folder = name.split("/")[0]
        if "/" in name and VARIANT_FOLDER.fullmatch(folder) and folder[-6:] not in chosen:
            kept[name] = (target / name).read_bytes()
    return {**kept, **files}


RUN_RESULTS = ("results.csv", "report.md", "report_files/")
"""What lrgen eval and lrgen report write beside the variant folders."""
VARIANT_RESULTS = re.compile(
    r"lrgen_eval\.json|eval_info\.json|error\.txt|[1-9]\d*\.json"
)
"""What lrgen eval writes into a variant folder."""


def with_kept_results(target: Path, files: Contents) -> Contents:
    """`files` plus the training results in `target` that still describe
    them: those of each variant folder whose new_nn.py and hp.txt are written
    unchanged, and the run's results.csv and report. Results of a variant
    whose code changes are not kept (they would describe other code)."""
    present = present_files(target)

    @functools.cache
    def unchanged(folder: str) -> bool:
        return all(
            f"{folder}/{code}" in files
            and f"{folder}/{code}" in present
            and (target / folder / code).read_bytes()
            == _encoded(files[f"{folder}/{code}"])
            for code in VARIANT_FILES
        )

    kept: Contents = {}
    for name in present:
        folder, _, leaf = name.rpartition("/")
        if name.startswith(RUN_RESULTS) or (
            VARIANT_FOLDER.fullmatch(folder)
            and VARIANT_RESULTS.fullmatch(leaf)
            and unchanged(folder)
        ):
            kept[name] = (target / name).read_bytes()
    return {**kept, **files}


def _encoded(content: str | bytes) -> bytes:
    return content.encode() if isinstance(content, str) else content


def stale_files(target: Path, files: Contents) -> list[str]:
    """Relative paths in `target` that differ from `files`: changed, missing
    or not generated."""
    present = present_files(target)
    stale = [
        name
        for name, content in files.items()
        if name not in present or (target / name).read_bytes() != _encoded(content)
    ]
    return sorted(stale + sorted(present - set(files)))


def exchange_folders(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux `renameat2(RENAME_EXCHANGE)`), so
    that no moment exists where neither is in place; False where the system
    cannot."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange):
        code = ctypes.get_errno()
        if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            return False
        raise OSError(code, os.strerror(code), str(a))
    return True


def _leftovers(target: Path) -> list[Path]:
    """Staging and retired folders that runs killed mid-write left beside
    `target`."""
    return sorted(target.parent.glob(f".{target.name}.*.tmp"))


def _recover(target: Path) -> None:
    """Put back an output a killed run had moved aside (only possible where
    folders cannot be swapped in one step), then drop the other leftovers."""
    for leftover in _leftovers(target):
        retired = leftover / target.name
        if not target.exists() and leftover.name.startswith(
            f".{target.name}.old."
        ) and retired.is_dir():
            os.rename(retired, target)
        shutil.rmtree(leftover, ignore_errors=True)


def output_lock(target: Path) -> FileLock:
    """The lock runs replacing files in the same output folder share
    (generate, report), to take turns. Beside the folder, named after the
    folder's real path, so that every spelling of it finds the same lock."""
    target = target.resolve()
    return FileLock(target.parent / f".{target.name}.lock")


def eval_lock(target: Path) -> FileLock:
    """The lock `lrgen eval` holds while it trains the variants in `target`;
    no other eval, and no generate, may touch them meanwhile."""
    target = target.resolve()
    return FileLock(target.parent / f".{target.name}.eval.lock")


def check_not_training(target: Path) -> None:
    """Refuse to replace `target` while an eval trains its variants (an eval
    that never ran left no lock file, and none is made here)."""
    lock = eval_lock(target)
    if not Path(lock.lock_file).exists():
        return
    try:
        with lock.acquire(timeout=0):
            pass
    except Timeout:
        raise BadInput(
            f"{target}: lrgen eval is training its variants; wait for it to "
            "finish (or stop it) and run again"
        ) from None


def check_not_blocked(target: Path) -> None:
    """Refuse an output folder that is, or lies below, something other than a
    folder (a file, a device)."""
    for path in [target, *target.parents]:
        if path.exists() and not path.is_dir():
            what = "is a file, not a folder" if path.is_file() else "is not a folder"
            raise BadInput(f"{path}: {what}; choose another --out")


def write_atomically(
    target: Path,
    files: Contents,
    prepare: Callable[[Contents], Contents] | None = None,
) -> None:
    """Replace `target` by a folder holding exactly `files`, all at once:
    built beside it, then swapped in. A run killed at any moment leaves the
    previous output whole; two runs on one target take turns, and `prepare`
    (which may read the old output and refuse) runs in that turn."""
    parent = target.parent
    check_not_blocked(target)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInput(
            f"{parent}: cannot create it ({error.strerror}); choose a writable --out"
        ) from None
    if target.is_symlink():
        raise BadInput(
            f"{target}: is a link; lrgen replaces the folder whole, so pass the "
            "folder it points to as --out"
        )
    try:
        with output_lock(target):
            check_not_training(target)
            _recover(target)
            _swap_in(target, prepare(files) if prepare else files)
    except OSError as error:
        raise BadInput(
            f"{parent}: cannot write there ({error.strerror}); choose a writable --out"
        ) from None


def _swap_in(target: Path, files: Contents) -> None:
    parent = target.parent
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new.", suffix=".tmp",
                                    dir=parent))
    try:
        for name, content in sorted(files.items()):
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_encoded(content))
        os.chmod(staging, 0o755)
        if not target.exists():
            os.rename(staging, target)
        elif not exchange_folders(staging, target):
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.",
                                            suffix=".tmp", dir=parent))
            os.rename(target, retired / target.name)
            os.rename(staging, target)  # a kill just before: _recover undoes it
            shutil.rmtree(retired)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
