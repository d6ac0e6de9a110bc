"""Data sets, held in memory as uint8 tensors: ``create_dataset(name, root, train, download)``.

``shapes`` is generated; MNIST, Fashion-MNIST, CIFAR-10 and Imagenette come through torchvision's own
data set classes (downloaded only when asked); ``folder:PATH`` reads any ImageFolder layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision

from ..errors import LearnDropError
from .decode import decode_all, resize
from .folder import read_folder
from .image_data import ImageData
from .memory import check_fits
from .shapes import CLASSES as SHAPE_CLASSES
from .shapes import make_shapes

SHAPES_TRAIN, SHAPES_TEST = 10_000, 2_000  # images; the shapes sets are fixed (seeds 0 and 1), not per run
IMAGENETTE_SIZE = 64  # px default for Imagenette on a CPU; --image-size changes it


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    downloadable: bool


DATASETS = {
    "shapes": DatasetInfo("shapes", "synthetic shapes, 10 classes, 32 px RGB (generated, offline)", False),
    "mnist": DatasetInfo("mnist", "MNIST digits, 10 classes, 28 px gray (torchvision)", True),
    "fashion-mnist": DatasetInfo("fashion-mnist", "Fashion-MNIST, 10 classes, 28 px gray (torchvision)",
                                 True),
    "cifar10": DatasetInfo("cifar10", "CIFAR-10, 10 classes, 32 px RGB (torchvision)", True),
    "imagenette": DatasetInfo("imagenette", f"Imagenette, 10 ImageNet classes, {IMAGENETTE_SIZE} px by "
                              "default (torchvision)", True),
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
        data = read_folder(Path(name[len("folder:"):]), train, image_size, subset)
    elif name == "shapes":
        images, labels = make_shapes(SHAPES_TRAIN if train else SHAPES_TEST, size=32, seed=0 if train else 1)
        data = ImageData(images, labels, SHAPE_CLASSES)
    elif name in ("mnist", "fashion-mnist"):
        cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
        ds = _torchvision(cls, name, root, download, train=train)
        data = ImageData(ds.data.unsqueeze(1).clone(), ds.targets.clone(), tuple(ds.classes),
                         flip=name != "mnist")
    elif name == "cifar10":
        ds = _torchvision(torchvision.datasets.CIFAR10, name, root, download, train=train)
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        data = ImageData(images, torch.tensor(ds.targets), tuple(ds.classes))
    elif name == "imagenette":
        ds = _torchvision(torchvision.datasets.Imagenette, name, root, download,
                          split="train" if train else "val", size="160px")
        size = image_size or IMAGENETTE_SIZE
        check_fits(len(ds._samples), 3, size, name)
        images = decode_all([p for p, _ in ds._samples], size, "RGB")[0]
        names = tuple(str(c[0]) if isinstance(c, tuple) else str(c) for c in ds.classes)
        data = ImageData(images, torch.tensor([t for _, t in ds._samples]), names)
    else:
        known = ", ".join(DATASETS)
        raise LearnDropError(f"unknown data set {name!r}; choose one of: {known}", field="dataset")
    if subset is not None and subset < len(data):
        data = data.subset(subset)
    if image_size is not None and data.size != image_size:
        check_fits(len(data), data.channels, image_size, name, bytes_per_value=4)  # resized as floats
        data = ImageData(resize(data.images, image_size), data.labels, data.classes, data.flip, data.notes)
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
        raise LearnDropError(f"could not read {name} under {str(root)!r}: {type(exc).__name__}: "
                             f"{exc}") from exc
