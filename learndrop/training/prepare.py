"""Everything a run needs before its first step: validated config, data in memory, the model (fresh,
pretrained, from a weights file, or taken from an earlier run for fine-tuning: ``training.finetune``) and the
input normalisation its weights expect."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import RunConfig
from ..data.datasets import ImageData, create_dataset
from ..data.loader import Normalizer
from ..errors import LearnDropError
from ..method.policy import initial_state
from ..method.registry import get_policy
from ..models import UnitNetwork, create_model
from ..models.weights import NORMALIZATIONS, Normalization, load_weights
from .device import resolve_device
from .finetune import Source, inherited_peaks, load_backbone
from .preflight import preflight


@dataclass
class Setup:
    device: torch.device
    train_data: ImageData
    test_data: ImageData
    model: UnitNetwork
    # fine-tuning: the source run's (finetune.py)
    inherited_peaks: dict[str, float] = field(default_factory=dict)
    val_data: ImageData | None = None  # held out from the training images (config.val_split); None: none
    normalization: Normalization = NORMALIZATIONS["dataset"]  # what the starting weights expect
    notes: list[str] = field(default_factory=list)  # what loading the weights had to say

    def normalizer(self, device: torch.device, channels_last: bool) -> Normalizer:
        """uint8 -> normalised float inputs, as the starting weights expect (or the training set's
        statistics)."""
        norm = self.normalization
        if norm.mean is None:
            return Normalizer(self.train_data.images, device, channels_last)
        return Normalizer(self.train_data.images, device, channels_last,
                          *norm.for_channels(self.train_data.channels))

    def peaks_in_unit_order(self) -> list[float] | None:
        """The inherited peaks, one per unit in forward order; None when the run has its own only."""
        return [self.inherited_peaks[n] for n in self.model.unit_names] if self.inherited_peaks else None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def prepare(config: RunConfig, data: tuple[ImageData, ImageData] | None = None, source: Source | None = None
            ) -> Setup:
    """Validate the config, load the data and build the model; ``LearnDropError`` on bad input.

    ``data`` reuses an already loaded (train, test) pair of ``config.dataset`` (the benchmark loads it once);
    ``source``: the run ``config.init_from`` names, as the run store read it (``runs.finetune.prepare_run``).
    """
    preflight(config)  # every check that needs no data, before the data load
    device = resolve_device(config.device)
    if data is None:
        train_data = create_dataset(config.dataset, config.data_root, True, config.download,
                                    config.image_size, config.subset)
        test_data = create_dataset(config.dataset, config.data_root, False, config.download, train_data.size)
    else:
        train_data, test_data = data
    if config.classes is not None:
        train_data = train_data.select_classes(config.classes)
        test_data = test_data.select_classes(config.classes)
    if len(train_data) == 0 or len(test_data) == 0:
        raise LearnDropError("no training or test images left after --subset / --classes")
    train_data, val_data = split_validation(train_data, config.val_split, config.batch_size)
    if config.batch_size > len(train_data):
        raise LearnDropError(f"batch size {config.batch_size} is larger than the training set "
                             f"({len(train_data)} images)", field="batch_size")
    if config.stream > len(train_data) // config.batch_size:
        raise LearnDropError(f"--stream {config.stream} leaves chunks smaller than one batch of "
                             f"{config.batch_size} ({len(train_data)} images)", field="stream")
    n_classes = len(set(train_data.labels.tolist()))
    if config.stream_by == "class" and config.stream > n_classes:
        raise LearnDropError(f"--stream {config.stream} by class needs at least that many classes; "
                             f"the training set has {n_classes}", field="stream")
    seed_everything(config.seed)
    model = create_model(config.model, len(train_data.classes), train_data.channels, train_data.size,
                         config.width, config.pretrained)
    peaks: dict[str, float] = {}
    notes = load_weights(model, config.weights) if config.weights else []
    if config.init_from:
        if source is None or source.run_id != config.init_from:
            raise LearnDropError(f"--init-from {config.init_from}: the run is read from a runs folder "
                                 "(runs.finetune.prepare_run)", field="init_from")
        load_backbone(model, config, source)
        if config.policy.inherit_peaks:
            peaks = inherited_peaks(source, config, list(model.unit_names), len(train_data) / config.stream)
    check_policy(config, model)
    normalization = input_normalization(config, model, source)
    return Setup(device, train_data, test_data, model, peaks, val_data, normalization, notes)


def input_normalization(config: RunConfig, model: UnitNetwork, source: Source | None) -> Normalization:
    """The normalisation ``config.normalize`` names, or for ``auto`` the one the starting weights were trained
    with: the pretrained network's own, ImageNet's for a weights file, the source run's for fine-tuning (the
    data's own where it recorded none), and the training set's own statistics from scratch."""
    if config.normalize != "auto":
        return NORMALIZATIONS[config.normalize]
    if model.normalization is not None:
        return NORMALIZATIONS[model.normalization]
    if config.weights:
        return NORMALIZATIONS["imagenet"]
    if source is not None:
        recorded = source.config.normalize
        return NORMALIZATIONS[recorded if recorded != "auto" else "dataset"]
    return NORMALIZATIONS["dataset"]


def check_policy(config: RunConfig, model: UnitNetwork) -> None:
    """What the policy would refuse once training began, refused now, before a run folder exists: its drops
    before any training (``freeze-first-k``'s k against the model's units) are pure, so they are made here on
    a throwaway state."""
    policy = get_policy(config.policy.name)
    try:
        policy.start(initial_state(model.unit_names), config.policy)
    except ValueError as exc:
        raise LearnDropError(str(exc), field="k" if config.policy.name == "freeze-first-k"
                             else "policy") from None


def split_validation(data: ImageData, n: int, batch_size: int) -> tuple[ImageData, ImageData | None]:
    """``n`` images held out of ``data`` as a validation split, the rest in their order: (train, val).

    The held-out images are a property of the data, not of the run: a permutation from a fixed seed (0),
    the same for every run seed and policy on the same (subset, classes) training set.
    """
    if n == 0:
        return data, None
    if len(data) - n < batch_size:
        raise LearnDropError(f"--val-split {n} leaves {max(0, len(data) - n)} of the {len(data)} training "
                             f"images, less than one batch of {batch_size}", field="val_split")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    val, train = order[:n].sort().values, order[n:].sort().values
    return (ImageData(data.images[train], data.labels[train], data.classes, data.flip, data.notes),
            ImageData(data.images[val], data.labels[val], data.classes, data.flip))  # notes: once, with train
