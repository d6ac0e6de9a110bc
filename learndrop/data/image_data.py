"""A split of a data set held in memory: uint8 images and their labels."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import LearnDropError


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
            raise LearnDropError(f"class index {max(keep)} out of range: this data set has "
                                 f"{len(self.classes)} classes", field="classes")
        lookup = torch.full((len(self.classes),), -1, dtype=torch.long)
        lookup[list(keep)] = torch.arange(len(keep))
        new = lookup[self.labels]
        mask = new >= 0
        return ImageData(self.images[mask], new[mask], tuple(self.classes[c] for c in keep), self.flip,
                         self.notes)
