"""Learn&Drop as a PyTorch Lightning callback: ``Trainer(callbacks=[LearnDropCallback(PolicyConfig(...))])``.

Like Lightning's ``BaseFinetuning``, it freezes without touching the loop: the LightningModule and its
``configure_optimizers`` stay as they are (any optimizer over ``self.parameters()``). The callback drives one
``LearnDrop`` controller on the module's network (its ``model`` attribute, or the one named ``attribute``: a
``UnitNetwork`` or a torchvision/timm CNN the controller knows how to cut):

- after each optimizer step it counts the step; at the end of each training epoch (or every ``every_n_steps``
  steps) it checks: scores every unit and drops the front that stopped learning, its parameters taken out of
  Lightning's optimizer and its BatchNorm kept in eval mode, as ``BaseFinetuning.freeze(train_bn=False)``;
- each unit's change score, the number of units dropped and the FLOPs saved are logged through
  ``pl_module.log`` (``learndrop/...``), so every Lightning logger (TensorBoard, CSV) shows them;
- its state rides in Lightning's checkpoints (``state_dict``): ``fit(ckpt_path=...)`` drops the same units in
  ``on_fit_start``, before Lightning loads the optimizer's state over the parameters still trained.

Needs ``pip install 'learndrop[lightning]'`` (pytorch-lightning).
"""

from __future__ import annotations

import math
from typing import Any

try:
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import Callback
except ImportError as exc:  # the optional extra
    raise ImportError("learndrop.integrations.lightning needs pytorch-lightning: "
                      "pip install 'learndrop[lightning]'") from exc
from torch import nn

from ..config import PolicyConfig
from ..errors import LearnDropError
from ..method.controller import LearnDrop


class LearnDropCallback(Callback):
    """Learn&Drop on a LightningModule's network; ``policy``: the criterion and thresholds (default
    Learn&Drop's)."""

    def __init__(self, policy: PolicyConfig | None = None, *, attribute: str = "model",
                 every_n_steps: int | None = None, log_scores: bool = True):
        if every_n_steps is not None and every_n_steps < 1:
            raise LearnDropError(f"every_n_steps must be at least 1, got {every_n_steps}")
        self.policy = policy or PolicyConfig()
        self.policy.validate()
        self.attribute = attribute
        self.every_n_steps = every_n_steps
        self.log_scores = log_scores
        self.ld: LearnDrop | None = None
        self._restored: dict[str, Any] | None = None
        self._global_step = 0

    # --- the run ------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        network = getattr(pl_module, self.attribute, None)
        if not isinstance(network, nn.Module):
            raise LearnDropError(f"LearnDropCallback drives the network in {type(pl_module).__name__}."
                                 f"{self.attribute}, which is no module: name it with attribute=...")
        if len(trainer.optimizers) != 1:
            raise LearnDropError(f"LearnDropCallback drives one optimizer; configure_optimizers gave "
                                 f"{len(trainer.optimizers)}")
        steps = trainer.estimated_stepping_batches  # inf: no max_epochs or max_steps to count by
        self.ld = LearnDrop(network, trainer.optimizers[0], self.policy,
                            total_steps=int(steps) if math.isfinite(steps) else None)
        # a resume: the same units dropped, before Lightning loads the optimizer
        if self._restored is not None:
            self.ld.load_state_dict(self._restored, optimizer=False)
            self._restored = None
        self._global_step = trainer.global_step

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.global_step == self._global_step:  # no optimizer step (gradient accumulation)
            return
        self._global_step = trainer.global_step
        self.ld.step()
        if self.every_n_steps and self.ld.steps % self.every_n_steps == 0:
            self._check(pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.every_n_steps:
            self._check(pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.ld is not None:
            self.ld.close()

    def _check(self, pl_module: pl.LightningModule) -> None:
        result = self.ld.check()
        if not self.log_scores:
            return
        metrics = {f"learndrop/s/{s.unit}": s.s for s in result.decision.scores if s.s is not None}
        fwd, train = self.ld.flops.reduction_pct()
        metrics.update({"learndrop/dropped": float(self.ld.dropped), "learndrop/fwd_flops_saved_pct": fwd,
                        "learndrop/train_flops_saved_pct": train})
        pl_module.log_dict(metrics, on_step=False, on_epoch=True)

    # --- in Lightning's checkpoints -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The controller's state but the optimizer's (Lightning saves that itself)."""
        if self.ld is None:
            return dict(self._restored or {})
        return {k: v for k, v in self.ld.state_dict().items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = dict(state_dict)
