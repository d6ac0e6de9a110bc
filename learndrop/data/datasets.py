"""Data sets, held in memory as uint8 tensors: ``create_dataset(name, root, train, download)``.

``shapes`` is generated; MNIST, Fashion-MNIST, CIFAR-10 and Imagenette come through torchvision's own
data set classes (downloaded only when asked); ``folder:PATH`` reads any ImageFolder layout.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import LearnDropError
from .memory import check_fits
from .shapes import CLASSES as SHAPE_CLASSES
from .shapes import make_shapes

SHAPES_TRAIN, SHAPES_TEST = 10_000, 2_000  # images; the shapes sets are fixed (seeds 0 and 1), not per run
IMAGENETTE_SIZE = 64  # px default for Imagenette on a CPU; --image-size changes it


@dataclass(frozen=True)
class ImageData:
    """A split held in memory: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    flip: bool = True  # whether a horizontal flip keeps the class (not for digits)
    notes: tuple[str, ...] = ()  # what loading had to fix: resized or converted images, skipped files

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def size(self) -> int:
        return self.images.shape[-1]

    def subset(self, n: int) -> ImageData:
        return ImageData(self.images[:n], self.labels[:n], self.classes, self.flip, self.notes)

    def select_classes(self, keep: tuple[int, ...]) -> ImageData:
        """Only the images of classes ``keep``, relabelled 0..k-1 in that order."""
        if max(keep) >= len(self.classes):
            raise LearnDropError(f"class index {max(keep)} out of range: this data set has {len(self.classes)} "
                                 "classes", field="classes")
        lookup = torch.full((len(self.classes),), -1, dtype=torch.long)
        lookup[list(keep)] = torch.arange(len(keep))
        new = lookup[self.labels]
        mask = new >= 0
        return ImageData(self.images[mask], new[mask], tuple(self.classes[c] for c in keep), self.flip, self.notes)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    downloadable: bool


DATASETS = {
    "shapes": DatasetInfo("shapes", "synthetic shapes, 10 classes, 32 px RGB (generated, offline)", False),
    "mnist": DatasetInfo("mnist", "MNIST digits, 10 classes, 28 px gray (torchvision)", True),
    "fashion-mnist": DatasetInfo("fashion-mnist", "Fashion-MNIST, 10 classes, 28 px gray (torchvision)", True),
    "cifar10": DatasetInfo("cifar10", "CIFAR-10, 10 classes, 32 px RGB (torchvision)", True),
    "imagenette": DatasetInfo("imagenette", f"Imagenette, 10 ImageNet classes, {IMAGENETTE_SIZE} px by default "
                              "(torchvision)", True),
    "folder:PATH": DatasetInfo("folder:PATH", "any ImageFolder layout: PATH/train + PATH/test (or val), "
                               "or PATH/<class>/ with a seeded 10 % held out", False),
}


def list_datasets() -> list[DatasetInfo]:
    return list(DATASETS.values())


def create_dataset(name: str, root: str | Path = "data", train: bool = True, download: bool = False,
                   image_size: int | None = None, subset: int | None = None) -> ImageData:
    """Load one split of a data set into memory; ``LearnDropError`` with one line when it can't.

    ``subset`` keeps the first N images (of an image folder's fixed shuffled order, so classes mix).
    """
    if name.startswith("folder:"):
        data = _folder(Path(name[len("folder:"):]), train, image_size, subset)
    elif name == "shapes":
        images, labels = make_shapes(SHAPES_TRAIN if train else SHAPES_TEST, size=32, seed=0 if train else 1)
        data = ImageData(images, labels, SHAPE_CLASSES)
    elif name in ("mnist", "fashion-mnist"):
        cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
        ds = _torchvision(cls, name, root, download, train=train)
        data = ImageData(ds.data.unsqueeze(1).clone(), ds.targets.clone(), tuple(ds.classes), flip=name != "mnist")
    elif name == "cifar10":
        ds = _torchvision(torchvision.datasets.CIFAR10, name, root, download, train=train)
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        data = ImageData(images, torch.tensor(ds.targets), tuple(ds.classes))
    elif name == "imagenette":
        ds = _torchvision(torchvision.datasets.Imagenette, name, root, download,
                          split="train" if train else "val", size="160px")
        size = image_size or IMAGENETTE_SIZE
        check_fits(len(ds._samples), 3, size, name)
        images = _decode_all([p for p, _ in ds._samples], size, "RGB")[0]
        names = tuple(str(c[0]) if isinstance(c, tuple) else str(c) for c in ds.classes)
        data = ImageData(images, torch.tensor([t for _, t in ds._samples]), names)
    else:
        known = ", ".join(DATASETS)
        raise LearnDropError(f"unknown data set {name!r}; choose one of: {known}", field="dataset")
    if subset is not None and subset < len(data):
        data = data.subset(subset)
    if image_size is not None and data.size != image_size:
        check_fits(len(data), data.channels, image_size, name, bytes_per_value=4)  # resized as floats
        data = ImageData(_resize(data.images, image_size), data.labels, data.classes, data.flip, data.notes)
    return data


