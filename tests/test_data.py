"""Data: the shapes generator, the loader, and the real files in ../shared/data when present."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import ROOT, SHARED_DATA
from PIL import Image

from learndrop.data.datasets import create_dataset
from learndrop.data.loader import Normalizer, augment, epoch_batches
from learndrop.data.shapes import CLASSES, make_shapes
from learndrop.errors import LearnDropError

HAS_MNIST = (SHARED_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
HAS_CIFAR = (SHARED_DATA / "cifar10" / "test").is_dir()


def test_shapes_are_seeded_balanced_and_varied():
    a, la = make_shapes(200, seed=3)
    b, lb = make_shapes(200, seed=3)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert a.shape == (200, 3, 32, 32) and a.dtype == torch.uint8
    assert torch.bincount(la, minlength=10).tolist() == [20] * 10
    assert not torch.equal(make_shapes(200, seed=4)[0], a)
    assert len(CLASSES) == 10 and a.float().std() > 30


def test_epoch_batches_cover_every_index_once_and_depend_only_on_seed_and_epoch():
    batches = epoch_batches(103, 10, seed=1, epoch=2)
    assert sorted(torch.cat(batches).tolist()) == list(range(103)) and len(batches[-1]) == 3
    assert all(torch.equal(x, y) for x, y in zip(batches, epoch_batches(103, 10, seed=1, epoch=2)))
    assert not torch.equal(torch.cat(batches), torch.cat(epoch_batches(103, 10, seed=1, epoch=3)))


def test_normalizer_and_augmentation():
    images = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    norm = Normalizer(images, torch.device("cpu"), channels_last=True)
    x = norm(images)
    assert x.mean().abs() < 0.05 and (x.std() - 1).abs() < 0.05
    g = torch.Generator().manual_seed(0)
    y = augment(x, flip=True, generator=g)
    assert y.shape == x.shape
    # every augmented image is a 16x16 crop of its zero-padded source (4 px each side: offsets 0..8), or
    # of that padded source mirrored; find the crop, independently of augment's index arithmetic
    p = 4
    found = []
    for src, out in zip(x, y):
        padded = torch.nn.functional.pad(src, (p, p, p, p))
        matches = [(dy, dx, mirror) for mirror in (False, True) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                   if torch.equal((padded.flip(-1) if mirror else padded)[:, dy:dy + 16, dx:dx + 16], out)]
        assert matches, "an augmented image is no crop of its padded source"
        found.append(matches[0])
    # random per image: both mirrored and plain crops, many offsets, not the identity everywhere
    assert {m for _, _, m in found} == {False, True}
    assert len({(dy, dx) for dy, dx, _ in found}) >= 10 and not torch.equal(x, y)
    # without flip: plain crops only
    y2 = augment(x, flip=False, generator=torch.Generator().manual_seed(0))
    for src, out in zip(x[:8], y2[:8]):
        padded = torch.nn.functional.pad(src, (p, p, p, p))
        assert any(torch.equal(padded[:, dy:dy + 16, dx:dx + 16], out)
                   for dy in range(2 * p + 1) for dx in range(2 * p + 1))


def test_subset_keeps_the_first_images():
    full = create_dataset("shapes", train=True)
    part = create_dataset("shapes", train=True, subset=100)
    assert len(part) == 100 and torch.equal(part.images, full.images[:100])


def _write_folder(root, sizes_and_modes):
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i, (size, mode) in enumerate(sizes_and_modes):
            arr = np.random.default_rng(i).integers(0, 255, (size, size, 3 if mode == "RGB" else 1), dtype=np.uint8)
            Image.fromarray(arr.squeeze()).convert(mode).save(root / cls / f"{i}.png")


def test_image_folder_with_mixed_sizes_and_grayscale_is_resized_to_rgb(tmp_path):
    _write_folder(tmp_path / "imgs", [(20, "RGB"), (31, "L"), (16, "RGB")] * 4)
    train = create_dataset(f"folder:{tmp_path / 'imgs'}", train=True)
    test = create_dataset(f"folder:{tmp_path / 'imgs'}", train=False, image_size=train.size)
    assert train.classes == ("cat", "dog") and train.images.shape[1:] == (3, 20, 20)
    assert len(train) + len(test) == 24 and len(test) >= 1


def test_image_folder_images_are_the_files_pixels_with_their_class_labels(tmp_path):
    """No resize needed: each loaded image is exactly one file's pixels (grayscale: the value in all three
    channels), labelled with its folder's class."""
    files = {}  # pixels (C, H, W) as bytes -> class name
    for c, cls in enumerate(("cat", "dog")):
        (tmp_path / cls).mkdir()
        for i in range(6):
            rng = np.random.default_rng(10 * c + i)
            if i % 3 == 0:  # grayscale file
                gray = rng.integers(0, 256, (12, 12), dtype=np.uint8)
                Image.fromarray(gray, mode="L").save(tmp_path / cls / f"{i}.png")
                pixels = np.stack([gray] * 3)
            else:
                rgb = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
                Image.fromarray(rgb).save(tmp_path / cls / f"{i}.png")
                pixels = rgb.transpose(2, 0, 1)
            files[np.ascontiguousarray(pixels).tobytes()] = cls
    train = create_dataset(f"folder:{tmp_path}", train=True)
    test = create_dataset(f"folder:{tmp_path}", train=False)
    loaded = [(img, label) for data in (train, test) for img, label in zip(data.images, data.labels.tolist())]
    assert len(loaded) == 12 and train.images.shape[1:] == (3, 12, 12)
    seen = set()
    for img, label in loaded:
        key = img.numpy().tobytes()
        assert key in files, "a loaded image differs from every file's pixels"
        assert train.classes[label] == files[key]
        seen.add(key)
    assert seen == set(files)  # each file once, across the two splits


