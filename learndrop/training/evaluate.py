"""Evaluation of the full network (prefix + suffix), whatever is dropped: loss, accuracy, per class."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.loader import ImageBatches, epoch_batches
from ..models import UnitNetwork

EVAL_BATCH = 512


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
    per_class += [0.0] * (out.shape[1] - n_classes)  # last classes without test images (a folder's test/ may lack some)
    return float(loss_sum) / n, float(hits.sum()) / n, per_class
