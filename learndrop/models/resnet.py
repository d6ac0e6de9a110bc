"""ResNets: torchvision's ResNet-18/50/152 and the CIFAR ResNet-20/56 of He et al. (2016).

A unit is the stem or one residual block. Inputs of 64 px or less get a CIFAR-style stem (3x3 conv,
stride 1, no max-pool); with pretrained weights the 7x7 conv is kept at stride 1 so its weights still fit.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import resnet as tv_resnet

from ._registry import register_model, scaled
from .network import UnitNetwork, pooled_head
from .weights import load_torchvision

SMALL_INPUT = 64  # px: at or below this, use the CIFAR-style stem


def _units(stages: dict[str, nn.Sequential]) -> list[str]:
    return ["stem"] + [f"{stage}.{i}" for stage, blocks in stages.items() for i in range(len(blocks))]


def _torchvision_resnet(builder, weights, *, num_classes: int, in_channels: int, image_size: int,
                        pretrained: bool, width: float) -> UnitNetwork:
    net = load_torchvision(builder, weights if pretrained else None)
    conv1 = net.conv1
    small = image_size <= SMALL_INPUT
    if small and not pretrained:
        conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
    elif small:
        conv1.stride = (1, 1)
    if conv1.in_channels != in_channels:  # grayscale input: average the pretrained RGB filters
        new = nn.Conv2d(in_channels, 64, conv1.kernel_size, conv1.stride, conv1.padding, bias=False)
        new.weight.data.copy_(conv1.weight.data.mean(dim=1, keepdim=True).expand_as(new.weight))
        conv1 = new
    stem = nn.Sequential(conv1, net.bn1, net.relu, *([] if small else [net.maxpool]))
    stages = {f"layer{i}": getattr(net, f"layer{i}") for i in range(1, 5)}
    head = pooled_head(net.fc.in_features, num_classes)
    return UnitNetwork({"stem": stem, **stages, "head": head}, _units(stages))


def _cifar_resnet(name: str, blocks_per_stage: int, *, num_classes: int, in_channels: int, image_size: int,
                  width: float, pretrained: bool) -> UnitNetwork:
    widths = [scaled(c, width, name) for c in (16, 32, 64)]
    stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                         nn.ReLU(inplace=True))
    stages: dict[str, nn.Sequential] = {}
    c_in = widths[0]
    for s, c_out in enumerate(widths):
        blocks = []
        for b in range(blocks_per_stage):
            stride = 2 if (s > 0 and b == 0) else 1
            down = None
            if stride != 1 or c_in != c_out:  # option B shortcut: 1x1 conv + BN
                down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            blocks.append(tv_resnet.BasicBlock(c_in, c_out, stride, down))
            c_in = c_out
        stages[f"layer{s + 1}"] = nn.Sequential(*blocks)
    net = UnitNetwork({"stem": stem, **stages, "head": pooled_head(c_in, num_classes)}, _units(stages))
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net


@register_model(width=False, pretrained=True)
def resnet18(**kw) -> UnitNetwork:
    """ResNet-18 (torchvision), 9 units."""
    return _torchvision_resnet(tv_resnet.resnet18, tv_resnet.ResNet18_Weights.DEFAULT, **kw)


@register_model(width=False, pretrained=True)
def resnet50(**kw) -> UnitNetwork:
    """ResNet-50 (torchvision), 17 units."""
    return _torchvision_resnet(tv_resnet.resnet50, tv_resnet.ResNet50_Weights.DEFAULT, **kw)


@register_model(width=False, pretrained=True)
def resnet152(**kw) -> UnitNetwork:
    """ResNet-152 (torchvision), 51 units."""
    return _torchvision_resnet(tv_resnet.resnet152, tv_resnet.ResNet152_Weights.DEFAULT, **kw)


@register_model(width=True, pretrained=False)
def resnet20(**kw) -> UnitNetwork:
    """CIFAR ResNet-20 (He et al.), 10 units."""
    return _cifar_resnet("resnet20", 3, **kw)


@register_model(width=True, pretrained=False)
def resnet56(**kw) -> UnitNetwork:
    """CIFAR ResNet-56 (He et al.), 28 units."""
    return _cifar_resnet("resnet56", 9, **kw)
