"""Any torchvision classification CNN as a ``UnitNetwork``: ``create_model("torchvision:NAME", ...)``.

The model is ``torchvision.models.get_model(NAME, weights=None, num_classes=...)`` (with
``pretrained``: torchvision's default weights, then a new last linear layer for the data set's
classes), cut with ``learndrop.units`` into its own top-level blocks in forward order. Per family:

- ResNet, ResNeXt, Wide ResNet: ``stem`` = conv1 + bn1 + relu + maxpool, then each block of
  layer1..layer4; head = avgpool + flatten + fc.
- MobileNet V2/V3, EfficientNet (V1, V2): ``features.0`` ... ``features.N``; MNASNet: ``stem`` (its
  first 8 layers), each stack ``layers.8`` ... ``layers.13``, ``last`` (conv + BN + ReLU); head =
  pooling + flatten + classifier.
- ConvNeXt: ``features.0`` ... ``features.7`` (stem, stages and downsamplings); head = avgpool +
  classifier (its LayerNorm, flatten and linear).
- RegNet: ``stem``, then each block of ``trunk_output``'s stages; head = avgpool + flatten + fc.
- DenseNet: ``stem`` = conv0 + norm0 + relu0 + pool0, then each dense block and transition; head =
  norm5 + ReLU + pooling + flatten + classifier.
- ShuffleNet V2: ``stem`` = conv1 + maxpool, each block of stage2..stage4, conv5; head = pooling +
  flatten + fc.

The head keeps training. Other torchvision classifiers are refused with the reason: VGG and AlexNet's
flat feature lists mix parameterless layers (use the built-in vgg11/vgg16), GoogLeNet and Inception
run auxiliary classifiers off the middle of the network, SqueezeNet's fire modules are small and its
head is a conv, and the vision transformers (ViT, Swin, MaxViT) are no CNNs: their blocks share a
class token and position embeddings outside any block.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from ..errors import LearnDropError
from .network import UnitNetwork
from .wrap import units

PREFIX = "torchvision:"
FAMILIES = {  # family: name prefixes, the smallest member (tests, listings)
    "resnet": (("resnet", "resnext", "wide_resnet"), "resnet18"),
    "mobilenet_v2": (("mobilenet_v2",), "mobilenet_v2"),
    "mobilenet_v3": (("mobilenet_v3",), "mobilenet_v3_small"),
    "efficientnet": (("efficientnet",), "efficientnet_b0"),
    "mnasnet": (("mnasnet",), "mnasnet0_5"),
    "convnext": (("convnext",), "convnext_tiny"),
    "regnet": (("regnet",), "regnet_y_400mf"),
    "densenet": (("densenet",), "densenet121"),
    "shufflenet_v2": (("shufflenet_v2",), "shufflenet_v2_x0_5"),
}
REFUSED = {
    ("vgg", "alexnet"): "its features are one flat list where ReLUs and pools have no parameters to score; "
                        "use the built-in vgg11 or vgg16, cut per conv",
    ("googlenet", "inception"): "its auxiliary classifiers branch off the middle of the network, so no "
                                "prefix can be cut off",
    ("squeezenet",): "its head is a conv + ReLU + pooling written around the fire modules, not one "
                     "prefix cut",
    ("vit", "swin", "maxvit"): "it is a vision transformer, no CNN: its class token and position embeddings "
                               "live outside every block",
}


def classification_models() -> list[str]:
    return torchvision.models.list_models(module=torchvision.models)


def family_of(name: str) -> str:
    """The family of a torchvision model name; a ``LearnDropError`` saying why for one we cannot cut."""
    if name not in classification_models():
        raise LearnDropError(f"torchvision has no classification model {name!r}; families that work: "
                             f"{', '.join(FAMILIES)} (e.g. torchvision:resnet34)", field="model")
    for family, (prefixes, _) in FAMILIES.items():
        if name.startswith(prefixes):
            return family
    for prefixes, why in REFUSED.items():
        if name.startswith(prefixes):
            raise LearnDropError(f"torchvision:{name} cannot be cut into a droppable prefix: {why}",
                                 field="model")
    raise LearnDropError(f"torchvision:{name} is no family Learn&Drop knows how to cut into units; families "
                         f"that work: {', '.join(FAMILIES)}", field="model")


def _blocks(model: nn.Module, path: str) -> list[str]:
    return [f"{path}.{child}" for child, _ in model.get_submodule(path).named_children()]


def _cut(family: str, m: nn.Module) -> tuple[list, list]:
    """The unit specs and the head of one family's model."""
    pool = [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
    if family == "resnet":
        return [("stem", ["conv1", "bn1", "relu", "maxpool"]),
                *[b for i in range(1, 5) for b in _blocks(m, f"layer{i}")]], ["avgpool", nn.Flatten(1), "fc"]
    if family in ("mobilenet_v2", "mobilenet_v3", "efficientnet"):
        head = [*pool, "classifier"] if family == "mobilenet_v2" else ["avgpool", nn.Flatten(1), "classifier"]
        return _blocks(m, "features"), head
    if family == "mnasnet":  # layers: 8 stem layers, 6 stacks, conv + BN + ReLU (ReLUs have nothing to score)
        layers = _blocks(m, "layers")
        return [("stem", layers[:8]), *layers[8:14], ("last", layers[14:])], [*pool, "classifier"]
    if family == "convnext":
        return _blocks(m, "features"), ["avgpool", "classifier"]
    if family == "regnet":
        stages = _blocks(m, "trunk_output")
        return ["stem", *[b for s in stages for b in _blocks(m, s)]], ["avgpool", nn.Flatten(1), "fc"]
    if family == "densenet":
        body = [n for n in _blocks(m, "features")
                if n.split(".")[-1].startswith(("denseblock", "transition"))]
        stem = [f"features.{n}" for n in ("conv0", "norm0", "relu0", "pool0")]
        return [("stem", stem), *body], ["features.norm5", nn.ReLU(), *pool, "classifier"]
    stages = [b for s in ("stage2", "stage3", "stage4") for b in _blocks(m, s)]  # shufflenet_v2
    return [("stem", ["conv1", "maxpool"]), *stages, "conv5"], [*pool, "fc"]


def _replace(model: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def _adapt(model: nn.Module, num_classes: int, in_channels: int) -> None:
    """The first conv takes ``in_channels`` (pretrained RGB filters averaged); the last linear layer
    predicts ``num_classes`` (new, when the weights came for ImageNet's 1000)."""
    convs = [(n, c) for n, c in model.named_modules() if isinstance(c, nn.Conv2d)]
    linears = [(n, c) for n, c in model.named_modules() if isinstance(c, nn.Linear)]
    name, conv = convs[0]
    if conv.in_channels != in_channels:
        new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                        conv.dilation, conv.groups, conv.bias is not None)
        with torch.no_grad():
            new.weight.copy_(conv.weight.mean(dim=1, keepdim=True).expand_as(new.weight))
            if conv.bias is not None:
                new.bias.copy_(conv.bias)
        _replace(model, name, new)
    name, linear = linears[-1]
    if linear.out_features != num_classes:
        _replace(model, name, nn.Linear(linear.in_features, num_classes))


def create_torchvision(name: str, num_classes: int, in_channels: int = 3, pretrained: bool = False,
                       example: torch.Tensor | None = None) -> UnitNetwork:
    """``torchvision:NAME`` (the prefix optional) cut into its blocks; see the module's docstring.
    ``example``: an input batch on which the cut is checked to compute what the model does."""
    name = name.removeprefix(PREFIX)
    family = family_of(name)
    if pretrained:
        try:
            model = torchvision.models.get_model(name, weights="DEFAULT")
        except (OSError, RuntimeError) as exc:  # URLError is an OSError
            raise LearnDropError(f"could not get torchvision's pretrained weights for {name} (no internet?): "
                                 f"{exc}".splitlines()[0], field="pretrained") from exc
    else:
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    _adapt(model, num_classes, in_channels)
    specs, head = _cut(family, model)
    return units(model, specs, head, example=example)


def listing() -> str:
    """What ``learndrop models`` prints after the registered models: the torchvision families, timm's
    classes."""
    from .timm_models import CLASSES

    lines = ["", ("torchvision:NAME, any torchvision classification CNN of these families (their blocks are "
                  "the units; --pretrained)")]
    lines += [f"  {family:<14} {', '.join(p + '*' for p in prefixes)}  (e.g. torchvision:{smallest})"
              for family, (prefixes, smallest) in FAMILIES.items()]
    return "\n".join([*lines, "", ("timm:NAME (pip install 'learndrop[timm]'), timm's models of these "
                                   "classes: ")
                      + ", ".join(f"{kind} (e.g. timm:{small})" for kind, small in CLASSES.items())])
