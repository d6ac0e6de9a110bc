"""Your own model (learndrop.units: the cut and its checks) and any torchvision CNN of a listed family:
built small, covered exactly, driven by the controller with a dropped prefix that stays bit-identical."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from helpers import slow_among
from torch import nn

import learndrop
from learndrop import LearnDropError
from learndrop.models import zoo

STEM = ("stem", ["conv1", "bn1", "relu", "maxpool"])
BLOCKS = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
HEAD = ["avgpool", nn.Flatten(1), "fc"]


def _resnet18() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=5)


def test_units_cuts_a_model_into_the_same_modules_and_computes_what_it_does():
    model, x = _resnet18(), torch.randn(2, 3, 32, 32)
    net = learndrop.units(model, [STEM, *BLOCKS], head=HEAD, example=x)
    assert net.unit_names == ("stem", *BLOCKS) and net.head_name == "head"
    assert net.get_submodule("layer2.1") is model.layer2[1]  # the same modules: training one trains the other
    assert {id(p) for p in net.parameters()} == {id(p) for p in model.parameters()}
    model.eval(), net.eval()
    assert torch.equal(net(x), model(x))
    head_module = nn.Sequential(model.avgpool, nn.Flatten(1), model.fc)  # or a module of your own
    assert learndrop.units(model, [STEM, *BLOCKS], head=head_module).head_module() is head_module


@pytest.mark.parametrize("specs, head, message", [
    ([STEM, *BLOCKS, "layer9"], HEAD, "'layer9' is no submodule of ResNet"),
    ([STEM, *BLOCKS[:-1]], HEAD, "parameters outside every unit and the head: layer4.1.conv1.weight"),
    ([STEM, *BLOCKS, "layer4"], HEAD, "units overlap: 'layer4.0' is inside 'layer4'"),
    ([STEM, *BLOCKS], [*HEAD, "fc"], "units overlap"),
    ([("layer1", ["conv1"]), "bn1", "relu", *BLOCKS], HEAD, "also a submodule"),
    ([], HEAD, "at least one unit"),
])
def test_a_bad_cut_is_one_clear_error(specs, head, message):
    with pytest.raises(LearnDropError, match=message.replace("(", r"\(")) as info:
        learndrop.units(_resnet18(), specs, head=head)
    assert info.value.field == "model"


def test_glue_left_out_of_the_head_is_caught_on_an_example():
    with pytest.raises(LearnDropError, match="does not run on the example"):  # no flatten before fc
        learndrop.units(_resnet18(), [STEM, *BLOCKS], head=["avgpool", "fc"], example=torch.randn(2, 3, 32, 32))


def test_create_model_builds_a_torchvision_cnn_for_the_data_sets_classes_and_channels():
    net = learndrop.create_model("torchvision:resnet18", num_classes=7, in_channels=1, image_size=28)
    assert net.unit_names[:2] == ("stem", "layer1.0") and net.head_name == "head"
    net.eval()
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 7)
    with pytest.raises(LearnDropError, match="no width multiplier"):
        learndrop.create_model("torchvision:resnet18", num_classes=7, width=0.5)


@pytest.mark.parametrize("name", ["nope", "vit_b_16", "googlenet", "vgg11"])
def test_an_unknown_or_uncuttable_torchvision_model_is_refused_with_the_reason(name):
    with pytest.raises(LearnDropError, match="no classification model|cannot be cut") as info:
        learndrop.create_model(f"torchvision:{name}", num_classes=10)
    assert info.value.field == "model"


def test_pretrained_without_internet_is_one_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torchvision.models, "get_model", offline)
    with pytest.raises(LearnDropError, match="no internet") as info:
        learndrop.create_model("torchvision:resnet34", num_classes=10, pretrained=True)
    assert info.value.field == "pretrained"


@pytest.mark.parametrize("family", slow_among(sorted(zoo.FAMILIES), {"convnext", "densenet", "efficientnet",
                                                                 "mobilenet_v2", "regnet"}))
def test_every_listed_family_builds_covers_and_trains_with_a_frozen_dropped_prefix(family):
    name = zoo.FAMILIES[family][1]
    torch.manual_seed(0)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    net = zoo.create_torchvision(f"torchvision:{name}", 4, 3, example=x)  # exactly covered, the same function
    optimizer = torch.optim.SGD(learndrop.param_groups(net), lr=0.01)
    eager = learndrop.PolicyConfig(tau=1.0, kappa=1e9, warmup=0, patience=1, window=1, paced=False)
    ld = learndrop.LearnDrop(net, optimizer, eager, input_shape=(3, 32, 32))
    for _ in range(3):  # one step per check until the eager policy drops a prefix
        ld.train_mode()
        loss = F.cross_entropy(ld.forward(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ld.step()
        if ld.check().decision.drops:
            break
    assert 0 < ld.dropped < len(net.unit_names)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    prefix = {n for k in range(ld.dropped) for n, _ in net.unit(k).named_parameters(prefix=net.unit_names[k])}
    ld.train_mode()
    loss = F.cross_entropy(ld.forward(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    after = dict(net.named_parameters())
    assert prefix and all(torch.equal(before[n], after[n]) for n in prefix)
    moved = [n for n in after if n not in prefix and not torch.equal(before[n], after[n])]
    assert any(n.startswith(net.head_name) for n in moved) and len(moved) > 1
    assert ld.flops.reduction_pct()[0] >= 0


def test_learndrop_models_lists_the_torchvision_families(capsys):
    from learndrop.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(f"torchvision:{smallest}" in out for _, smallest in zoo.FAMILIES.values())


@pytest.mark.parametrize("name", ["torchvision:nope", "torchvision:vit_b_16"])
def test_the_cli_answers_a_bad_torchvision_model_with_one_line_and_exit_2(name, tmp_path, capsys):
    from learndrop.cli import main

    assert main(["train", "--model", name, "--subset", "256", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: torchvision") and not list((tmp_path / "runs").glob("*/"))
