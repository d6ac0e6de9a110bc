"""The benchmark's pairs: a model on a data set with the hyper-parameters every policy shares.

A scenario (``scratch``, ``finetune``, ``transfer``, ``stream``) holds pairs in sizes: ``full`` (the figures
of BENCHMARKS.md), ``quick`` (minutes: regression checks) and, for ``scratch``, ``heldout`` (the three pairs
``bench --frontier --leave-one-out`` chooses settings on two of and judges on the third). ``custom_pair``
makes a pair of any ``train`` config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import PolicyConfig, RunConfig
from ..errors import LearnDropError

RESULTS_DIR = Path("benchmarks") / "results"


@dataclass(frozen=True)
class Pair:
    """One comparison: a model on a data set, with the hyper-parameters both policies share."""

    label: str
    config: dict[str, Any]  # RunConfig fields (dataset may use {root})
    pretrain: dict[str, Any] | None = None  # finetune scenario: the run whose model both start from


# Hyper-parameters shared by every pair: SGD with Nesterov momentum, a warm-up/stable/decay schedule.
COMMON = dict(batch_size=128, lr=0.05, lr_schedule="wsd", weight_decay=5e-4, augment=True, device="auto")
CIFAR = "folder:{root}/cifar10"
LR_TRANSFER = 0.03  # chosen on the validation split: 0.01 and 0.03 tried (docs/benchmarks/transfer.md)

SCENARIOS: dict[str, dict[str, list[Pair]]] = {
    "scratch": {
        "full": [
            Pair("VGG-11 x0.25 / CIFAR-10", dict(model="vgg11", width=0.25, dataset=CIFAR, epochs=15)),
            Pair("ResNet-20 / CIFAR-10 (20k)",
                 dict(model="resnet20", dataset=CIFAR, epochs=12, subset=20_000)),
            Pair("VGG-16 x0.25 / CIFAR-10 (25k)", dict(model="vgg16", width=0.25, dataset=CIFAR, epochs=15,
                                                       subset=25_000)),
            Pair("VGG-11 x0.25 / MNIST",
                 dict(model="vgg11", width=0.25, dataset="mnist", epochs=6, augment=False)),
            Pair("ResNet-20 / MNIST (30k)", dict(model="resnet20", dataset="mnist", epochs=4, subset=30_000,
                                                 augment=False)),
        ],
        # three pairs a setting is chosen on two of and judged on the third (bench --frontier --leave-one-out)
        "heldout": [
            Pair("VGG-11 x0.25 / CIFAR-10 (10k)", dict(model="vgg11", width=0.25, dataset=CIFAR, epochs=8,
                                                       subset=10_000, val_split=2_000)),
            Pair("ResNet-20 / CIFAR-10 (10k)", dict(model="resnet20", dataset=CIFAR, epochs=8, subset=10_000,
                                                    val_split=2_000)),
            Pair("VGG-11 x0.25 / MNIST (10k)", dict(model="vgg11", width=0.25, dataset="mnist", epochs=4,
                                                    subset=10_000, val_split=2_000, augment=False)),
        ],
        "quick": [
            Pair("VGG-11 x0.25 / CIFAR-10 (5k)", dict(model="vgg11", width=0.25, dataset=CIFAR, epochs=6,
                                                      subset=5_000)),
            Pair("VGG-11 x0.25 / MNIST (6k)", dict(model="vgg11", width=0.25, dataset="mnist", epochs=3,
                                                   subset=6_000, augment=False)),
        ],
    },
    "finetune": {
        "full": [
            Pair("VGG-11 x0.25 / CIFAR-10 0-4 -> 5-9",
                 dict(model="vgg11", width=0.25, dataset=CIFAR, classes=(5, 6, 7, 8, 9), epochs=8, lr=0.02),
                 pretrain=dict(classes=(0, 1, 2, 3, 4), epochs=15, lr=0.05)),
        ],
        "quick": [
            Pair("VGG-11 x0.25 / CIFAR-10 0-4 -> 5-9 (5k)",
                 dict(model="vgg11", width=0.25, dataset=CIFAR, classes=(5, 6, 7, 8, 9), epochs=4, lr=0.02,
                      subset=5_000),
                 pretrain=dict(classes=(0, 1, 2, 3, 4), epochs=6, lr=0.05)),
        ],
    },
    # an ImageNet network someone else pre-trained (EfficientNet-Lite0, the pretrained extra's weights,
    # offline), fine-tuned on CIFAR-10 resized to 64 px: the case the paper says Learn&Drop is for
    "transfer": {
        "full": [
            Pair("EfficientNet-Lite0 (ImageNet) / CIFAR-10 at 64 px (10k)",
                 dict(model="timm:efficientnet_lite0", pretrained=True, dataset=CIFAR, image_size=64,
                      subset=10_000, val_split=2_000, epochs=6, lr=LR_TRANSFER, checks_per_epoch=2)),
        ],
        "quick": [
            Pair("EfficientNet-Lite0 (ImageNet) / CIFAR-10 at 64 px (3k)",
                 dict(model="timm:efficientnet_lite0", pretrained=True, dataset=CIFAR, image_size=64,
                      subset=3_000, val_split=1_000, epochs=3, lr=LR_TRANSFER, checks_per_epoch=2)),
        ],
    },
    "stream": {
        "full": [
            Pair("VGG-11 x0.25 / CIFAR-10, 5 chunks",
                 dict(model="vgg11", width=0.25, dataset=CIFAR, stream=5, epochs=3)),
        ],
        "quick": [
            Pair("VGG-11 x0.25 / CIFAR-10, 3 chunks (6k)",
                 dict(model="vgg11", width=0.25, dataset=CIFAR, stream=3, epochs=2, subset=6_000)),
        ],
    },
}


def pair_config(pair: Pair, root: str, policy: PolicyConfig, overrides: dict[str, Any] | None = None,
                **extra: Any) -> RunConfig:
    """The run config of ``pair`` under ``policy``: ``COMMON``, the pair's own, ``extra``, then ``overrides``;
    ``{root}`` in its data set is the data root."""
    overrides = overrides or {}
    fields = {**COMMON, **pair.config, **extra, **overrides}
    # not format(): a custom folder may hold braces
    fields["dataset"] = fields["dataset"].replace("{root}", root)
    fields.setdefault("data_root", root)
    return RunConfig(policy=policy, **fields)


def custom_pair(config: RunConfig) -> Pair:
    """One pair from a full training config (``bench --model M --dataset D ...``): its own settings, not
    ``COMMON``'s (the data root is ``bench``'s); labelled by model, width, data set and subset."""
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("policy", "data_root")}
    width = f" x{config.width:g}" if config.width != 1 else ""
    subset = f" ({config.subset:,})" if config.subset else ""
    return Pair(f"{config.model}{width} / {config.dataset}{subset}", fields)


def choose_pairs(scenario: str, quick: bool, only: str | None, pairs: list[Pair] | None = None) -> list[Pair]:
    """``pairs`` as given, else the scenario's built-in pairs (quick or full) whose label contains
    ``only``."""
    if pairs is None and scenario not in SCENARIOS:
        raise LearnDropError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    if pairs is None:
        pairs = [p for p in SCENARIOS[scenario]["quick" if quick else "full"]
                 if not only or only.lower() in p.label.lower()]
    if not pairs:
        raise LearnDropError(f"no pair matches {only!r}")
    return pairs


def default_root() -> str:
    """The project's shared data beside the checkout when it is there, else ./data."""
    return "../shared/data" if Path("../shared/data").is_dir() else "data"
