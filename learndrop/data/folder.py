"""Any image folder in ImageFolder layout: ``PATH/train`` + ``PATH/test`` (or ``val``), or ``PATH/<class>/``
with a seeded 10 % held out for testing. Test labels follow the training split's class names; hidden folders
and files that are no images are skipped, and the run says so."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torchvision

from ..errors import LearnDropError
from .decode import decode_all, first_size
from .image_data import ImageData
from .memory import check_fits

HELD_OUT = 0.1  # share of a folder without train/test split kept for testing


def read_folder(path: Path, train: bool, image_size: int | None, subset: int | None) -> ImageData:
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
                notes.append(f"class folder(s) {_names(untested)} of train/ have no images in "
                             f"{test_dir.name}/: their test accuracy is not measured")
        ds = _image_folder(split_dir)
        indices = (np.random.default_rng(0).permutation(len(ds.samples)) if train
                   else np.arange(len(ds.samples)))
    else:  # one folder of classes: a seeded held-out split
        ds = _image_folder(path)
        order = np.random.default_rng(0).permutation(len(ds.samples))
        n_test = max(1, int(len(order) * HELD_OUT))
        indices = order[n_test:] if train else np.sort(order[:n_test])
    classes = classes or list(ds.classes)
    to_label = [classes.index(name) for name in ds.classes]  # the test split's index -> the training split's
    if train and subset is not None:
        indices = indices[:subset]
    size = image_size or first_size(ds.samples[0][0])
    check_fits(len(indices), 3, size, f"image folder {str(path)!r}")
    images, resized, converted = decode_all([ds.samples[i][0] for i in indices], size, "RGB")
    labels = torch.tensor([to_label[ds.samples[i][1]] for i in indices], dtype=torch.long)
    if resized:
        notes.append(f"{resized} of {len(indices)} images resized to {size}x{size} px")
    if converted:
        notes.append(f"{converted} grayscale or non-RGB images converted to RGB")
    skipped, hidden = _skipped(split_dir if split_dir is not None and (path / "train").is_dir() else path)
    if skipped:
        notes.append(f"{skipped} files that are not images were skipped")
    if hidden:
        notes.append(f"{hidden} hidden files or files in hidden folders (such as .ipynb_checkpoints) were "
                     "skipped")
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
    """A name that tools keep for themselves: ``.ipynb_checkpoints``, ``.DS_Store``, ``.git``,
    ``__MACOSX``."""
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
        raise LearnDropError(f"{str(path)!r} has {len(ds.classes)} class folder(s); need at least 2",
                             field="dataset")
    return ds
