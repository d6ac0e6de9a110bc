"""Forward hooks that let the model's own forward serve Learn&Drop, so a training loop stays as it was.

- A dropped unit runs in eval mode whenever it runs, whatever ``model.train()`` set: its BatchNorm keeps
  the running statistics it had when it dropped. Its parameters no longer require gradients, so on an
  input that needs none, autograd records nothing there: no backward, no saved activations.
- The head reports each batch's size, which the step's FLOPs are counted for.
- The first unit reports the input's shape once, which the FLOPs are measured on (when not given).

Hooks sit on the modules the network's forward calls: a unit, or each member of a unit grouped by
``learndrop.units`` (the source model's own forward calls those, not the group).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from torch.utils.hooks import RemovableHandle

from ..models import UnitNetwork


def _stay_in_eval(module: nn.Module, args: tuple) -> None:
    if module.training:
        module.eval()


class ForwardHooks:
    """The hooks of one controller on ``model``; ``close`` removes them all."""

    def __init__(self, model: UnitNetwork, on_batch: Callable[[int], None],
                 on_input: Callable[[tuple[int, ...]], None] | None = None):
        self.model = model
        self._handles: list[RemovableHandle] = []
        self._frozen: set[str] = set()

        def batch(module: nn.Module, args: tuple) -> None:
            on_batch(int(args[0].shape[0]))

        self._handles.append(model.head_module().register_forward_pre_hook(batch))
        if on_input is not None:
            first = model.call_modules(model.unit_names[0])[0]

            def shape(module: nn.Module, args: tuple) -> None:
                on_input(tuple(int(v) for v in args[0].shape[1:]))
                handle.remove()

            handle = first.register_forward_pre_hook(shape)
            self._handles.append(handle)

    def freeze(self, names: list[str]) -> None:
        """From now on, ``names`` run in eval mode (dropped, or frozen behind the frontier)."""
        for name in names:
            if name in self._frozen:
                continue
            self._frozen.add(name)
            for module in self.model.call_modules(name):
                self._handles.append(module.register_forward_pre_hook(_stay_in_eval))

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._frozen.clear()
