"""The model registry: a dict plus a decorator, as in timm."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import LearnDropError
from .network import UnitNetwork

ModelFactory = Callable[..., UnitNetwork]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str  # the factory's first docstring line
    has_width: bool  # whether ``width`` scales the channels
    has_pretrained: bool  # whether torchvision has ImageNet weights for it


_MODELS: dict[str, tuple[ModelFactory, ModelInfo]] = {}


def register_model(*, width: bool, pretrained: bool) -> Callable[[ModelFactory], ModelFactory]:
    def wrap(fn: ModelFactory) -> ModelFactory:
        doc = (fn.__doc__ or fn.__name__).strip().splitlines()[0]
        _MODELS[fn.__name__] = (fn, ModelInfo(fn.__name__, doc, width, pretrained))
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_MODELS)


def model_info(name: str) -> ModelInfo:
    if name.startswith("torchvision:"):  # any torchvision classification CNN of a family we can cut
        from .zoo import family_of

        family = family_of(name.removeprefix("torchvision:"))
        return ModelInfo(name, f"torchvision's {name.removeprefix('torchvision:')} ({family} family)",
                         False, True)
    if name.startswith("timm:"):  # the optional timm extra
        from .timm_models import _timm

        if not _timm().list_models(name.removeprefix("timm:")):
            raise LearnDropError(f"timm has no model {name.removeprefix('timm:')!r}", field="model")
        return ModelInfo(name, f"timm's {name.removeprefix('timm:')}", False, True)
    if name not in _MODELS:
        raise LearnDropError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}",
                             field="model")
    return _MODELS[name][1]


def create_model(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    image_size: int = 32,
    width: float = 1.0,
    pretrained: bool = False,
) -> UnitNetwork:
    """Build a registered model; a clear ``LearnDropError`` for a name, width or weights we can't give."""
    info = model_info(name)
    if not (width > 0):
        raise LearnDropError(f"width must be > 0, got {width}", field="width")
    if width != 1.0 and not info.has_width:
        raise LearnDropError(f"{name} has no width multiplier; use width 1 (or "
                             "vgg11/vgg16/resnet20/resnet56/tiny)",
                             field="width")
    if pretrained and not info.has_pretrained:
        raise LearnDropError(f"torchvision has no pretrained weights for {name}", field="pretrained")
    if pretrained and width != 1.0:
        raise LearnDropError("pretrained weights exist only at width 1", field="pretrained")
    if num_classes < 2:
        raise LearnDropError(f"need at least 2 classes, got {num_classes}")
    if name.startswith("torchvision:"):
        from .zoo import create_torchvision

        net = create_torchvision(name, num_classes, in_channels, pretrained)
    elif name.startswith("timm:"):
        from .timm_models import create_timm

        net = create_timm(name, num_classes, in_channels, image_size, pretrained)
    else:
        factory = _MODELS[name][0]
        net = factory(num_classes=num_classes, in_channels=in_channels, image_size=image_size, width=width,
                      pretrained=pretrained)
    if pretrained and net.normalization is None:  # torchvision's weights: trained on ImageNet's mean and std
        net.normalization = "imagenet"
    return net


def scaled(channels: int, width: float, model: str) -> int:
    """``round(channels * width)``, refusing a width that leaves a layer with no channels."""
    c = int(round(channels * width))
    if c < 1:
        raise LearnDropError(f"width {width} leaves {model} a layer with no channels "
                             f"({channels} x {width} < 1)",
                             field="width")
    return c
