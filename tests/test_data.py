"""The image sets `lrgen eval` trains on: the offline digits and CIFAR-10 read
from a folder in torchvision's layout."""

from __future__ import annotations

import hashlib
import math
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torchvision import transforms
from torchvision.datasets import CIFAR10

from lrgen.data import Data, load_data
from lrgen.generate import BadInput

DIGIT_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


@pytest.fixture(scope="module")
def digits() -> Data:
    return load_data("digits")


def test_digits_are_3x32x32_tensors_split_a_fifth_of_each_digit(digits: Data) -> None:
    assert digits.name == "digits"
    assert digits.classes == tuple("0123456789")
    images, labels = digits.train.tensors
    test_images, test_labels = digits.test.tensors
    assert images.shape == (1438, 3, 32, 32) and images.dtype == torch.float32
    assert test_images.shape == (359, 3, 32, 32)
    assert labels.dtype == torch.long
    train_counts = torch.bincount(labels, minlength=10).tolist()
    test_counts = torch.bincount(test_labels, minlength=10).tolist()
    assert [a + b for a, b in zip(train_counts, test_counts)] == DIGIT_COUNTS
    # round half to even: 36.6 -> 37, 34.8 -> 35, 36.0 -> 36
    assert test_counts == [round(0.2 * n) for n in DIGIT_COUNTS]
    assert test_counts == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]
    image, label = digits.train[0]
    assert image.shape == (3, 32, 32) and int(label) == int(labels[0])


def _bilinear_weights() -> np.ndarray:
    """8 -> 32 along one axis: half-pixel centres, the edges held; row i
    mixes the two source pixels nearest to (i + 0.5) / 4 - 0.5."""
    weights = np.zeros((32, 8))
    for i in range(32):
        source = max((i + 0.5) / 4 - 0.5, 0.0)
        low = int(math.floor(source))
        weights[i, low] += 1 - (source - low)
        weights[i, min(low + 1, 7)] += source - low
    return weights


def test_digits_are_sklearns_images_resized_and_normalised(digits: Data) -> None:
    bunch = load_digits()
    weights = _bilinear_weights()
    expected = weights @ (bunch.images / 16) @ weights.T
    expected = torch.from_numpy((expected - 0.3053) / 0.3236).float().reshape(1797, -1)
    images = torch.cat([digits.train.tensors[0], digits.test.tensors[0]])
    labels = torch.cat([digits.train.tensors[1], digits.test.tensors[1]])
    assert torch.equal(images[:, 0], images[:, 1])
    assert torch.equal(images[:, 0], images[:, 2])
    flat = images[:, 0].reshape(1797, -1)
    distance = (
        (flat**2).sum(1, keepdim=True) + (expected**2).sum(1) - 2 * flat @ expected.T
    )
    nearest = distance.argmin(1)
    # every source image is used exactly once, under its own label
    assert sorted(nearest.tolist()) == list(range(1797))
    assert torch.equal(labels, torch.from_numpy(bunch.target)[nearest])
    assert torch.allclose(flat, expected[nearest], atol=1e-5)
    # the fixed constants give mean 0 and deviation 1 over the whole set
    assert abs(float(images.mean())) < 1e-3
    assert abs(float(images.std()) - 1) < 1e-3


def test_digits_do_not_depend_on_the_global_random_state(digits: Data) -> None:
    np.random.seed(123)
    torch.manual_seed(123)
    again = load_data("digits", limit=100)
    for ours, theirs in zip(digits.test.tensors, again.test.tensors):
        assert torch.equal(ours, theirs)
    np.random.seed(7)
    assert torch.equal(
        again.train.tensors[0],
        load_data("digits", limit=100).train.tensors[0],
    )


def test_limit_is_a_prefix_of_one_fixed_permutation(digits: Data) -> None:
    small = load_data("digits", limit=64)
    large = load_data("digits", limit=500)
    assert len(small.train) == 64 and len(large.train) == 500
    for a, b in zip(small.train.tensors, large.train.tensors):
        assert torch.equal(a, b[:64])
    # drawn from the whole training set, the test set untouched
    full = {image.numpy().tobytes() for image in digits.train.tensors[0]}
    chosen = [image.numpy().tobytes() for image in large.train.tensors[0]]
    assert len(set(chosen)) == 500 and set(chosen) <= full
    assert len(set(large.train.tensors[1].tolist())) == 10
    assert torch.equal(small.test.tensors[0], digits.test.tensors[0])
    everything = load_data("digits", limit=1438)
    assert len(everything.train) == 1438


