"""Everything a run needs before its first step: data in memory, the model (fresh, pretrained or taken
from an earlier run for fine-tuning), and the full-network evaluation."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .config import RunConfig
from .data import ImageData, create_dataset
from .device import resolve_device
from .errors import LearnDropError
from .loader import ImageBatches, epoch_batches
from .models import UnitNetwork, create_model
from .runs import RunStore

EVAL_BATCH = 512


@dataclass
class Setup:
    device: torch.device
    train_data: ImageData
    test_data: ImageData
    model: UnitNetwork


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def prepare(config: RunConfig, store: RunStore | None = None, data: tuple[ImageData, ImageData] | None = None
            ) -> Setup:
    """Validate the config, load the data and build the model; ``LearnDropError`` on bad input.

    ``store`` is where ``config.init_from`` is looked up (default: the default runs folder); ``data``
    reuses an already loaded (train, test) pair of ``config.dataset`` (the benchmark loads it once).
    """
    config.validate()
    device = resolve_device(config.device)
    if data is None:
        train_data = create_dataset(config.dataset, config.data_root, True, config.download, config.image_size,
                                    config.subset)
        test_data = create_dataset(config.dataset, config.data_root, False, config.download, train_data.size)
    else:
        train_data, test_data = data
    if config.classes is not None:
        train_data, test_data = train_data.select_classes(config.classes), test_data.select_classes(config.classes)
    if len(train_data) == 0 or len(test_data) == 0:
        raise LearnDropError("no training or test images left after --subset / --classes")
    if config.batch_size > len(train_data):
        raise LearnDropError(f"batch size {config.batch_size} is larger than the training set "
                             f"({len(train_data)} images)")
    if config.stream > len(train_data) // config.batch_size:
        raise LearnDropError(f"--stream {config.stream} leaves chunks smaller than one batch of "
                             f"{config.batch_size} ({len(train_data)} images)")
    n_classes = len(set(train_data.labels.tolist()))
    if config.stream_by == "class" and config.stream > n_classes:
        raise LearnDropError(f"--stream {config.stream} by class needs at least that many classes; "
                             f"the training set has {n_classes}")
    seed_everything(config.seed)
    model = create_model(config.model, len(train_data.classes), train_data.channels, train_data.size,
                         config.width, config.pretrained)
    if config.init_from:
        load_backbone(model, config, store or RunStore())
    return Setup(device, train_data, test_data, model)


def load_backbone(model: UnitNetwork, config: RunConfig, store: RunStore) -> None:
    """Fine-tuning: take every unit's weights from an earlier run; the head stays new (new classes)."""
    source = store.config(config.init_from)
    if (source.model, source.width) != (config.model, config.width):
        raise LearnDropError(f"--init-from {config.init_from}: that run trained {source.model} at width "
                             f"{source.width:g}, this one asks for {config.model} at width {config.width:g}")
    state = store.model_state(config.init_from)
    head = model.head_name + "."
    backbone = {k: v for k, v in state.items() if not k.startswith(head)}
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(head)}
    if set(backbone) != set(own) or any(backbone[k].shape != own[k].shape for k in own):
        raise LearnDropError(f"--init-from {config.init_from}: its saved model does not fit this network "
                             "(different input channels or image size?)")
    model.load_state_dict(backbone, strict=False)


@torch.no_grad()
def evaluate(model: UnitNetwork, batches: ImageBatches, use_amp: bool) -> tuple[float, float, list[float]]:
    """Loss, accuracy and per-class accuracy of the full network on a split."""
    model.eval()
    n_classes = int(batches.labels.max()) + 1
    loss_sum = torch.zeros((), device=batches.device)
    hits = torch.zeros(n_classes, device=batches.device)
    counts = torch.zeros(n_classes, device=batches.device)
    for idx in epoch_batches(len(batches), EVAL_BATCH, 0, 0, shuffle=False):
        x, y = batches.get(idx)
        with torch.autocast(batches.device.type, dtype=torch.bfloat16, enabled=use_amp):
            out = model(x)
        loss_sum += F.cross_entropy(out.float(), y, reduction="sum")
        hits.index_add_(0, y, (out.argmax(1) == y).float())
        counts.index_add_(0, y, torch.ones_like(y, dtype=torch.float))
    n = len(batches)
    per_class = (hits / counts.clamp_min(1)).tolist()
    return float(loss_sum) / n, float(hits.sum()) / n, per_class