def test_image_folder_errors_are_clear(tmp_path):
    (tmp_path / "one" / "only").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "one" / "only" / "a.png")
    with pytest.raises(LearnDropError, match="need at least 2"):
        create_dataset(f"folder:{tmp_path / 'one'}")
    _write_folder(tmp_path / "bad", [(16, "RGB")] * 3)
    good = (tmp_path / "bad" / "cat" / "0.png").read_bytes()
    (tmp_path / "bad" / "cat" / "broken.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(LearnDropError, match="corrupt or unreadable image"):
        create_dataset(f"folder:{tmp_path / 'bad'}")


@pytest.mark.skipif(not HAS_MNIST, reason="../shared/data/MNIST not present")
def test_real_mnist_files():
    train = create_dataset("mnist", SHARED_DATA, train=True)
    test = create_dataset("mnist", SHARED_DATA, train=False)
    assert train.images.shape == (60_000, 1, 28, 28) and len(test) == 10_000 and not train.flip


@pytest.mark.skipif(not HAS_CIFAR, reason="../shared/data/cifar10 not present")
def test_real_cifar10_folder_subset():
    train = create_dataset(f"folder:{SHARED_DATA / 'cifar10'}", train=True, subset=500)
    assert train.images.shape == (500, 3, 32, 32) and len(train.classes) == 10
    assert len(set(train.labels.tolist())) == 10  # the fixed shuffled order mixes classes


@pytest.mark.slow  # the CLI in a subprocess, training on real MNIST
@pytest.mark.skipif(not HAS_MNIST, reason="../shared/data/MNIST not present")
def test_cli_trains_vgg11_on_real_mnist(tmp_path):
    result = subprocess.run([sys.executable, "-m", "learndrop", "train", "--dataset", "mnist", "--data-root",
                             str(SHARED_DATA), "--model", "vgg11", "--width", "0.25", "--epochs", "1", "--subset",
                             "2000", "--runs-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "test accuracy" in result.stdout


def _images(folder, n=3, size=12):
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((size, size, 3), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")


def test_test_split_labels_follow_the_training_split_class_names(tmp_path):
    """train/ a, b, c; test/ a, c: ImageFolder alone would number test's c as 1 (b); it must stay 2."""
    for split, classes in (("train", "abc"), ("test", "ac")):
        for c in classes:
            _images(tmp_path / split / c)
    test = create_dataset(f"folder:{tmp_path}", train=False)
    train = create_dataset(f"folder:{tmp_path}", train=True)
    assert test.classes == train.classes == ("a", "b", "c")
    assert sorted(test.labels.tolist()) == [0, 0, 0, 2, 2, 2]
    assert any("'b' of train/ have no images in test/" in note for note in test.notes)
    assert not any("have no images" in note for note in train.notes)


@pytest.mark.parametrize("split", [True, False])
def test_test_split_with_an_extra_class_is_refused_for_either_split(tmp_path, split):
    """Refused whichever split is loaded first, before any image is decoded; both differences named."""
    for name, classes in (("train", "abd"), ("val", "abc")):
        for c in classes:
            _images(tmp_path / name / c)
    with pytest.raises(LearnDropError, match=r"differ \(only in val/: 'c'; only in train/: 'd'\)"):
        create_dataset(f"folder:{tmp_path}", train=split)
