"""The image sets `lrgen eval` trains on, held in memory as 3x32x32 tensors.

- `digits` (the default, offline): the 1,797 handwritten digits scikit-learn
  ships, 8x8 grey levels 0..16, scaled to [0, 1], resized to 32x32 (bilinear),
  copied into three channels and normalised with the fixed mean and standard
  deviation of all resized images. A fixed stratified split puts a fifth of
  each digit in the test set: 1,438 training and 359 test images.
- `cifar10`: CIFAR-10 from a folder in torchvision's layout, read by
  torchvision, converted as `ToTensor()` does and normalised per channel.

`limit` keeps the first N images of a fixed permutation of the training set,
so a smaller limit is a subset of a larger one; the test set stays whole.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from .generate import BadInput

if TYPE_CHECKING:
    from torchvision.datasets import CIFAR10  # type: ignore[import-untyped]

DATASETS = ("digits", "cifar10")
IMAGE_SIZE = 32
DIGITS_MEAN = 0.3053  # over all 1,797 digits, scaled to [0, 1] and resized
DIGITS_STD = 0.3236
DIGITS_TEST_SHARE = 0.2
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # over CIFAR-10's training images
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_FOLDER = "cifar-10-batches-py"  # what torchvision reads below --data-dir
SPLIT_SEED = 0
LIMIT_SEED = 0
# numpy's legacy RandomState draws the same numbers on every machine and
# numpy version, so the split and the subsets never move.


@dataclass(frozen=True)
class Data:
    name: str
    train: Dataset[tuple[torch.Tensor, ...]]
    test: Dataset[tuple[torch.Tensor, ...]]
    classes: tuple[str, ...]  # class names, index = label


def load_data(
    name: str,
    data_dir: Path | None = None,
    download: bool = False,
    limit: int | None = None,
) -> Data:
    """One of DATASETS, whole or with its training set cut to `limit`."""
    if name == "digits":
        train, test, classes = _digits()
    elif name == "cifar10":
        train, test, classes = _cifar10(data_dir, download)
    else:
        raise BadInput(
            f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}"
        )
    if limit is not None:
        train = _first_of_permutation(train, limit, name)
    return Data(name, train, test, classes)


def _first_of_permutation(train: TensorDataset, limit: int, name: str) -> TensorDataset:
    size = len(train)
    if not 1 <= limit <= size:
        raise BadInput(
            f"--limit {limit} is outside the {size:,} training images of {name}; "
            f"pass 1 to {size}"
        )
    chosen = torch.from_numpy(np.random.RandomState(LIMIT_SEED).permutation(size))
    images, labels = train.tensors
    return TensorDataset(images[chosen[:limit]], labels[chosen[:limit]])


def _digits() -> tuple[TensorDataset, TensorDataset, tuple[str, ...]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = torch.from_numpy(bunch.images).float().unsqueeze(1) / 16
    grey = torch.nn.functional.interpolate(
        grey, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False
    )
    images = ((grey - DIGITS_MEAN) / DIGITS_STD).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(bunch.target).long()
    test = _stratified_test_indices(bunch.target, DIGITS_TEST_SHARE, SPLIT_SEED)
    is_test = torch.zeros(len(labels), dtype=torch.bool)
    is_test[torch.from_numpy(test)] = True
    return (
        TensorDataset(images[~is_test], labels[~is_test]),
        TensorDataset(images[is_test], labels[is_test]),
        tuple(str(digit) for digit in range(10)),
    )


def _stratified_test_indices(
    labels: np.ndarray, share: float, seed: int
) -> np.ndarray:
    """For each class, round(share x its count) of its indices, drawn at random."""
    draw = np.random.RandomState(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen.append(draw.permutation(members)[: round(share * len(members))])
    return np.sort(np.concatenate(chosen))


def _cifar10(
    data_dir: Path | None, download: bool
) -> tuple[TensorDataset, TensorDataset, tuple[str, ...]]:
    if data_dir is None:
        raise BadInput(
            f"cifar10 needs --data-dir: the folder that holds {CIFAR10_FOLDER} "
            "(add --download to fetch it there)"
        )
    root = data_dir.parent if data_dir.name == CIFAR10_FOLDER else data_dir
    if root.exists() and not root.is_dir():
        raise BadInput(f"{root}: is not a folder; pass the folder that holds "
                       f"{CIFAR10_FOLDER} with --data-dir")
    folder = root / CIFAR10_FOLDER
    if not download and not folder.is_dir():
        raise BadInput(
            f"no CIFAR-10 in {root} ({folder} does not exist); pass the folder "
            f"that holds {CIFAR10_FOLDER} with --data-dir, or add --download"
        )
    if download:
        try:
            _read_cifar10(root, train=True, download=True)
        except Exception as error:  # noqa: BLE001 (network, disk, archive)
            raise BadInput(
                f"downloading CIFAR-10 into {root} failed ({_one_line(error)}); "
                f"check the network, or put {CIFAR10_FOLDER} there and leave "
                "out --download"
            ) from None
    try:
        train = _read_cifar10(root, train=True)
        test = _read_cifar10(root, train=False)
    except Exception as error:  # noqa: BLE001 (any damage to the files)
        raise BadInput(
            f"CIFAR-10 in {folder} is incomplete or damaged ({_damage(root, error)});"
            " replace the folder, or delete it and run with --download"
        ) from None
    return _as_tensors(train), _as_tensors(test), tuple(train.classes)


def _read_cifar10(root: Path, train: bool, download: bool = False) -> CIFAR10:
    from torchvision.datasets import CIFAR10

    # torchvision prints what it downloads and verifies: only the CLI prints.
    with contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):  # fmt: skip
        return CIFAR10(root=str(root), train=train, download=download)


def _as_tensors(dataset: CIFAR10) -> TensorDataset:
    """The images as `ToTensor()` gives them (channels first, in [0, 1]),
    normalised per channel; the whole set at once."""
    pixels = torch.from_numpy(dataset.data).permute(0, 3, 1, 2)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    images = (pixels.float() / 255 - mean) / std
    labels = torch.tensor(dataset.targets, dtype=torch.long)
    return TensorDataset(images, labels)


def _damage(root: Path, error: Exception) -> str:
    """The first file torchvision's checksums reject, else the error."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import (  # type: ignore[import-untyped]
        check_integrity,
    )

    files = [*CIFAR10.train_list, *CIFAR10.test_list,
             [CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]  # fmt: skip
    for name, md5 in files:
        path = root / CIFAR10_FOLDER / name
        if not path.is_file():
            return f"{name} is missing"
        if not check_integrity(str(path), md5):
            return f"{name} fails its checksum"
    return _one_line(error)


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
