"""torchvision's ImageNet weights, downloaded by torchvision, with one clear error when offline."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..errors import LearnDropError


def load_torchvision(builder: Callable[..., nn.Module], weights: object | None) -> nn.Module:
    if weights is None:
        return builder(weights=None)
    try:
        return builder(weights=weights)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a truncated file a RuntimeError
        raise LearnDropError(
            f"could not get torchvision's pretrained weights {weights} (no internet?): {exc}".splitlines()[0],
            field="pretrained",
        ) from exc
