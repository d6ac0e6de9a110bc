"""Your own model as a ``UnitNetwork``: name its units and its head, ``learndrop.units`` checks the cut.

``units(model, ["stem", "layer1.0", ...], head="fc")`` returns a ``UnitNetwork`` that holds the very
modules of ``model`` (the same parameters: training one trains the other) and that the controller
can drive. The model must compute ``head(unit_n(...unit_1(x)))``: each unit takes exactly the output
of the one before it, and nothing runs between them. Glue that ``model.forward`` does in-line (a
``torch.flatten`` before the classifier, a residual added around several units) is not a module, so
it must become part of a unit or of the head: pass the head as a list (``["avgpool", nn.Flatten(1),
"fc"]``, names and modules run in that order) or as an ``nn.Module`` of your own.

A unit is a module path (``"layer1.0"``) or a ``(name, [paths])`` pair that groups several submodules,
run in that order, into one unit (``("stem", ["conv1", "bn1", "relu", "maxpool"])``). Every parameter
of ``model`` must belong to exactly one unit or the head; a name that is no submodule, a unit inside
another, or parameters outside every unit and the head is a ``LearnDropError`` saying which. Give
``example`` (an input batch) to also check, in eval mode, that the cut computes what ``model`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import LearnDropError
from .network import UnitNetwork

UnitSpec = str | tuple[str, Sequence[str]]
HeadSpec = str | nn.Module | Sequence[str | nn.Module]


def _get(model: nn.Module, path: str, what: str) -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        top = ", ".join(name for name, _ in model.named_children())
        raise LearnDropError(f"{what} {path!r} is no submodule of {type(model).__name__} "
                             f"(its children: {top})",
                             field="model") from None


def _paths(spec: UnitSpec) -> list[str]:
    return [spec] if isinstance(spec, str) else list(spec[1])


def _check_paths(paths: list[tuple[str, str]]) -> None:
    """No path listed twice, none inside another (``layer1`` and ``layer1.0``)."""
    for i, (a, owner_a) in enumerate(paths):
        for b, owner_b in paths[i + 1:]:
            if a == b or b.startswith(a + ".") or a.startswith(b + "."):
                inner, outer = (b, a) if b.startswith(a + ".") else (a, b)
                where = f"{owner_a} and {owner_b}" if owner_a != owner_b else owner_a
                raise LearnDropError(f"units overlap: {inner!r} is inside {outer!r} ({where}); each module "
                                     "belongs to one unit or the head", field="model")


def units(model: nn.Module, unit_specs: Sequence[UnitSpec], head: HeadSpec, *,
          example: torch.Tensor | None = None) -> UnitNetwork:
    """``model`` cut into ``unit_specs`` (forward order) and ``head``, as a ``UnitNetwork``."""
    if not unit_specs:
        raise LearnDropError("a model needs at least one unit before its head", field="model")
    unit_names = [spec if isinstance(spec, str) else spec[0] for spec in unit_specs]
    if len(set(unit_names)) != len(unit_names):
        raise LearnDropError(f"unit names repeat: {unit_names}", field="model")
    listed = [(p, name) for spec, name in zip(unit_specs, unit_names) for p in _paths(spec)]
    head_parts = [head] if isinstance(head, (str, nn.Module)) else list(head)
    listed += [(p, "the head") for p in head_parts if isinstance(p, str)]
    modules = {p: _get(model, p, "unit" if owner != "the head" else "head") for p, owner in listed}
    _check_paths(listed)
    _check_coverage(model, listed, [p for p in head_parts if isinstance(p, nn.Module)])

    tops = {p.split(".")[0] for spec in unit_specs if isinstance(spec, str) for p in [spec]}
    tops |= {head.split(".")[0]} if isinstance(head, str) else set()
    grouped = [name for spec, name in zip(unit_specs, unit_names) if not isinstance(spec, str)]
    grouped += [] if isinstance(head, str) else ["head"]
    clash = [n for n in grouped if n in tops]
    if clash:
        raise LearnDropError(f"the name {clash[0]!r} is also a submodule of the model that holds a unit or "
                             "the head; name the group otherwise", field="model")
    children: dict[str, nn.Module] = {}  # in forward order
    for spec, name in zip(unit_specs, unit_names):
        if isinstance(spec, str):
            children.setdefault(spec.split(".")[0], model.get_submodule(spec.split(".")[0]))
        else:
            children[name] = nn.Sequential(*(modules[p] for p in spec[1]))
    if isinstance(head, str):
        children.setdefault(head.split(".")[0], model.get_submodule(head.split(".")[0]))
    head_name = head if isinstance(head, str) else "head"
    if not isinstance(head, str):
        children["head"] = head if isinstance(head, nn.Module) else nn.Sequential(
            *(modules[p] if isinstance(p, str) else p for p in head_parts))
    try:
        net = UnitNetwork(children, unit_names, head_name)
    except ValueError as exc:
        raise LearnDropError(f"the units do not cut the model cleanly: {exc}", field="model") from None
    if example is not None:
        _check_forward(model, net, example)
    net.source_keys = _source_keys(model, net)
    net.grouped = frozenset(name for spec, name in zip(unit_specs, unit_names) if not isinstance(spec, str))
    return net


def _source_keys(model: nn.Module, net: UnitNetwork) -> dict[str, str]:
    """``model``'s state-dict keys -> ``net``'s, where they differ: both hold the very same tensors."""
    ours = {id(t): k for k, t in net.state_dict(keep_vars=True).items()}
    return {k: ours[id(t)] for k, t in model.state_dict(keep_vars=True).items() if ours.get(id(t), k) != k}


def _check_coverage(model: nn.Module, listed: list[tuple[str, str]], extra: list[nn.Module]) -> None:
    owned = {id(p) for path, _ in listed for p in model.get_submodule(path).parameters()}
    owned |= {id(p) for module in extra for p in module.parameters()}
    gap = [n for n, p in model.named_parameters() if id(p) not in owned]
    if gap:
        shown = ", ".join(gap[:4]) + (f" and {len(gap) - 4} more" if len(gap) > 4 else "")
        raise LearnDropError(f"parameters outside every unit and the head: {shown}; add their modules to a "
                             "unit or to the head", field="model")


def _check_forward(model: nn.Module, net: UnitNetwork, example: torch.Tensor) -> None:
    modes = [m.training for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            same = torch.allclose(model(example), net(example), rtol=1e-4, atol=1e-5)
    except RuntimeError as exc:
        raise LearnDropError(f"head(unit_n(...unit_1(x))) does not run on the example: {exc}".splitlines()[0],
                             field="model") from None
    finally:
        for m, mode in zip(model.modules(), modes):
            m.training = mode
    if not same:
        raise LearnDropError("head(unit_n(...unit_1(x))) computes something else than the model: its forward "
                             "does work between the units (a flatten, a residual over units?); move it into "
                             "a unit or the head", field="model")
