"""Scaling the network down: freeze a prefix, take it out of the optimizer, keep its BatchNorm in eval
mode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..config import PolicyConfig
from ..errors import LearnDropError
from ..models import UnitNetwork


def param_groups(model: UnitNetwork) -> list[dict]:
    """One optimizer param group per unit and one for the head, each named by its module path."""
    groups = [{"name": name, "params": list(unit.parameters())} for name, unit in model.units()]
    groups.append({"name": model.head_name, "params": list(model.head_module().parameters())})
    return [g for g in groups if g["params"]]


def freeze_units(model: UnitNetwork, optimizer: torch.optim.Optimizer, names: Sequence[str]) -> None:
    """Stop learning in ``names``: no gradients, out of the optimizer (parameters and state), BN in eval mode.

    The parameters are found by identity in whatever param groups hold them. Taking them and their state out
    is what keeps momentum and weight decay from moving the weights on; ``requires_grad=False`` alone would
    not. A group left empty stays (an LR scheduler counts the groups), but for ``param_groups``' own group of
    a unit, which goes.
    """
    names = set(names)
    gone: set[int] = set()
    for name in names:
        unit = model.get_submodule(name)
        for p in unit.parameters():
            p.requires_grad_(False)
            p.grad = None
            optimizer.state.pop(p, None)
            gone.add(id(p))
        unit.eval()
    for group in optimizer.param_groups:
        group["params"] = [p for p in group["params"] if id(p) not in gone]
    optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]
                                 or g.get("name") not in names]


def check_optimizer(model: UnitNetwork, optimizer: torch.optim.Optimizer, policy: PolicyConfig) -> None:
    """Every unit's and the head's parameters in ``optimizer`` (in any of its groups), and a group per unit
    where ``policy`` scales each unit's learning rate; else one ``LearnDropError`` that says what to do."""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    for name in (*model.unit_names, model.head_name):
        params = list(model.get_submodule(name).parameters())
        if params and not any(id(p) in held for p in params):
            raise LearnDropError(f"the optimizer holds no parameter of {name}: build it over "
                                 "model.parameters() (or learndrop.param_groups(model)) after the model is "
                                 "made", field="model")
    scales = policy.name == "freezeout" or (policy.name == "learndrop" and policy.anneal)
    if scales and not unit_groups(model, optimizer):
        raise LearnDropError(f"{policy.name} scales each unit's learning rate: build the optimizer over "
                             "learndrop.param_groups(model) (one group per unit) and call ld.set_lr(lr, "
                             "progress) before each step", field="policy")


def head_group(model: UnitNetwork, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The param group that holds the head's parameters: its learning rate is the run's (never scaled)."""
    head = {id(p) for p in model.head_module().parameters()}
    return next((g for g in optimizer.param_groups if any(id(p) in head for p in g["params"])),
                optimizer.param_groups[-1])


def unit_groups(model: UnitNetwork, optimizer: torch.optim.Optimizer) -> bool:
    """Whether every unit has a param group of its own, named after it (``param_groups``): what scaling each
    unit's learning rate needs (FreezeOut, annealing)."""
    named = {g.get("name"): {id(p) for p in g["params"]} for g in optimizer.param_groups}
    for name, unit in model.units():
        params = {id(p) for p in unit.parameters()}
        if params and named.get(name) != params:
            return False
    return True


def set_train_mode(model: UnitNetwork, dropped: int, frozen: Sequence[str] = ()) -> None:
    """``model.train()`` for the units still learning; the dropped prefix and frozen units stay in eval."""
    model.train()
    for name in (*model.unit_names[:dropped], *frozen):
        model.get_submodule(name).eval()


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
