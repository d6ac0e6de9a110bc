"""Run configuration: ``RunConfig``, everything that defines a training run (its drop rule, ``PolicyConfig``,
lives in ``policy_config``), validated, saved whole next to the results."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from . import typecheck
from .errors import LearnDropError, check_choice
from .policy_config import THRESHOLDS, PolicyConfig  # noqa: F401  (learndrop.config.PolicyConfig, as ever)

LR_SCHEDULES = ("constant", "cosine", "onecycle", "wsd")
CACHE_DTYPES = ("float16", "float32")
DEVICES = ("auto", "cpu", "cuda", "mps")
NORMALIZE = ("auto", "dataset", "imagenet", "inception")
MAX_CLASSES = 100_000  # class indices one run may keep (ImageNet-21k has 21,841 classes)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run. Saved as the run's config.json."""

    # model
    model: str = "tiny"  # a name from learndrop.models.list_models()
    width: float = 1.0  # channel multiplier (VGGs, tiny, CIFAR ResNets)
    # start from ImageNet weights: a package's, offline (timm:efficientnet_lite0), or torchvision's or timm's
    # download
    pretrained: bool = False
    weights: str | None = None  # start from this state dict file (models.weights.load_weights)
    init_from: str | None = None  # start from the model of this earlier run (fine-tuning), new head
    # data
    dataset: str = "shapes"  # shapes | mnist | fashion-mnist | cifar10 | imagenette | folder:PATH
    data_root: str = "data"  # folder torchvision's data sets live in (or are downloaded to)
    download: bool = False  # let torchvision download the data set when it is missing
    image_size: int | None = None  # px; None: the data set's own size
    subset: int | None = None  # train on the first N training images only
    # keep only these class indices (train and test), renumbered 0..k-1
    classes: tuple[int, ...] | None = None
    val_split: int = 0  # training images held out as a validation split (the same for every run); 0: none
    augment: bool = False  # random crop (4 px padding) + horizontal flip where it makes sense
    # input normalisation: auto (what the starting weights were trained with; the training set's own
    # statistics from scratch; ImageNet's for a --weights file) | dataset | imagenet | inception (mean = std =
    # 0.5). A run records what auto resolved to.
    normalize: str = "auto"
    # optimisation: SGD with Nesterov momentum
    epochs: int = 8
    batch_size: int = 128
    lr: float = 0.05  # peak learning rate
    lr_schedule: str = "constant"  # constant | cosine | onecycle | wsd (warm-up, stable, decay)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    # Learn&Drop
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    checks_per_epoch: int = 1  # scoring points per epoch
    # keep the dropped prefix's output for the training set (when inputs are deterministic)
    cache: bool = True
    cache_max_mb: float = 2048.0  # MiB cap on that cache; above it the prefix is recomputed under no_grad
    cache_dtype: str = "float16"  # float16 | float32
    # online training (data arriving in chunks)
    stream: int = 1  # split the training set into this many chunks that arrive one after another
    stream_by: str = "order"  # order | class
    # system
    device: str = "auto"  # auto | cpu | cuda | mps
    # deterministic algorithms (cuDNN's benchmark off): bit-identical resumes on a GPU
    deterministic: bool = False
    # data-parallel processes (torchrun); batch_size is the global batch, split among them
    world_size: int = 1
    seed: int = 0
    progress_every: int = 20  # steps between progress events (each costs one device sync)
    instrument: bool = True  # False: no scores, progress or FLOPs measurement (overhead reference)

    def validate(self) -> None:
        """Raise ``LearnDropError`` with one readable line for the first thing that is wrong."""
        self.policy.validate()
        _positive_int("epochs", self.epochs, 100_000)
        _positive_int("batch_size", self.batch_size, 1_000_000)
        _positive_int("checks_per_epoch", self.checks_per_epoch, 10_000)
        _positive_int("stream", self.stream, 10_000)
        _positive_int("progress_every", self.progress_every, 1_000_000)
        _positive_int("world_size", self.world_size, 4096)
        if self.batch_size % self.world_size:
            raise LearnDropError(f"batch size {self.batch_size} does not split evenly among "
                                 f"{self.world_size} processes: it is the global batch", field="batch_size")
        if self.world_size > 1 and self.stream > 1:
            raise LearnDropError("--stream does not run data-parallel yet: train it in one process",
                                 field="stream")
        if self.classes is not None:
            if len(self.classes) > MAX_CLASSES:
                raise LearnDropError(f"classes names {len(self.classes):,} classes, more than "
                                     f"{MAX_CLASSES:,}", field="classes")
            if (len(self.classes) < 2 or len(set(self.classes)) != len(self.classes)
                    or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                               for c in self.classes)):
                raise LearnDropError("classes must be at least 2 distinct class indices, got "
                                     f"{list(self.classes)}", field="classes")
        if self.subset is not None:
            _positive_int("subset", self.subset, 10**9)
        if isinstance(self.val_split, bool) or not isinstance(self.val_split, int) or self.val_split < 0:
            raise LearnDropError(f"val_split must be a non-negative integer, got {self.val_split}",
                                 field="val_split")
        if self.image_size is not None:
            _positive_int("image_size", self.image_size, 4096)
            if self.image_size < 8:
                raise LearnDropError(f"image_size must be at least 8 px, got {self.image_size}",
                                     field="image_size")
        for name, low_inclusive, high in (("lr", False, 10.0), ("momentum", True, 1.0),
                                          ("weight_decay", True, 1.0), ("label_smoothing", True, 1.0)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and math.isfinite(value) and value < high
            ok = ok and (value >= 0 if low_inclusive else value > 0)
            if not ok:
                interval = f"{'[' if low_inclusive else '('}0, {high:g})"
                raise LearnDropError(f"{name} must be a finite number in {interval}, got {value}", field=name)
        if not (isinstance(self.width, (int, float)) and math.isfinite(self.width) and 0 < self.width <= 16):
            raise LearnDropError(f"width must be in (0, 16], got {self.width}", field="width")
        if not (math.isfinite(self.cache_max_mb) and self.cache_max_mb >= 0):
            raise LearnDropError(f"cache_max_mb must be >= 0, got {self.cache_max_mb}", field="cache_max_mb")
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_choice("cache_dtype", self.cache_dtype, CACHE_DTYPES)
        check_choice("device", self.device, DEVICES)
        check_choice("stream_by", self.stream_by, ("order", "class"))
        check_choice("normalize", self.normalize, NORMALIZE)
        starts = [name for name, given in (("--pretrained", self.pretrained), ("--weights", self.weights),
                                           ("--init-from", self.init_from)) if given]
        if len(starts) > 1:
            raise LearnDropError(f"{' and '.join(starts)}: give one place the weights start from",
                                 field="weights" if self.weights else "init_from")
        if not isinstance(self.seed, int) or not (0 <= self.seed < 2**63):
            raise LearnDropError(f"seed must be a non-negative integer, got {self.seed}", field="seed")

    def __post_init__(self) -> None:
        """An image folder is recorded by its absolute path, so that runs started from different folders
        (``../shared/data/cifar10`` beside ``/work/shared/data/cifar10``) count as the same set-up."""
        prefix = "folder:"
        if isinstance(self.dataset, str) and self.dataset.startswith(prefix) and self.dataset[len(prefix):]:
            folder = os.path.abspath(os.path.expanduser(self.dataset[len(prefix):]))
            object.__setattr__(self, "dataset", prefix + folder)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """The config a config.json (or ``--config`` file) holds; ``LearnDropError`` naming the field for an
        unknown field or a value of the wrong type (``"tau": "x"``, ``"kappa": null``). Values are checked by
        ``validate``."""
        if not isinstance(data, dict):
            raise LearnDropError(f"a run config is a JSON object of settings, not {json.dumps(data)[:40]}")
        data = dict(data)
        policy = data.pop("policy", None) or {}
        if not isinstance(policy, dict):
            raise LearnDropError(f"policy must be an object of policy settings ({{\"name\": \"learndrop\", "
                                 f"\"tau\": 0.4, ...}}), got {json.dumps(policy)[:40]}", field="policy")
        if isinstance(data.get("classes"), list):
            data["classes"] = tuple(data["classes"])
        return cls(policy=PolicyConfig.from_record(_known(PolicyConfig, policy)), **_known(cls, data))


def parse_classes(text: str | None) -> tuple[int, ...] | None:
    """The classes setting as people type it: ``"0-4"`` -> (0, 1, 2, 3, 4), ``"5,7,9"`` -> (5, 7, 9);
    empty -> None (every class). One syntax for every front end (the dashboard's Classes field, and the
    CLI's ``--classes`` can use it); ``RunConfig.validate`` then checks the indices themselves."""
    text = str(text or "").strip()
    if not text:
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            span = range(int(low), int(high) + 1) if high else range(int(low), int(low) + 1)
            # counted before the list is made: "0-999999999" is one range
            if len(out) + len(span) > MAX_CLASSES:
                raise LearnDropError(f"classes {text[:40]!r} names more than {MAX_CLASSES:,} classes",
                                     field="classes")
            out.extend(span)
    except ValueError:
        raise LearnDropError(f"classes {text[:40]!r}: use class indices like 0-4 or 5,7,9",
                             field="classes") from None
    return tuple(out)


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data``, once every key is a field of ``cls`` and every value of its field's type."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise LearnDropError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    hints = typecheck.hints(cls)
    for name, value in data.items():
        if not typecheck.fits(value, hints[name]):
            raise LearnDropError(f"{name} must be {typecheck.describe(hints[name])}, got "
                                 f"{json.dumps(value)[:40]}",
                                 field=name)
    if isinstance(data.get("classes"), tuple) and not all(typecheck.fits(c, int) for c in data["classes"]):
        raise LearnDropError(f"classes must be a list of class indices, got {list(data['classes'])}",
                             field="classes")
    return data


def _positive_int(name: str, value: object, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not (1 <= value <= maximum):
        raise LearnDropError(f"{name} must be an integer from 1 to {maximum:,}, got {value}", field=name)
