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

``pretrained``: the weights a package ships, offline, where ``models.weights.PACKAGED`` has them
(``timm:efficientnet_lite0``: Google's ImageNet weights); otherwise timm's own, from its hub.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import LearnDropError
from .network import UnitNetwork
from .weights import PACKAGED, normalization_named, packaged_state
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
    if pretrained and name in PACKAGED:
        model, normalization = _packaged(timm, name, num_classes, in_channels), PACKAGED[name].normalization
    else:
        model, normalization = _from_timm(timm, name, num_classes, in_channels, pretrained), None
        if pretrained:
            cfg = model.pretrained_cfg
            normalization = normalization_named(tuple(cfg["mean"]), tuple(cfg["std"]), f"timm's {name}")
    specs, head = _cut(model, name)
    example = torch.randn(2, in_channels, max(image_size, 32), max(image_size, 32))
    net = units(model, specs, head, example=example)
    net.normalization = normalization
    return net


def _from_timm(timm, name: str, num_classes: int, in_channels: int, pretrained: bool) -> nn.Module:
    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=num_classes, in_chans=in_channels)
    except Exception as exc:  # the hub's errors have no common base but Exception
        if not pretrained:
            raise
        raise LearnDropError(f"could not get timm's pretrained weights for {name} (no internet?): "
                             f"{exc}".splitlines()[0], field="pretrained") from exc


def _packaged(timm, name: str, num_classes: int, in_channels: int) -> nn.Module:
    """The ImageNet network with the packaged weights, then a new classifier for ``num_classes`` and, for
    other than 3 input channels, the stem's filters adapted (timm's rule: summed for gray input)."""
    from timm.models import adapt_input_conv

    model = timm.create_model(name, pretrained=False)
    model.load_state_dict(packaged_state(name, model))
    model.reset_classifier(num_classes)
    if in_channels != 3:
        conv = model.conv_stem
        weight = adapt_input_conv(in_channels, conv.weight.detach())
        model.conv_stem = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                    conv.padding, bias=False)
        model.conv_stem.weight.data.copy_(weight)
    return model
