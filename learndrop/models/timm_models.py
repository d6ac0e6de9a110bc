"""timm models as ``UnitNetwork``s: ``create_model("timm:NAME", ...)`` (the optional ``timm`` extra).

``timm.create_model(NAME, pretrained=..., num_classes=..., in_chans=...)``, cut with
``learndrop.units`` by the model's class, and checked on an example batch to compute what the model
does (timm's attribute names vary between versions; a cut that no longer fits is refused, not guessed):

- ``ResNet`` (resnet*, resnext*, seresnet*, ...): ``stem`` = conv1 + bn1 + act1 + maxpool, each block
  of layer1..layer4; head = global_pool + fc.
- ``EfficientNet`` (efficientnet*, mobilenetv2*, ...): ``stem`` = conv_stem + bn1, each stage
  ``blocks.i``, ``last`` = conv_head + bn2; head = global_pool + classifier.
- ``MobileNetV3``: ``stem`` = conv_stem + bn1, ``blocks.i``; head = global_pool + conv_head + norm_head
  + act2 + flatten + classifier.
- ``ConvNeXt``: ``stem``, ``stages.0`` ... ``stages.3``; head = norm_pre + head.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import LearnDropError
from .network import UnitNetwork
from .wrap import units

PREFIX = "timm:"
CLASSES = {"ResNet": "resnet18", "EfficientNet": "efficientnet_b0", "MobileNetV3": "mobilenetv3_small_100",
           "ConvNeXt": "convnext_atto"}  # the classes we cut, and a small member of each


def _timm():
    try:
        import timm
    except ImportError:
        raise LearnDropError("timm:NAME needs timm: pip install 'learndrop[timm]' (or pip install timm)",
                             field="model") from None
    return timm


def _blocks(model: nn.Module, path: str) -> list[str]:
    return [f"{path}.{child}" for child, _ in model.get_submodule(path).named_children()]


def _cut(model: nn.Module, name: str) -> tuple[list, list]:
    kind = type(model).__name__
    if kind == "ResNet":
        return [("stem", ["conv1", "bn1", "act1", "maxpool"]),
                *[b for i in range(1, 5) for b in _blocks(model, f"layer{i}")]], ["global_pool", "fc"]
    if kind == "EfficientNet":
        return [("stem", ["conv_stem", "bn1"]), *_blocks(model, "blocks"), ("last", ["conv_head", "bn2"])], \
            ["global_pool", "classifier"]
    if kind == "MobileNetV3":
        return [("stem", ["conv_stem", "bn1"]), *_blocks(model, "blocks")], \
            ["global_pool", "conv_head", "norm_head", "act2", "flatten", "classifier"]
    if kind == "ConvNeXt":
        return ["stem", *_blocks(model, "stages")], ["norm_pre", "head"]
    raise LearnDropError(f"timm:{name} is a {kind}; Learn&Drop cuts timm's {', '.join(CLASSES)} into units "
                         "(or cut it yourself with learndrop.units)", field="model")


def create_timm(name: str, num_classes: int, in_channels: int = 3, image_size: int = 32,
                pretrained: bool = False) -> UnitNetwork:
    """``timm:NAME`` cut into its blocks; see the module's docstring."""
    timm, name = _timm(), name.removeprefix(PREFIX)
    if not timm.list_models(name):
        raise LearnDropError(f"timm has no model {name!r} (e.g. timm:{CLASSES['ResNet']})", field="model")
    try:
        model = timm.create_model(name, pretrained=pretrained, num_classes=num_classes, in_chans=in_channels)
    except Exception as exc:  # the hub's errors have no common base but Exception
        if not pretrained:
            raise
        raise LearnDropError(f"could not get timm's pretrained weights for {name} (no internet?): "
                             f"{exc}".splitlines()[0], field="pretrained") from exc
    specs, head = _cut(model, name)
    example = torch.randn(2, in_channels, max(image_size, 32), max(image_size, 32))
    return units(model, specs, head, example=example)
