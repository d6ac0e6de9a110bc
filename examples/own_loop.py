"""Learn&Drop in a plain PyTorch loop: the loop as anyone writes it, and the three lines marked ``# LD``.

    python examples/own_loop.py                    # offline: the embedded shapes, a tiny CNN, ~7 s on 2 cores
    python examples/own_loop.py --model resnet18   # torchvision's ResNet-18 as it is (uncut), slower
    python examples/own_loop.py --dataset cifar10 --data-root ../shared/data --epochs 4

The model, the optimizer (SGD with Nesterov momentum over ``model.parameters()``), the DataLoader and
the evaluation are the loop's own. ``LearnDrop`` finds each unit's parameters in the optimizer and
takes them out when the unit drops; the model's own forward then runs the dropped units in eval mode,
with no gradient. ``ld.check()`` runs twice an epoch here (``--checks-per-epoch``).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader, TensorDataset

import learndrop
from learndrop.data.datasets import create_dataset


def loaders(args: argparse.Namespace) -> tuple[DataLoader, DataLoader, int]:
    """The data set as normalised float tensors, in two DataLoaders (any DataLoader would do)."""
    train = create_dataset(args.dataset, args.data_root, train=True, subset=args.subset)
    test = create_dataset(args.dataset, args.data_root, train=False, subset=1000)
    mean = train.images.float().mean(dim=(0, 2, 3), keepdim=True)
    std = train.images.float().std(dim=(0, 2, 3), keepdim=True).clamp_min(1.0)

    def tensors(data):
        return TensorDataset((data.images.float() - mean) / std, data.labels)

    return (DataLoader(tensors(train), batch_size=64, shuffle=True),
            DataLoader(tensors(test), batch_size=500), len(train.classes))


def accuracy(model: torch.nn.Module, loader: DataLoader) -> float:
    model.eval()
    with torch.no_grad():
        hits = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
    return hits / len(loader.dataset)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="shapes",
                   help="shapes (embedded), mnist, fashion-mnist, cifar10, ...")
    p.add_argument("--data-root", default="data")
    p.add_argument("--model", default="tiny",
                   help="tiny (a learndrop model) or resnet18 (torchvision's, uncut)")
    p.add_argument("--subset", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--checks-per-epoch", type=int, default=2, help="how often ld.check() runs")
    p.add_argument("--tau", type=float, default=learndrop.PolicyConfig().tau, help="change-score threshold")
    p.add_argument("--kappa", type=float, default=learndrop.PolicyConfig().kappa,
                   help="continuation threshold")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    train, test, classes = loaders(args)
    if args.model == "resnet18":
        model = torchvision.models.resnet18(num_classes=classes)
    else:
        model = learndrop.create_model(args.model, classes, train.dataset[0][0].shape[0], width=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    policy = learndrop.PolicyConfig(tau=args.tau, kappa=args.kappa)
    ld = learndrop.LearnDrop(model, optimizer, policy, total_steps=args.epochs * len(train))  # LD
    start = time.perf_counter()
    check_every = max(1, len(train) // args.checks_per_epoch)
    for epoch in range(args.epochs):
        model.train()
        for i, (x, y) in enumerate(train, 1):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            ld.step()  # LD: counts the step (its FLOPs, its learning rate)
            if i % check_every == 0:
                for drop in ld.check().drops:  # LD: scores every unit, drops the front that stopped learning
                    print(f"epoch {epoch + 1}: {drop.reason}")
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {accuracy(model, test):.3f}, "
              f"{ld.active_units} of {len(ld.names)} units training")
    fwd, total = ld.flops.reduction_pct()
    print(f"dropped {ld.dropped} of {len(ld.names)} units in {time.perf_counter() - start:.1f} s; "
          f"FLOPs saved: {fwd:.1f} % forward, {total:.1f} % forward + backward")


if __name__ == "__main__":
    main()
