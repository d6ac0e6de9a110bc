"""The Train page's form: its presets, and its fields in, a validated ``RunConfig`` out.

It lives with the dashboard because its vocabulary is the page's (a "Start from" choice, a data root that
is also an image folder); the library only knows ``RunConfig``. A bad field is a ``LearnDropError`` whose
``field`` names the setting it is about; ``widget_of`` turns that into the widget the page shows the one
line under, so nothing starts on bad input and no message text is parsed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from learndrop.config import THRESHOLDS, PolicyConfig, RunConfig
from learndrop.config import parse_classes as parse_classes_text
from learndrop.errors import LearnDropError
from learndrop.method.registry import policy_names
from learndrop.models import list_models
from learndrop.models.weights import PACKAGED
from learndrop.report.tables import format_classes
from learndrop.runs.store import RunStore, validate_run_id

DATASET_CHOICES = ("shapes", "mnist", "fashion-mnist", "cifar10", "imagenette", "folder")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
POLICY_CHOICES = policy_names()  # learndrop, none and the peers, as registered
SCRATCH, PRETRAINED = "scratch", "pretrained"  # the "Start from" field's values besides a run id
STREAM_BY_CHOICES = ("order", "class")
# channels and side (px) of the built-in data sets, to check a fine-tuning source before queueing
INPUT_SHAPES = {"shapes": (3, 32), "mnist": (1, 28), "fashion-mnist": (1, 28), "cifar10": (3, 32),
                "imagenette": (3, 64)}

# the form's fields, in the order the page shows them, with the Quick demo's values
QUICK_DEMO: dict[str, Any] = {
    "model": "tiny", "width": 1.0, "dataset": "shapes", "data_root": "data", "download": False, "epochs": 8,
    "batch_size": 128, "lr": 0.05, "augment": False, "device": "auto", "seed": 0, "policy": "learndrop",
    "paced": True, "checks_per_epoch": 2, "baseline": True, "init": SCRATCH, "classes": "", "stream": 1,
    "stream_by": "order", "val_split": 0, "tensorboard": "", "world_size": 1, "weights": "", "subset": 0,
}
# and the networks with offline weights
MODEL_CHOICES = (*list_models(), *(f"timm:{name}" for name in PACKAGED))


def transfer_preset() -> dict[str, Any]:
    """Google's ImageNet EfficientNet-Lite0 (its weights ship in a package: offline) fine-tuned on 5,000
    CIFAR-10 images where they are at hand (the project's shared folder, or torchvision's in the data root),
    else on the embedded shapes: which units of a network trained on another task still need to learn for this
    one."""
    shared = Path("../shared/data/cifar10")
    if shared.is_dir():
        data = {"dataset": "folder", "data_root": str(shared), "subset": 5000}
    elif (Path("data") / "cifar-10-batches-py").is_dir():
        data = {"dataset": "cifar10", "data_root": "data", "subset": 5000}
    else:
        data = {"dataset": "shapes", "data_root": "data", "subset": 3000}
    return {**QUICK_DEMO, **data, "model": "timm:efficientnet_lite0", "init": PRETRAINED, "epochs": 4,
            "lr": 0.03}


PRESETS: dict[str, dict[str, Any]] = {
    # 10,000 synthetic 32 px images, a 6-unit CNN: about 15 s of training on a laptop CPU, then its baseline
    "Quick demo": QUICK_DEMO,
    "MNIST · VGG-11": {**QUICK_DEMO, "model": "vgg11", "width": 0.5, "dataset": "mnist", "download": True,
                       "epochs": 10, "lr": 0.05},
    "CIFAR-10 · ResNet-20": {**QUICK_DEMO, "model": "resnet20", "width": 1.0, "dataset": "cifar10",
                             "download": True, "epochs": 30, "lr": 0.1, "checks_per_epoch": 1},
    # a network someone else pre-trained on ImageNet, fine-tuned: about 2 minutes on 2 CPU cores, then its
    # baseline
    "Fine-tune ImageNet EfficientNet-Lite0": transfer_preset(),
    "Custom": {},  # keeps whatever the fields hold
}

# a setting an error names (``LearnDropError.field``) -> the form widget it is typed in, where the two differ
_WIDGETS = {"pretrained": "init", "init_from": "init"}  # (weights, subset: widgets of their own names)


def config_from_fields(fields: dict[str, Any], thresholds: dict[str, Any], store: RunStore | None = None
                       ) -> RunConfig:
    """Build and validate the run the form describes; ``LearnDropError`` (one line) when it can't run.

    ``store`` is where a fine-tuning source run (field ``init``: a run id) is looked up."""
    dataset = fields["dataset"]
    init = fields.get("init") or SCRATCH
    root = str(fields.get("data_root") or "").strip()
    if dataset == "folder":
        if not root:
            raise LearnDropError("data root: type the image folder to train on", field="data_root")
        dataset = f"folder:{root}"
    policy = PolicyConfig(name=fields["policy"], paced=bool(fields.get("paced", True)),
                          **{k: thresholds[k] for k in THRESHOLDS})
    config = RunConfig(model=fields["model"], width=float(fields["width"]), dataset=dataset,
                       data_root=root or "data",
                       download=bool(fields["download"]), epochs=int(fields["epochs"]),
                       batch_size=int(fields["batch_size"]), lr=float(fields["lr"]),
                       augment=bool(fields["augment"]),
                       device=fields["device"], seed=int(fields["seed"]), policy=policy,
                       checks_per_epoch=int(fields["checks_per_epoch"]), pretrained=init == PRETRAINED,
                       init_from=None if init in (SCRATCH, PRETRAINED) else init,
                       classes=parse_classes(fields.get("classes")), stream=int(fields.get("stream", 1)),
                       stream_by=fields.get("stream_by", "order"), val_split=int(fields.get("val_split", 0)),
                       world_size=int(fields.get("world_size", 1)),
                       weights=str(fields.get("weights") or "").strip() or None,
                       subset=int(fields.get("subset") or 0) or None)
    check_setup(config, store)
    return config


def parse_classes(text: str | None) -> tuple[int, ...] | None:
    """The classes field: ``"5-9"`` -> (5, 6, 7, 8, 9), ``"0,2,4"`` -> (0, 2, 4); empty -> None (all)."""
    try:
        return parse_classes_text(text)
    except LearnDropError:
        # the library's line speaks of the setting; this one tells what to type in the field
        raise LearnDropError(f"classes {str(text).strip()!r}: type class indices like 5-9 or 0,2,4 (or leave "
                             "it empty for all)", field="classes") from None


def check_setup(config: RunConfig, store: RunStore | None = None) -> None:
    """The quick checks worth doing before queueing: the library's preflight (values, policy, model, device,
    processes), then the data there, the pretrained weights to be had, the fine-tuning source run fits."""
    from learndrop.models import create_model  # the registry of models
    from learndrop.training.preflight import preflight

    preflight(config)
    shape = _input_shape(config)
    # builds the network once: torchvision loads (or downloads) the weights, or says why not
    if config.pretrained:
        create_model(config.model, 10, *(shape or (3, 32)), config.width, pretrained=True)
    if config.init_from:
        _check_source(config, store or RunStore(), shape)
    if config.dataset.startswith("folder:"):
        folder = Path(config.dataset[len("folder:"):])
        if not folder.is_dir():
            raise LearnDropError(f"image folder {str(folder)!r} does not exist", field="dataset")
    elif config.dataset != "shapes" and not config.download and not Path(config.data_root).is_dir():
        raise LearnDropError(f"data root {config.data_root!r} does not exist; type the folder that holds "
                             f"{config.dataset}, or tick download", field="data_root")


def _input_shape(config: RunConfig) -> tuple[int, int] | None:
    """(channels, side) of a built-in data set's images; None for an image folder (known once loaded)."""
    shape = INPUT_SHAPES.get(config.dataset)
    if shape is None:
        return None
    return (shape[0], config.image_size) if config.image_size else shape


