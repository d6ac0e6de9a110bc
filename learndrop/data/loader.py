"""A tiny in-memory loader, airbench-style: the data set is one tensor, batches are index slices.

The epoch's order comes from a generator seeded with ``(seed, epoch)`` alone, so a baseline and a
Learn&Drop run with the same seed see exactly the same batches, whatever else consumed random numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .datasets import ImageData

CROP_PADDING = 4  # px of zero padding (after normalisation) for the random crop


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, shuffle: bool = True) -> list[torch.Tensor]:
    """Index tensors of one epoch's batches (the last one may be short)."""
    if shuffle:
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(n, generator=gen)
    else:
        order = torch.arange(n)
    return list(order.split(batch_size))


def stream_chunks(labels: torch.Tensor, chunks: int, by: str = "order") -> list[torch.Tensor]:
    """Split the training set into ``chunks`` parts that arrive one after another.

    ``order``: consecutive slices of the training set; ``class``: whole classes per chunk (class-
    incremental), classes in index order. One chunk is the whole set.
    """
    n = len(labels)
    if chunks == 1:
        return [torch.arange(n)]
    if by == "order":
        return [c for c in torch.arange(n).tensor_split(chunks)]
    classes = torch.unique(labels).tolist()
    group = {c: j * chunks // len(classes) for j, c in enumerate(classes)}
    owner = torch.tensor([group[int(c)] for c in labels.tolist()])
    return [torch.nonzero(owner == k).flatten() for k in range(chunks)]


class Normalizer:
    """uint8 images -> float, ``(x - mean) / std`` per channel: the mean and std (in 0..1 units) the starting
    weights expect, or, without them, the training set's own."""

    def __init__(self, train_images: torch.Tensor, device: torch.device, channels_last: bool,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        if mean is None or std is None:
            sample = train_images[:10_000].float()
            mean_255 = sample.mean(dim=(0, 2, 3))
            std_255 = sample.std(dim=(0, 2, 3)).clamp_min(1.0)  # in 0..255 units
        else:
            mean_255, std_255 = 255.0 * torch.tensor(mean), 255.0 * torch.tensor(std)
        self.mean, self.std = (mean_255 / 255).tolist(), (std_255 / 255).tolist()  # what a run records
        self.scale = (1.0 / std_255).view(1, -1, 1, 1).to(device)
        self.shift = (-mean_255 / std_255).view(1, -1, 1, 1).to(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.addcmul(self.shift, images.float(), self.scale)
        return x.contiguous(memory_format=self.memory_format)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` (on the CPU) on ``device``: on CUDA through pinned memory without waiting for the GPU's queue
    (a pageable copy waits for every kernel queued before it); elsewhere as it is."""
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def augment(x: torch.Tensor, flip: bool, generator: torch.Generator,
            padding: int = CROP_PADDING) -> torch.Tensor:
    """Random crop with ``padding`` px of zero padding, and a random horizontal flip if ``flip``.

    Vectorised over the batch: each image gets its own offset through one gather. Also used on cached
    feature maps, with the padding scaled down by the prefix's stride.
    """
    b, c, h, w = x.shape
    p = padding
    padded = F.pad(x, (p, p, p, p))
    # the random numbers come from the CPU generator (the same on every device), sent in one copy
    dy = torch.randint(0, 2 * p + 1, (b, 1, 1), generator=generator)
    dx = torch.randint(0, 2 * p + 1, (b, 1, 1), generator=generator)
    mirror = (torch.rand(b, 1, 1, generator=generator) < 0.5) if flip else torch.zeros(b, 1, 1,
                                                                                       dtype=torch.bool)
    dy, dx, mirror = to_device(torch.stack([dy, dx, mirror.long()]), x.device)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + dy).expand(b, h, w)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + dx).expand(b, h, w)
    if flip:
        cols = torch.where(mirror.bool(), (2 * p + w - 1) - cols, cols)
    flat = (rows * (w + 2 * p) + cols).view(b, 1, h * w).expand(b, c, h * w)
    out = padded.flatten(2).gather(2, flat).view(b, c, h, w)
    return out.contiguous(memory_format=torch.channels_last
                          if x.is_contiguous(memory_format=torch.channels_last)
                          else torch.contiguous_format)


class ImageBatches:
    """Batches of a split: normalised (and, for training with ``augment``, augmented) images and labels."""

    def __init__(self, data: ImageData, normalizer: Normalizer, device: torch.device, augment: bool = False):
        self.images = data.images.to(device)  # uint8: 4x smaller than float on the device
        self.labels = data.labels.to(device)
        self.normalize = normalizer
        self.augment = augment
        self.flip = data.flip
        self.device = device

    def __len__(self) -> int:
        return len(self.labels)

    def get(self, idx: torch.Tensor,
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        idx = idx.to(self.device)
        x = self.normalize(self.images[idx])
        if self.augment and generator is not None:
            x = augment(x, self.flip, generator)
        return x, self.labels[idx]
