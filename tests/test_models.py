"""Every registered model builds, trains a step, and its units plus head own each parameter once."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from helpers import slow_among

from learndrop.errors import LearnDropError
from learndrop.models import create_model, list_models, model_info


@pytest.mark.parametrize("name", slow_among(list_models(), {"resnet152"}))
def test_model_builds_steps_and_units_cover_parameters(name):
    model = create_model(name, num_classes=7, in_channels=3, image_size=32)
    owners = {}
    for part in (*model.unit_names, model.head_name):
        for p in model.get_submodule(part).parameters():
            assert id(p) not in owners, f"{part} shares a parameter with {owners.get(id(p))}"
            owners[id(p)] = part
    assert set(owners) == {id(p) for p in model.parameters()}
    # the description the CLI lists states the unit count: it must be this model's
    stated = re.search(r"\b(\d+) units\b", model_info(name).description)
    assert stated and int(stated.group(1)) == len(model.unit_names), model_info(name).description
    # the unit names are real module paths, in forward order: running them in turn is the model
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model.head_module()(model.forward_units(x, 0)))
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(x), torch.tensor([0, 6]))
    loss.backward()
    opt.step()
    assert model(x).shape == (2, 7)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("name", ["tiny", "vgg11", "resnet20"])
def test_grayscale_28px_input(name):
    model = create_model(name, num_classes=10, in_channels=1, image_size=28, width=0.25)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_width_scales_channels():
    narrow = create_model("vgg11", 10, width=0.25)
    full = create_model("vgg11", 10)
    assert narrow.unit(0)[0].out_channels == 16 and full.unit(0)[0].out_channels == 64


def test_unknown_model_and_impossible_width_are_clear_errors():
    with pytest.raises(LearnDropError, match="unknown model 'vgg13'"):
        create_model("vgg13", 10)
    with pytest.raises(LearnDropError, match="no channels"):
        create_model("vgg11", 10, width=0.001)
    with pytest.raises(LearnDropError, match="no width multiplier"):
        create_model("resnet18", 10, width=0.5)
    with pytest.raises(LearnDropError, match="no pretrained"):
        create_model("resnet20", 10, pretrained=True)


def test_model_info_lists_every_model():
    for name in list_models():
        # the factory's docstring, not the fallback to its name: a sentence that states the unit count
        description = model_info(name).description
        assert description != name and re.search(r"\b\d+ units\b", description), (name, description)
    assert {"tiny", "vgg11", "vgg16", "resnet18", "resnet50", "resnet152", "resnet20", "resnet56"} <= set(list_models())
