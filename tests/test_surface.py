"""Learn&Drop in three lines of anyone's loop: ``LearnDrop(model, optimizer)``, ``ld.step()``, ``ld.check()``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import learndrop
from learndrop import events as ev
from learndrop.data.shapes import make_shapes

# s <= 1 always: all drop at check 2 (unpaced: the pace's times are test_pace's)
EVERY_UNIT = learndrop.PolicyConfig(tau=1.0, kappa=1e9, warmup=0, window=1, paced=False)


def shapes_loader(n: int = 256) -> DataLoader:
    images, labels = make_shapes(n, seed=0)
    return DataLoader(TensorDataset(images.float() / 255, labels), batch_size=32, shuffle=True,
                      generator=torch.Generator().manual_seed(0))


@pytest.mark.slow  # over 5 s: trains a network in-process
def test_three_lines_in_a_plain_loop_with_adamw_over_model_parameters_drop_units_for_good():
    torch.manual_seed(0)
    model = learndrop.create_model("tiny", 10, 3, 32, width=0.5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = shapes_loader()
    ld = learndrop.LearnDrop(model, optimizer, EVERY_UNIT)  # line 1
    dropped_at = {}  # the dropped units' weights and BatchNorm statistics, right after their drop
    for epoch in range(4):
        model.train()
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            ld.step()  # line 2
        result = ld.check()  # line 3
        if result.drops and not dropped_at:
            dropped_at = {(k, key): t.clone() for k in range(ld.dropped)
                          for key, t in model.unit(k).state_dict().items()}
            frozen = [p for k in range(ld.dropped) for p in model.unit(k).parameters()]
    assert ld.dropped == len(model.unit_names) - 1  # every unit but the last before the head
    assert dropped_at, "the units dropped at a check"
    for (k, key), before in dropped_at.items():  # not moved since
        assert torch.equal(model.unit(k).state_dict()[key], before), (k, key)
    held = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert not any(id(p) in held or p in optimizer.state or p.requires_grad for p in frozen)
    assert len(optimizer.param_groups) == 1  # the user's one group stays (an LR scheduler counts them)
    fwd_saved, train_saved = ld.flops.reduction_pct()
    assert train_saved > 0  # no backward through the dropped units
    assert fwd_saved == 0  # without the cache (data in memory) they still run forward on every batch


@pytest.mark.slow  # over 5 s: trains a network in-process
def test_an_uncut_torchvision_cnn_is_cut_and_its_own_forward_keeps_the_dropped_batchnorm_in_eval():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    ld = learndrop.LearnDrop(model, optimizer, EVERY_UNIT)
    assert ld.names[0] == "stem" and ld.names[1] == "layer1.0"
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    for _ in range(2):
        model.train()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()
        ld.step()
        ld.check()
    assert ld.dropped == len(ld.names) - 1
    stats = model.bn1.running_mean.clone()
    model.train()  # the loop's own call: the hooks keep the dropped stem's BatchNorm in eval when it runs
    out = model(x)
    assert not model.bn1.training and torch.equal(model.bn1.running_mean, stats)
    assert out.requires_grad and not model.conv1.weight.requires_grad


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.b(self.a(x))


def test_what_is_wrong_at_construction_is_one_learndrop_error_that_says_what_to_do():
    with pytest.raises(learndrop.LearnDropError, match=r"learndrop\.units"):
        learndrop.LearnDrop(Plain(), torch.optim.SGD(Plain().parameters(), lr=0.1))
    model = learndrop.create_model("tiny", 10, 3, 32, width=0.5)
    with pytest.raises(learndrop.LearnDropError, match="holds no parameter of features.0"):
        learndrop.LearnDrop(model, torch.optim.SGD(list(model.parameters())[4:], lr=0.1))
    with pytest.raises(learndrop.LearnDropError, match="param_groups"):
        learndrop.LearnDrop(model, torch.optim.SGD(model.parameters(), lr=0.1), learndrop.PolicyConfig(name="freezeout"),
                            total_steps=10)
    with pytest.raises(learndrop.LearnDropError, match="has no labels, get"):
        learndrop.LearnDrop(model, torch.optim.SGD(model.parameters(), lr=0.1), data=torch.zeros(3))
    with pytest.raises(learndrop.LearnDropError, match="probe"):
        learndrop.LearnDrop(model, torch.optim.SGD(model.parameters(), lr=0.1), learndrop.PolicyConfig(measure="function"))
    schedule = learndrop.LearnDrop(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                   learndrop.PolicyConfig(name="schedule"), input_shape=(3, 32, 32))
    with pytest.raises(learndrop.LearnDropError, match="total_steps"):
        schedule.check()


def test_check_returns_typed_events_in_order():
    torch.manual_seed(0)
    model = learndrop.create_model("tiny", 10, 3, 32, width=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    ld = learndrop.LearnDrop(model, optimizer, EVERY_UNIT)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    kinds = []
    for _ in range(2):
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        ld.step()
        kinds.append([type(e) for e in ld.check().events])
    assert kinds[0] == [ev.UnitScores]
    assert kinds[1] == [ev.UnitScores] + [ev.UnitDropped] * (len(model.unit_names) - 1)
