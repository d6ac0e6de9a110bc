"""timm:NAME (the optional timm extra): each class we cut builds, covers, computes what timm's model does,
and trains with a dropped prefix that stays bit-identical. Skipped without timm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import slow_among

import learndrop
from learndrop import LearnDropError
from learndrop.models.timm_models import CLASSES

timm = pytest.importorskip("timm")


@pytest.mark.parametrize("name", slow_among(sorted(CLASSES.values()), {"convnext_atto", "efficientnet_b0",
                                                                    "mobilenetv3_small_100"}))
def test_each_timm_class_we_cut_trains_with_a_frozen_prefix(name):
    torch.manual_seed(0)
    net = learndrop.create_model(f"timm:{name}", num_classes=4, in_channels=3, image_size=32)  # checked on an example
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    optimizer = torch.optim.SGD(learndrop.param_groups(net), lr=0.01)
    ld = learndrop.LearnDrop(net, optimizer, learndrop.PolicyConfig(tau=1.0, kappa=1e9, warmup=0, window=1, paced=False),
                             input_shape=(3, 32, 32))
    for _ in range(3):
        ld.train_mode()
        F.cross_entropy(ld.forward(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()
        ld.step()
        if ld.check().decision.drops:
            break
    assert 0 < ld.dropped < len(net.unit_names)
    prefix = [p for k in range(ld.dropped) for p in net.unit(k).parameters()]
    before = [p.detach().clone() for p in prefix]
    ld.train_mode()
    F.cross_entropy(ld.forward(x), y).backward()
    optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, prefix))


def test_an_unknown_or_uncut_timm_model_is_refused():
    with pytest.raises(LearnDropError, match="timm has no model"):
        learndrop.create_model("timm:no_such_net", num_classes=4)
    with pytest.raises(LearnDropError, match="cuts timm's"):
        learndrop.create_model("timm:vit_tiny_patch16_224", num_classes=4)