def _torchvision(cls: Callable, name: str, root: str | Path, download: bool, **kw):
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise LearnDropError(f"data root {str(root)!r} is a file, not a folder", field="data_root")
    if not download and not root.is_dir():
        raise LearnDropError(f"data root {str(root)!r} does not exist; point --data-root at the folder that "
                             f"holds {name}, or pass --download", field="data_root")
    try:
        return cls(root=str(root), download=download, **kw)
    except RuntimeError as exc:
        if "not found" in str(exc).lower():
            hint = "pass --download to fetch it" if not download else "the download did not complete"
            raise LearnDropError(f"no {name} under {str(root)!r}: {hint}", field="data_root") from exc
        raise LearnDropError(f"could not read {name} under {str(root)!r}: {exc}") from exc
    except (OSError, ValueError, IndexError) as exc:  # truncated/corrupt files, failed download
        raise LearnDropError(f"could not read {name} under {str(root)!r}: {type(exc).__name__}: {exc}") from exc


# --- image folders -----------------------------------------------------------------------------------

HELD_OUT = 0.1  # share of a folder without train/test split kept for testing
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # PIL modes of more than 8 bits per value


def _folder(path: Path, train: bool, image_size: int | None, subset: int | None) -> ImageData:
    if not path.is_dir():
        raise LearnDropError(f"image folder {str(path)!r} does not exist" if not path.exists()
                             else f"image folder {str(path)!r} is a file, not a folder", field="dataset")
    test_dir = next((path / d for d in ("test", "val") if (path / d).is_dir()), None)
    split_dir = path / "train" if train else test_dir
    notes = []
    classes: list[str] | None = None  # the training split's class folders: labels follow them, by name
    if (path / "train").is_dir() and split_dir is not None:
        if test_dir is not None:  # before any image is decoded
            classes, untested = _split_classes(path, test_dir)
            if not train and untested:
                notes.append(f"class folder(s) {_names(untested)} of train/ have no images in {test_dir.name}/: "
                             "their test accuracy is not measured")
        ds = _image_folder(split_dir)
        indices = np.random.default_rng(0).permutation(len(ds.samples)) if train else np.arange(len(ds.samples))
    else:  # one folder of classes: a seeded held-out split
        ds = _image_folder(path)
        order = np.random.default_rng(0).permutation(len(ds.samples))
        n_test = max(1, int(len(order) * HELD_OUT))
        indices = order[n_test:] if train else np.sort(order[:n_test])
    classes = classes or list(ds.classes)
    to_label = [classes.index(name) for name in ds.classes]  # the test split's index -> the training split's
    if train and subset is not None:
        indices = indices[:subset]
    size = image_size or _first_size(ds.samples[0][0])
    check_fits(len(indices), 3, size, f"image folder {str(path)!r}")
    images, resized, converted = _decode_all([ds.samples[i][0] for i in indices], size, "RGB")
    labels = torch.tensor([to_label[ds.samples[i][1]] for i in indices], dtype=torch.long)
    if resized:
        notes.append(f"{resized} of {len(indices)} images resized to {size}x{size} px")
    if converted:
        notes.append(f"{converted} grayscale or non-RGB images converted to RGB")
    skipped, hidden = _skipped(split_dir if split_dir is not None and (path / "train").is_dir() else path)
    if skipped:
        notes.append(f"{skipped} files that are not images were skipped")
    if hidden:
        notes.append(f"{hidden} hidden files or files in hidden folders (such as .ipynb_checkpoints) were skipped")
    return ImageData(images, labels, tuple(classes), notes=tuple(notes))


def _split_classes(path: Path, test_dir: Path) -> tuple[list[str], list[str]]:
    """The training split's class folders (sorted, as ImageFolder numbers them) and those the test split
    lacks (allowed: their accuracy is not measured). ``LearnDropError`` when the test split has a class
    folder the training split lacks: the model could never predict it."""
    train_classes, test_classes = _class_folders(path / "train"), _class_folders(test_dir)
    only_test = sorted(set(test_classes) - set(train_classes))
    only_train = sorted(set(train_classes) - set(test_classes))
    if only_test:
        differ = f"only in {test_dir.name}/: {_names(only_test)}"
        differ += f"; only in train/: {_names(only_train)}" if only_train else ""
        raise LearnDropError(f"image folder {str(path)!r}: the class folders of train/ and {test_dir.name}/ "
                             f"differ ({differ}); a model trained on train/ cannot predict a class it never "
                             f"saw: add it to train/ or remove it from {test_dir.name}/", field="dataset")
    return train_classes, only_train


def _class_folders(path: Path) -> list[str]:
    try:
        return _find_classes(str(path))[0]
    except OSError:
        return []  # no class folder at all: _image_folder says so


