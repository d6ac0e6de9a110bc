"""A model handed to ``LearnDrop`` as it is: a ``UnitNetwork``, or a torchvision or timm CNN it knows how to
cut.

``as_unit_network(model)`` returns a ``UnitNetwork`` holding ``model``'s very modules (training one trains the
other), cut as ``create_model("torchvision:NAME")`` and ``create_model("timm:NAME")`` cut them; anything else
is a ``LearnDropError`` that says how to cut it with ``learndrop.units``.
"""

from __future__ import annotations

from torch import nn

from ..errors import LearnDropError
from .network import UnitNetwork
from .wrap import units

TORCHVISION_CLASSES = {"ResNet": "resnet", "MobileNetV2": "mobilenet_v2", "MobileNetV3": "mobilenet_v3",
                       "EfficientNet": "efficientnet", "MNASNet": "mnasnet", "ConvNeXt": "convnext",
                       "RegNet": "regnet", "DenseNet": "densenet", "ShuffleNetV2": "shufflenet_v2"}
HOW = ("cut it into units with learndrop.units(model, [unit module paths in forward order], head=...) "
       "(README: your own model)")


def as_unit_network(model: nn.Module) -> UnitNetwork:
    if isinstance(model, UnitNetwork):
        return model
    kind, home = type(model).__name__, type(model).__module__
    if home.startswith("torchvision.models") and kind in TORCHVISION_CLASSES:
        from .zoo import _cut

        specs, head = _cut(TORCHVISION_CLASSES[kind], model)
        return units(model, specs, head)
    if home.startswith("timm.models"):
        from .timm_models import _cut

        specs, head = _cut(model, kind)
        return units(model, specs, head)
    raise LearnDropError(f"Learn&Drop does not know where to cut a {kind} into droppable units: {HOW}",
                         field="model")
