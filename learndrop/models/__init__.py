"""Registered models; each lists its droppable units."""

from . import resnet, vgg  # noqa: F401  (registration)
from ._registry import ModelInfo, create_model, list_models, model_info, register_model
from .network import UnitNetwork
from .wrap import units

__all__ = ["ModelInfo", "UnitNetwork", "create_model", "list_models", "model_info", "register_model", "units"]