def _check_source(config: RunConfig, store: RunStore, shape: tuple[int, int] | None) -> None:
    """The run to fine-tune from exists, saved its model, and that model's backbone fits this network."""
    from learndrop.models import create_model
    from learndrop.runs.finetune import source_of
    from learndrop.training.finetune import load_backbone

    run_id = config.init_from
    try:
        validate_run_id(run_id)
        if not store.exists(run_id):
            raise LearnDropError(f"there is no run {run_id} in {str(store.root)!r}")
        if not (store.path(run_id) / "model.pt").is_file():
            raise LearnDropError(f"run {run_id} saved no model (model.pt) to start from")
        source = store.config(run_id)
        if (source.model, source.width) != (config.model, config.width):
            raise LearnDropError(f"run {run_id} trained {source.model} at width {source.width:g}; set Model "
                                 "and Width to those to fine-tune it")
        if shape is not None:  # same model: does its saved backbone fit these images?
            load_backbone(create_model(config.model, 10, *shape, config.width), config,
                          source_of(store, run_id))
    except LearnDropError as exc:
        raise LearnDropError("start from: " + str(exc).replace(f"--init-from {run_id}: ", f"run {run_id}: "),
                             field="init_from") from None


def widget_of(exc: LearnDropError, fields: dict[str, Any]) -> str | None:
    """The form widget an error is about (a key of ``QUICK_DEMO`` or a threshold slider), from the setting its
    ``field`` names; None when it names no setting the form shows (then the page shows it by the Start
    button).

    An image folder is a ``dataset`` of the form ``folder:PATH`` whose path is typed in Data root, so an
    error about the dataset of such a form lands there.
    """
    if exc.field == "dataset" and fields.get("dataset") == "folder":
        return "data_root"
    widget = _WIDGETS.get(exc.field or "", exc.field)
    return widget if widget in QUICK_DEMO or widget in THRESHOLDS else None


def fields_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The form's fields for a stored run's config (to run it again, or see how it was set up)."""
    dataset = str(config.get("dataset", "shapes"))
    folder = dataset.startswith("folder:")
    fields = {k: config.get(k, v) for k, v in QUICK_DEMO.items() if k in config}
    fields.update(dataset="folder" if folder else dataset,
                  data_root=dataset[len("folder:"):] if folder else config.get("data_root", "data"),
                  policy=(config.get("policy") or {}).get("name", "learndrop"),
                  paced=PolicyConfig.from_record(config.get("policy") or {}).paced,
                  init=config.get("init_from") or (PRETRAINED if config.get("pretrained") else SCRATCH),
                  classes=format_classes(config.get("classes")), weights=config.get("weights") or "",
                  subset=config.get("subset") or 0)
    return fields


def thresholds_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The thresholds a stored run's config recorded (today's defaults for any it does not name)."""
    return PolicyConfig.from_record(config.get("policy") or {}).thresholds()


# the Threshold explorer's pace (the paced rule, ``PolicyConfig.paced``)
PACED = ("The paced rule (the default; --no-paced turns it off): a unit that meets the rule still waits for "
         "a linear schedule's time for it. The rule decides whether a unit has stopped learning, the pace "
         "how soon it may go.")
PACE_FROM = ("Where the pace starts (--pace-start): unit i of the m droppable units may drop from "
             "start + (1 − start)·(i + 1)/m of training on.")