def _hidden(name: str) -> bool:
    """A name that tools keep for themselves: ``.ipynb_checkpoints``, ``.DS_Store``, ``.git``, ``__MACOSX``."""
    return name.startswith(".") or name == "__MACOSX"


def _find_classes(path: str) -> tuple[list[str], dict[str, int]]:
    """ImageFolder's classes, less the hidden folders (Jupyter's checkpoints, a Mac's resource forks): the
    data set's authors did not mean them as classes."""
    with os.scandir(path) as entries:
        classes = sorted(e.name for e in entries if e.is_dir() and not _hidden(e.name))
    if not classes:
        raise FileNotFoundError(f"no class folder in {path}")
    return classes, {name: i for i, name in enumerate(classes)}


class _Folder(torchvision.datasets.ImageFolder):
    """ImageFolder without what is hidden: no hidden class folder, no image in a hidden folder (a class's
    ``.ipynb_checkpoints/``) or hidden itself."""

    def __init__(self, root: str):
        top = Path(root)
        super().__init__(root, is_valid_file=lambda p: self.visible_image(top, p))

    @staticmethod
    def visible_image(top: Path, path: str) -> bool:
        hidden = any(_hidden(part) for part in Path(path).relative_to(top).parts)
        return not hidden and path.lower().endswith(torchvision.datasets.folder.IMG_EXTENSIONS)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        return _find_classes(directory)


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _skipped(path: Path) -> tuple[int, int]:
    """Files under ``path`` that are not read: those that are not images, and the hidden ones (in a hidden
    folder such as ``.ipynb_checkpoints``, or hidden themselves)."""
    allowed = torchvision.datasets.folder.IMG_EXTENSIONS
    files = [p for p in path.rglob("*") if p.is_file()]
    hidden = sum(1 for p in files if any(_hidden(part) for part in p.relative_to(path).parts))
    return sum(1 for p in files if not p.name.lower().endswith(allowed)), hidden


def _image_folder(path: Path) -> torchvision.datasets.ImageFolder:
    try:
        ds = _Folder(str(path))
    except (FileNotFoundError, OSError) as exc:
        raise LearnDropError(f"no images in {str(path)!r}: expected one sub-folder of images per class",
                             field="dataset") from exc
    if len(ds.classes) < 2:
        raise LearnDropError(f"{str(path)!r} has {len(ds.classes)} class folder(s); need at least 2", field="dataset")
    return ds


def _first_size(path: str) -> int:
    with _open(path) as im:
        return max(8, min(224, min(im.size)))


def _open(path: str) -> Image.Image:
    try:
        im = Image.open(path)
        im.load()
        return im
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise LearnDropError(f"corrupt or unreadable image {path!r}: {exc}") from exc


def _decode(path: str, size: int, mode: str) -> tuple[np.ndarray, bool, bool]:
    """The image as an array in ``mode`` and ``size``; whether it had to be resized, converted. Read as its
    authors meant it: turned upright as its EXIF orientation says, and 16-bit or 32-bit values scaled to
    8 bits (PIL's ``convert`` clips them at 255, so a 16-bit image turns solid white)."""
    im = ImageOps.exif_transpose(_open(path))
    converted = im.mode != mode
    im = im.convert(mode) if im.mode not in WIDE_MODES else _to_8_bits(im, path).convert(mode)
    resized = im.size != (size, size)
    if resized:
        im = im.resize((size, size), Image.BILINEAR)
    return np.asarray(im), resized, converted


def _to_8_bits(im: Image.Image, path: str) -> Image.Image:
    """A 16-bit (``I;16*``) or 32-bit integer (``I``: how PIL opens a 16-bit PNG) grayscale image scaled to
    8 bits: 0-65535 to 0-255. Float images (``F``) have no range to scale from: refused, the file named."""
    if im.mode == "F":
        raise LearnDropError(f"image {path!r} holds floating-point values (PIL mode F), whose range is not "
                             "known: save it as 8- or 16-bit")
    values = np.asarray(im).astype(np.float64)
    if values.min() < 0 or values.max() > 65535:
        raise LearnDropError(f"image {path!r} holds values outside 0-65535 (PIL mode {im.mode}): save it as 8- or "
                             "16-bit")
    return Image.fromarray(np.round(values / 257.0).astype(np.uint8), mode="L")


def _decode_all(paths: list[str], size: int, mode: str) -> tuple[torch.Tensor, int, int]:
    """Decode and resize every image (PIL releases the GIL, so threads help); counts resized, converted.
    When it stops early (a bad image, a signal), the images not yet begun are not decoded."""
    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        decoded = list(pool.map(lambda p: _decode(p, size, mode), paths))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    images = torch.from_numpy(np.stack([d[0] for d in decoded])).permute(0, 3, 1, 2).contiguous()
    return images, sum(d[1] for d in decoded), sum(d[2] for d in decoded)


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    out = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True,
                                          align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)
