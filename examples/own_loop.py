"""Learn&Drop in your own training loop: a plain PyTorch loop, made Learn&Drop by the lines marked ``# LD``.

    python examples/own_loop.py                       # offline: the embedded shapes data, tiny CNN, ~30 s on 2 CPU cores
    python examples/own_loop.py --dataset cifar10 --data-root ../shared/data --model torchvision:resnet18

The loop is yours (model, optimizer, data order, evaluation); the controller only needs the optimizer
built over ``learndrop.param_groups(model)`` (one group per unit, so a drop can take a unit out), the
batches served by it (so a dropped prefix's output can come from its cache) and a check now and then.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import learndrop
from learndrop.data.datasets import create_dataset


class Batches:
    """What the controller reads from your data: ``images`` (N, C, H, W), ``labels`` (N,), ``get(idx)``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor):
        self.images, self.labels = (images.float() - mean) / std, labels

    def __len__(self) -> int:
        return len(self.labels)

    def get(self, idx: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[idx], self.labels[idx]


def load(args: argparse.Namespace) -> tuple[Batches, Batches, int]:
    train = create_dataset(args.dataset, args.data_root, train=True, download=args.download, subset=args.subset)
    test = create_dataset(args.dataset, args.data_root, train=False, download=args.download, subset=1000)
    mean = train.images.float().mean(dim=(0, 2, 3), keepdim=True)
    std = train.images.float().std(dim=(0, 2, 3), keepdim=True).clamp_min(1.0)
    return (Batches(train.images, train.labels, mean, std), Batches(test.images, test.labels, mean, std),
            len(train.classes))


def accuracy(model: torch.nn.Module, data: Batches) -> float:
    model.eval()
    with torch.no_grad():
        hits = sum(int((model(x).argmax(1) == y).sum()) for x, y in zip(data.images.split(500), data.labels.split(500)))
    return hits / len(data)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="shapes", help="shapes (embedded), mnist, fashion-mnist, cifar10, ...")
    p.add_argument("--data-root", default="data")
    p.add_argument("--download", action="store_true")
    p.add_argument("--model", default="tiny", help="a learndrop model or torchvision:NAME")
    p.add_argument("--subset", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--tau", type=float, default=0.4)
    p.add_argument("--kappa", type=float, default=1.0)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    train, test, classes = load(args)
    model = learndrop.create_model(args.model, classes, train.images.shape[1], train.images.shape[-1],
                                   width=0.5 if args.model == "tiny" else 1.0)
    optimizer = torch.optim.SGD(learndrop.param_groups(model), lr=0.05, momentum=0.9, weight_decay=5e-4)  # LD
    policy = learndrop.PolicyConfig(tau=args.tau, kappa=args.kappa)
    ld = learndrop.LearnDrop(model, optimizer, policy, data=train)  # LD
    rows, start = torch.arange(len(train)), time.perf_counter()
    for epoch in range(args.epochs):
        ld.train_mode()  # LD: model.train(), the dropped prefix kept in eval
        for idx in torch.randperm(len(train)).split(128):
            ld.update_cache(rows, args.epochs - epoch)  # LD: caches the dropped prefix's output when it grows
            x, y = ld.batch(idx)  # LD: instead of train.get(idx)
            loss = F.cross_entropy(ld.forward(x), y)  # LD: instead of model(x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            ld.after_step(len(idx))  # LD: counts the step's FLOPs and learning rate
        result = ld.check()  # LD: scores every unit, drops the prefix that stopped learning
        for drop in result.decision.drops:
            print(f"epoch {epoch + 1}: {drop.reason}")
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {accuracy(model, test):.3f}, "
              f"{ld.active_units} of {len(model.unit_names)} units training")
    fwd, total = ld.flops.reduction_pct()
    print(f"dropped {ld.dropped} of {len(model.unit_names)} units in {time.perf_counter() - start:.1f} s; "
          f"FLOPs saved: {fwd:.1f}% forward, {total:.1f}% forward + backward")


if __name__ == "__main__":
    main()
