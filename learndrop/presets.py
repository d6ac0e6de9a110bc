"""The dashboard's run presets and its form: fields in, a validated ``RunConfig`` out.

A field error is a ``LearnDropError`` whose one line the page shows next to the field it names
(``error_field``), so nothing starts on bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .config import PolicyConfig, RunConfig
from .errors import LearnDropError

DATASET_CHOICES = ("shapes", "mnist", "fashion-mnist", "cifar10", "imagenette", "folder")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
POLICY_CHOICES = ("learndrop", "none")

# the form's fields, in the order the page shows them, with the Quick demo's values
QUICK_DEMO: dict[str, Any] = {
    "model": "tiny", "width": 1.0, "dataset": "shapes", "data_root": "data", "download": False, "epochs": 8,
    "batch_size": 128, "lr": 0.05, "augment": False, "device": "auto", "seed": 0, "policy": "learndrop",
    "checks_per_epoch": 2, "baseline": True,
}
PRESETS: dict[str, dict[str, Any]] = {
    # 10,000 synthetic 32 px images, a 6-unit CNN: about 15 s of training on a laptop CPU, then its baseline
    "Quick demo": QUICK_DEMO,
    "MNIST · VGG-11": {**QUICK_DEMO, "model": "vgg11", "width": 0.5, "dataset": "mnist", "download": True,
                       "epochs": 10, "lr": 0.05},
    "CIFAR-10 · ResNet-20": {**QUICK_DEMO, "model": "resnet20", "width": 1.0, "dataset": "cifar10", "download": True,
                             "epochs": 30, "lr": 0.1, "checks_per_epoch": 1},
    "Custom": {},  # keeps whatever the fields hold
}
THRESHOLDS = ("tau", "kappa", "warmup", "patience")

# words in an error line -> the form field it is about (first match wins)
_ERROR_FIELDS = [
    ("data root", "data_root"), ("image folder", "data_root"), ("no images", "data_root"),
    ("class folder", "data_root"),
    ("data set", "dataset"), ("batch size", "batch_size"), ("batch_size", "batch_size"), ("training set", "batch_size"),
    ("checks_per_epoch", "checks_per_epoch"), ("epochs", "epochs"), ("width", "width"), ("lr ", "lr"),
    ("learning rate", "lr"), ("seed", "seed"), ("device", "device"), ("model", "model"), ("policy", "policy"),
    ("tau", "tau"), ("kappa", "kappa"), ("warmup", "warmup"), ("patience", "patience"),
]


def config_from_fields(fields: dict[str, Any], thresholds: dict[str, Any]) -> RunConfig:
    """Build and validate the run the form describes; ``LearnDropError`` (one line) when it can't run."""
    dataset = fields["dataset"]
    root = str(fields.get("data_root") or "").strip()
    if dataset == "folder":
        if not root:
            raise LearnDropError("data root: type the image folder to train on")
        dataset = f"folder:{root}"
    policy = PolicyConfig(name=fields["policy"], **{k: thresholds[k] for k in THRESHOLDS})
    config = RunConfig(model=fields["model"], width=float(fields["width"]), dataset=dataset, data_root=root or "data",
                       download=bool(fields["download"]), epochs=int(fields["epochs"]),
                       batch_size=int(fields["batch_size"]), lr=float(fields["lr"]), augment=bool(fields["augment"]),
                       device=fields["device"], seed=int(fields["seed"]), policy=policy,
                       checks_per_epoch=int(fields["checks_per_epoch"]))
    config.validate()
    check_setup(config)
    return config


def check_setup(config: RunConfig) -> None:
    """The quick checks worth doing before queueing: the model exists, data and device are there."""
    from .models import model_info  # the registry of models, no torch work

    model_info(config.model)
    if config.dataset.startswith("folder:"):
        folder = Path(config.dataset[len("folder:"):])
        if not folder.is_dir():
            raise LearnDropError(f"image folder {str(folder)!r} does not exist")
    elif config.dataset != "shapes" and not config.download and not Path(config.data_root).is_dir():
        raise LearnDropError(f"data root {config.data_root!r} does not exist; type the folder that holds "
                             f"{config.dataset}, or tick download")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise LearnDropError("device cuda asked for, but no CUDA GPU is available here; choose auto or cpu")
    if config.device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LearnDropError("device mps asked for, but Apple's MPS backend is not available here")


def error_field(message: str) -> str | None:
    """The form field an error line is about, or None (then the page shows it by the Start button)."""
    low = message.lower()
    for words, name in _ERROR_FIELDS:
        if low.startswith(words) or f" {words}" in low or f"{words} " in low[:40]:
            return name
    return None


def fields_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The form's fields for a stored run's config (to run it again, or see how it was set up)."""
    dataset = str(config.get("dataset", "shapes"))
    folder = dataset.startswith("folder:")
    fields = {k: config.get(k, v) for k, v in QUICK_DEMO.items() if k in config}
    fields.update(dataset="folder" if folder else dataset,
                  data_root=dataset[len("folder:"):] if folder else config.get("data_root", "data"),
                  policy=(config.get("policy") or {}).get("name", "learndrop"))
    return fields


def thresholds_from_config(config: dict[str, Any]) -> dict[str, Any]:
    policy = config.get("policy") or {}
    default = PolicyConfig().thresholds()
    return {k: policy.get(k, default[k]) for k in THRESHOLDS}
