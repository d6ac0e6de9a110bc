"""FLOPs of one training step, per unit, from ``torch.utils.flop_counter.FlopCounterMode``.

The count runs on a copy of the network on the ``meta`` device, so it costs no arithmetic and no
memory. Each unit is run on its own, with its input requiring a gradient exactly when the real step
needs one (so the first trainable unit's backward computes weight gradients only). Conv and matmul
FLOPs are counted as 2 x multiply-accumulates; element-wise ops (BN, ReLU, pooling) count zero.

One formula is our own: torch's backward of a grouped convolution counts its weight gradient as if the
convolution were dense (``groups`` is unused: a depthwise conv's backward came out hundreds of times its
forward; pytorch/pytorch#183405 divides it by the groups). ``conv_backward_flop`` does that here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from ..models import UnitNetwork

MEASURE_BATCH = 2  # FLOPs are linear in the batch: measure 2 samples, report per sample


@dataclass
class FlopCount:
    """FLOPs trained so far, and what the full network would have cost for the same images.

    ``fwd`` counts every forward pass the method ran: the training steps', the cache builds' and the probe
    batch's (function-space scores, rewind tests), which ``probe`` counts again on its own.
    """

    fwd: int = 0
    bwd: int = 0
    baseline_fwd: int = 0
    baseline_bwd: int = 0
    probe: int = 0

    def reduction_pct(self) -> tuple[float, float]:
        """Forward and training (forward + backward) FLOPs saved, in percent."""
        train, base = self.fwd + self.bwd, self.baseline_fwd + self.baseline_bwd
        return (100 * (1 - self.fwd / self.baseline_fwd) if self.baseline_fwd else 0.0,
                100 * (1 - train / base) if base else 0.0)


@dataclass(frozen=True)
class StepFlops:
    """Per-sample forward and backward FLOPs of one training step, per unit and for the head."""

    fwd: dict[str, int]
    bwd: dict[str, int]

    @property
    def fwd_total(self) -> int:
        return sum(self.fwd.values())

    @property
    def bwd_total(self) -> int:
        return sum(self.bwd.values())


def conv_backward_flop(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed,
                       output_padding, groups, output_mask, out_shape, **kwargs) -> int:
    """A convolution's backward as torch counts it (the input gradient as the transposed convolution of the
    output gradient, the weight gradient as a convolution of the input with it), the weight-gradient term
    divided by ``groups``: each group convolves only its own channels."""
    def t(shape):  # batch and channels swapped
        return [shape[1], shape[0], *shape[2:]]

    total = 0
    if output_mask[0]:
        total += flop_counter.conv_flop_count(grad_out_shape, w_shape, out_shape[0], not transposed)
    if output_mask[1]:
        inputs = (t(grad_out_shape), t(x_shape)) if transposed else (t(x_shape), t(grad_out_shape))
        total += flop_counter.conv_flop_count(*inputs, t(out_shape[1]), transposed=False) // groups
    return total


FORMULAS = {torch.ops.aten.convolution_backward: conv_backward_flop}


def _count(fn) -> int:
    with FlopCounterMode(display=False, custom_mapping=FORMULAS) as counter:
        fn()
    return counter.get_total_flops()


def measure_step_flops(model: UnitNetwork, input_shape: tuple[int, ...], dropped: int = 0,
                       cached: bool = False) -> StepFlops:
    """FLOPs per sample of a step that trains units ``[dropped:]`` and the head.

    ``cached``: the prefix's output comes from the activation cache, so the prefix costs nothing;
    otherwise it runs forward under ``no_grad`` and has no backward.
    """
    meta = copy.deepcopy(model).to("meta")
    meta.train()
    x = torch.empty((MEASURE_BATCH, *input_shape), device="meta")
    fwd: dict[str, int] = {}
    bwd: dict[str, int] = {}
    names = [*meta.unit_names, meta.head_name]
    for i, name in enumerate(names):
        module = meta.get_submodule(name)
        if i < dropped:
            if cached:
                fwd[name] = bwd[name] = 0
                x = torch.empty(_out_shape(module, x), device="meta")
            else:
                with torch.no_grad():
                    holder = {}
                    fwd[name] = _count(lambda: holder.setdefault("y", module(x)))
                x = holder["y"]
                bwd[name] = 0
            continue
        x = x.detach().requires_grad_(i > dropped)
        holder = {}
        fwd[name] = _count(lambda: holder.setdefault("y", module(x)))
        y = holder["y"]
        bwd[name] = _count(lambda: y.backward(torch.ones_like(y))) if y.requires_grad else 0
        x = y.detach()
    return StepFlops({k: v // MEASURE_BATCH for k, v in fwd.items()},
                     {k: v // MEASURE_BATCH for k, v in bwd.items()})


def _out_shape(module: torch.nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    with torch.no_grad():
        return tuple(module(x).shape)
