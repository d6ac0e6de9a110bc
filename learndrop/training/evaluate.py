"""Evaluation of the full network (prefix + suffix), whatever is dropped: loss, accuracy, per class."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.loader import ImageBatches
from ..models import UnitNetwork
from .world import World

EVAL_BATCH = 512


@torch.no_grad()
def evaluate(model: UnitNetwork, batches: ImageBatches, use_amp: bool, world: World | None = None
             ) -> tuple[float, float, list[float]]:
    """Loss, accuracy and per-class accuracy of the full network on a split; data-parallel (``world``), each
    process evaluates its share and the sums are added up."""
    model.eval()
    world = world or World()
    n_classes = int(batches.labels.max()) + 1
    loss_sum = torch.zeros((), device=batches.device)
    hits = torch.zeros(n_classes, device=batches.device)
    counts = torch.zeros(n_classes, device=batches.device)
    width = n_classes  # the network's outputs
    for idx in world.rows(len(batches)).split(EVAL_BATCH):  # in order; data-parallel, this process's share
        x, y = batches.get(idx)
        with torch.autocast(batches.device.type, dtype=torch.bfloat16, enabled=use_amp):
            out = model(x)
        loss_sum += F.cross_entropy(out.float(), y, reduction="sum")
        hits.index_add_(0, y, (out.argmax(1) == y).float())
        counts.index_add_(0, y, torch.ones_like(y, dtype=torch.float))
        width = out.shape[1]
    if world.size > 1:
        total = world.sum(torch.cat([loss_sum.view(1), hits, counts]))
        loss_sum, hits, counts = total.split([1, n_classes, n_classes])
    n = len(batches)
    per_class = (hits / counts.clamp_min(1)).tolist()
    # last classes without test images (a folder's test/ may lack some)
    per_class += [0.0] * (width - n_classes)
    return float(loss_sum.sum()) / n, float(hits.sum()) / n, per_class