@pytest.mark.parametrize("limit", [0, -3, 1439])
def test_a_limit_outside_the_training_set_is_one_line(limit: int) -> None:
    with pytest.raises(BadInput) as refused:
        load_data("digits", limit=limit)
    assert str(refused.value) == (
        f"--limit {limit} is outside the 1,438 training images of digits; "
        "pass 1 to 1438"
    )


def test_an_unknown_dataset_names_the_known_ones() -> None:
    with pytest.raises(BadInput, match=r"^unknown dataset 'mnist'; choose one of "
                       r"digits, cifar10$"):
        load_data("mnist")


# ----------------------------------------------------------------------------
# CIFAR-10 from a folder in torchvision's layout (a small fake one).
# ----------------------------------------------------------------------------

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
         "ship", "truck"]  # fmt: skip
PER_BATCH = 4
TEST_IMAGES = 6


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def cifar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CIFAR-10 folder with 5 x 4 training and 6 test images, the md5 sums
    torchvision checks set to its files'."""
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    draw = np.random.RandomState(1)
    names = [f"data_batch_{n}" for n in range(1, 6)]
    for number, name in enumerate([*names, "test_batch"]):
        count = TEST_IMAGES if name == "test_batch" else PER_BATCH
        entry = {
            "batch_label": name,
            "data": draw.randint(0, 256, (count, 3072)).astype(np.uint8),
            "labels": [(number * 3 + i) % 10 for i in range(count)],
        }
        (folder / name).write_bytes(pickle.dumps(entry))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": NAMES}))
    monkeypatch.setattr(CIFAR10, "train_list", [[n, _md5(folder / n)] for n in names])
    monkeypatch.setattr(
        CIFAR10, "test_list", [["test_batch", _md5(folder / "test_batch")]]
    )
    monkeypatch.setitem(CIFAR10.meta, "md5", _md5(folder / "batches.meta"))
    return folder.parent


def _raw(folder: Path, name: str) -> dict[str, object]:
    loaded: dict[str, object] = pickle.loads((folder / name).read_bytes())
    return loaded


def test_cifar10_is_read_by_torchvision_and_normalised(cifar: Path) -> None:
    data = load_data("cifar10", cifar)
    assert data.name == "cifar10" and data.classes == tuple(NAMES)
    assert len(data.train) == 5 * PER_BATCH and len(data.test) == TEST_IMAGES
    # the item torchvision's own transforms make of the first test image
    raw = _raw(cifar / "cifar-10-batches-py", "test_batch")
    pixels = raw["data"][2].reshape(3, 32, 32).transpose(1, 2, 0)
    from PIL import Image

    expected = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    ])(Image.fromarray(pixels))  # fmt: skip
    image, label = data.test[2]
    assert torch.allclose(image, expected, atol=1e-6)
    assert int(label) == (5 * 3 + 2) % 10  # the sixth batch written, third image
    labels = [int(data.train[i][1]) for i in range(len(data.train))]
    assert labels == [(b * 3 + i) % 10 for b in range(5) for i in range(PER_BATCH)]


def test_cifar10_folder_itself_may_be_given(cifar: Path) -> None:
    data = load_data("cifar10", cifar / "cifar-10-batches-py", limit=5)
    assert len(data.train) == 5 and len(data.test) == TEST_IMAGES


def test_cifar10_missing_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as refused:
        load_data("cifar10", tmp_path / "nowhere")
    message = str(refused.value)
    assert "\n" not in message
    assert message == (
        f"no CIFAR-10 in {tmp_path / 'nowhere'} "
        f"({tmp_path / 'nowhere' / 'cifar-10-batches-py'} does not exist); pass the "
        "folder that holds cifar-10-batches-py with --data-dir, or add --download"
    )


def test_cifar10_without_a_folder_asks_for_one() -> None:
    with pytest.raises(BadInput, match=r"^cifar10 needs --data-dir: .*--download"):
        load_data("cifar10")


def test_cifar10_damaged_file_is_named(cifar: Path) -> None:
    batch = cifar / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(BadInput) as refused:
        load_data("cifar10", cifar)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"CIFAR-10 in {cifar / 'cifar-10-batches-py'} is "
                              "incomplete or damaged (data_batch_3 fails its checksum)")
    assert message.endswith("--download")


def test_cifar10_failed_download_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no route to host")

    import torchvision.datasets.cifar

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive",
                        offline)  # fmt: skip
    with pytest.raises(BadInput) as refused:
        load_data("cifar10", tmp_path / "data", download=True)
    assert str(refused.value) == (
        f"downloading CIFAR-10 into {tmp_path / 'data'} failed (URLError: <urlopen "
        "error no route to host>); check the network, or put cifar-10-batches-py "
        "there and leave out --download"
    )
