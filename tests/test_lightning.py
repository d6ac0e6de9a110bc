"""The Lightning callback: a LightningModule trains on the embedded shapes, drops, logs, and resumes dropped."""

from __future__ import annotations

import csv

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import learndrop
from learndrop.data.shapes import make_shapes

pl = pytest.importorskip("pytorch_lightning", reason="the lightning extra is not installed")
from learndrop.integrations.lightning import LearnDropCallback  # noqa: E402

EVERY_UNIT = learndrop.PolicyConfig(tau=1.0, kappa=1e9, warmup=0, window=1)  # all droppable units drop at check 2


class Classifier(pl.LightningModule):
    """A LightningModule as anyone writes one: its network in ``model``, AdamW over ``self.parameters()``."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.model = learndrop.create_model("tiny", 10, 3, 32, width=0.25)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


def loader() -> DataLoader:
    images, labels = make_shapes(192, seed=0)
    return DataLoader(TensorDataset(images.float() / 255, labels), batch_size=64)


def trainer(tmp_path, epochs: int, callback: LearnDropCallback) -> pl.Trainer:
    return pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, default_root_dir=tmp_path,
                      logger=pl.loggers.CSVLogger(tmp_path, name="logs"), callbacks=[callback],
                      enable_progress_bar=False, enable_model_summary=False)


def test_the_callback_drops_logs_the_scores_and_a_resume_has_the_same_units_dropped(tmp_path):
    module, callback = Classifier(), LearnDropCallback(EVERY_UNIT)
    first = trainer(tmp_path / "a", 3, callback)
    first.fit(module, loader())
    dropped = callback.ld.dropped
    assert dropped == len(module.model.unit_names) - 1
    frozen = [p for k in range(dropped) for p in module.model.unit(k).parameters()]
    assert not any(p.requires_grad for p in frozen)
    held = {id(p) for g in first.optimizers[0].param_groups for p in g["params"]}
    assert not any(id(p) in held for p in frozen)

    (metrics,) = (tmp_path / "a" / "logs").glob("version_*/metrics.csv")
    rows = list(csv.DictReader(metrics.open()))
    scored = [k for k in rows[0] if k.startswith("learndrop/s/")]
    assert f"learndrop/s/{module.model.unit_names[0]}" in scored
    assert max(float(r["learndrop/dropped"]) for r in rows if r.get("learndrop/dropped")) == dropped

    (checkpoint,) = (tmp_path / "a").glob("**/*.ckpt")
    resumed_module, resumed = Classifier(), LearnDropCallback(EVERY_UNIT)  # a fresh process would build these
    second = trainer(tmp_path / "b", 4, resumed)
    second.fit(resumed_module, loader(), ckpt_path=checkpoint)
    assert resumed.ld.dropped == dropped
    first_conv = [m.model.unit(0).state_dict()["0.weight"] for m in (module, resumed_module)]
    assert torch.equal(*first_conv)  # the dropped stem did not move in the epoch trained on
    assert not any(p.requires_grad for k in range(dropped) for p in resumed_module.model.unit(k).parameters())
