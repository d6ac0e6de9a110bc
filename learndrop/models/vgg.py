"""VGG-11/16 (BatchNorm) from torchvision's building blocks, and a tiny VGG-style CNN for demos.

A unit is one conv + BN + ReLU with the max-pool that follows it. For small inputs a pool that would
shrink the feature map below 1x1 is left out (MNIST at 28 px keeps 4 of VGG's 5 pools), and the head is
global average pooling + one linear layer instead of VGG's 4096-wide classifier.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import vgg as tv_vgg

from ._registry import register_model, scaled
from .network import UnitNetwork, pooled_head
from .weights import load_torchvision

TINY_CFG: list[int | str] = [16, "M", 32, "M", 32, 64, "M", 64, 64, "M"]


def _group_units(layers: nn.Sequential, image_size: int) -> tuple[nn.Sequential, int]:
    """Regroup torchvision's flat [conv, bn, relu, (pool), ...] into one Sequential per conv."""
    units: list[nn.Sequential] = []
    size = image_size
    channels = 0
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            units.append(nn.Sequential(layer))
            channels = layer.out_channels
        elif isinstance(layer, nn.MaxPool2d):
            if size >= 2:
                units[-1].append(layer)
                size //= 2
        else:
            units[-1].append(layer)
    return nn.Sequential(*units), channels


def _adapt_first_conv(features: nn.Sequential, in_channels: int) -> None:
    """Swap torchvision's 3-channel first conv for one with ``in_channels`` (pretrained: channel mean)."""
    old = features[0]
    if old.in_channels == in_channels:
        return
    new = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding)
    with torch.no_grad():
        new.weight.copy_(old.weight.mean(dim=1, keepdim=True).expand_as(new.weight))
        new.bias.copy_(old.bias)
    features[0] = new


def _vgg(name: str, cfg: list[int | str], *, num_classes: int, in_channels: int, image_size: int,
         width: float, pretrained: bool, builder=None, weights=None) -> UnitNetwork:
    if pretrained:
        layers = load_torchvision(builder, weights).features
    else:
        layers = tv_vgg.make_layers([c if c == "M" else scaled(c, width, name) for c in cfg], batch_norm=True)
    _adapt_first_conv(layers, in_channels)
    features, channels = _group_units(layers, image_size)
    names = [f"features.{i}" for i in range(len(features))]
    return UnitNetwork({"features": features, "head": pooled_head(channels, num_classes)}, names)


@register_model(width=True, pretrained=False)
def tiny(**kw) -> UnitNetwork:
    """Tiny VGG-style CNN, 6 units: the demo and test model."""
    return _vgg("tiny", TINY_CFG, **kw)


@register_model(width=True, pretrained=True)
def vgg11(**kw) -> UnitNetwork:
    """VGG-11 with BatchNorm (torchvision), 8 units."""
    return _vgg("vgg11", tv_vgg.cfgs["A"], builder=tv_vgg.vgg11_bn, weights=tv_vgg.VGG11_BN_Weights.DEFAULT,
                **kw)


@register_model(width=True, pretrained=True)
def vgg16(**kw) -> UnitNetwork:
    """VGG-16 with BatchNorm (torchvision), 13 units."""
    return _vgg("vgg16", tv_vgg.cfgs["D"], builder=tv_vgg.vgg16_bn, weights=tv_vgg.VGG16_BN_Weights.DEFAULT,
                **kw)
