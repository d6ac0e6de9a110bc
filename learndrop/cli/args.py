"""The command line's options: train's, shared with bench; a parser whose usage error is one line, exit 2."""

from __future__ import annotations

import argparse
from collections.abc import Collection, Mapping
from dataclasses import fields
from typing import Any

from ..config import PolicyConfig, RunConfig, parse_classes
from ..errors import LearnDropError
from ..method.registry import policy_names
from ..models import list_models

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise LearnDropError(f"{self.prog}: {message}")


def train_args(p: argparse.ArgumentParser) -> None:
    d, dp = RunConfig(), PolicyConfig()
    p.add_argument("--model", default=d.model, help=f"one of: {', '.join(list_models())}, or "
                   "torchvision:NAME (any torchvision CNN of a family `learndrop models` lists) (default "
                   "%(default)s)")
    p.add_argument("--width", type=float, default=d.width, help="channel multiplier (default %(default)s)")
    p.add_argument("--pretrained", action="store_true", help="start from ImageNet weights: "
                   "timm:efficientnet_lite0 offline (the pretrained extra), other models downloaded by "
                   "torchvision or timm")
    p.add_argument("--weights", default=None, metavar="FILE", help="start from this state dict (the model's "
                   "own keys, or those of the torchvision/timm model it is cut from); a head that does not "
                   "fit stays new")
    p.add_argument("--normalize", default=d.normalize, help="input normalisation: auto (what the weights "
                   "were trained with; the data's own from scratch), dataset, imagenet or inception (default "
                   "%(default)s)")
    p.add_argument("--init-from", default=None, metavar="RUN_ID",
                   help="fine-tune: start from that run's model, with a new head")
    p.add_argument("--dataset", default=d.dataset, help="shapes, mnist, fashion-mnist, cifar10, imagenette "
                   "or folder:PATH (default %(default)s)")
    p.add_argument("--data-root", default=d.data_root,
                   help="where torchvision data sets live (default %(default)s)")
    p.add_argument("--download", action="store_true", help="download the data set if it is missing")
    p.add_argument("--image-size", type=int, default=None, help="resize images to this many px")
    p.add_argument("--subset", type=int, default=None, help="train on the first N training images")
    p.add_argument("--classes", default=None, metavar="LIST",
                   help="keep only these class indices, e.g. 0-4 or 5,7,9 (renumbered from 0)")
    p.add_argument("--val-split", type=int, default=d.val_split, metavar="N",
                   help="hold N training images out as a validation split, the same for every run on these "
                        "data (default %(default)s: none; the test split is only reported)")
    p.add_argument("--stream", type=int, default=d.stream, metavar="K",
                   help="online training: the data arrive in K chunks, each trained --epochs epochs")
    p.add_argument("--stream-by", default=d.stream_by, help="order or class (default %(default)s)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=d.augment,
                   help="random crop + flip (default %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (default %(default)s)")
    p.add_argument("--lr-schedule", default=d.lr_schedule,
                   help="constant, cosine, onecycle or wsd (default %(default)s)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--policy", default=dp.name, help=f"{', '.join(policy_names())}: Learn&Drop, the baseline "
                   "(full training) or a peer on the same drop mechanics (README: Policies; default "
                   "%(default)s)")
    p.add_argument("--tau", type=float, default=dp.tau, help="change-score threshold (default %(default)s)")
    p.add_argument("--kappa", type=float, default=dp.kappa,
                   help="continuation threshold (default %(default)s)")
    p.add_argument("--warmup", type=int, default=dp.warmup,
                   help="checks before any drop (default %(default)s)")
    p.add_argument("--patience", type=int, default=dp.patience,
                   help="consecutive checks (default %(default)s)")
    p.add_argument("--window", type=int, default=dp.window,
                   help="continuation window in checks (default %(default)s)")
    p.add_argument("--measure", default=dp.measure, help="what d measures: params, directions or function "
                   "(1 - CKA of the unit's output on a validation probe batch; default %(default)s)")
    p.add_argument("--rewind-eps", type=float, default=dp.rewind_eps,
                   help="rewind gate: drop only if rewinding the unit to the last check changes the probe "
                   "loss by less than this share (0: off)")
    p.add_argument("--peak", default=dp.peak, help="what the change score divides d by: own (the unit's own "
                   "peak so far) or network (the largest change of any unit at that check) (default "
                   "%(default)s)")
    p.add_argument("--anneal", type=int, default=dp.anneal,
                   help="checks to anneal a candidate's lr before it drops")
    p.add_argument("--paced", action=argparse.BooleanOptionalAction, default=dp.paced,
                   help="a unit drops no earlier than a linear schedule from --pace-start to the end of "
                   "training would drop it (default %(default)s)")
    p.add_argument("--pace-start", type=float, default=dp.pace_start,
                   help="the pace's start: the share of training before the first unit may drop (default "
                   "%(default)s)")
    p.add_argument("--lr-normalized", action=argparse.BooleanOptionalAction, default=dp.lr_normalized,
                   help="measure d per unit of learning rate (default %(default)s)")
    p.add_argument("--inherit-peaks", action=argparse.BooleanOptionalAction, default=dp.inherit_peaks,
                   help="with --init-from: start each unit's peak change at the one it reached in that run "
                        "(default %(default)s)")
    p.add_argument("--freeze-candidates", action="store_true", help="freeze candidates behind the frontier")
    peer = "%s (README: Policies; default %%(default)s)"  # the peers' settings, named after their fields
    p.add_argument("--freezeout-t0", type=float, default=dp.freezeout_t0,
                   help=peer % "freezeout: t_0 of its t_i")
    p.add_argument("--freezeout-scale", default=dp.freezeout_scale,
                   help=peer % "freezeout: linear, squared or cubic")
    p.add_argument("--freezeout-scale-lr", action=argparse.BooleanOptionalAction,
                   default=dp.freezeout_scale_lr, help=peer % "freezeout: start each unit at lr / t_i")
    p.add_argument("--autofreeze-percentile", type=float, default=dp.autofreeze_percentile,
                   help=peer % "autofreeze: the percentile of the units' gradient-norm change rates")
    p.add_argument("--schedule-start", type=float, default=dp.schedule_start,
                   help=peer % "schedule: first drop at")
    p.add_argument("--schedule-end", type=float, default=dp.schedule_end,
                   help=peer % "schedule: last drop at")
    p.add_argument("--k", type=int, default=dp.k, help=peer % "freeze-first-k: units dropped before training")
    p.add_argument("--checks-per-epoch", type=int, default=d.checks_per_epoch)
    p.add_argument("--cache", action=argparse.BooleanOptionalAction, default=d.cache,
                   help="cache the dropped prefix's output (default %(default)s)")
    p.add_argument("--cache-max-mb", type=float, default=d.cache_max_mb)
    p.add_argument("--cache-dtype", default=d.cache_dtype, help="float16 or float32 (default %(default)s)")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or mps (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic algorithms (GPU: slower, resumes exact)")
    p.add_argument("--runs-dir", default=None,
                   help="where runs are stored (default ./runs or $LEARNDROP_RUNS_DIR)")
    p.add_argument("--resume", default=None, metavar="RUN_ID", help="continue a stopped, failed or "
                   "interrupted run from its last epoch checkpoint (other options are taken from that run, "
                   "but --device)")


def train_defaults() -> dict[str, Any]:
    """train's options (by dest) and their defaults."""
    p = Parser(prog="learndrop train")
    train_args(p)
    return vars(p.parse_args([]))


def given_only(p: argparse.ArgumentParser, dests: Collection[str], helps: Mapping[str, str]) -> None:
    """Make these options absent from the parsed namespace unless given (bench: a built-in pair keeps its own
    value where an option is not given); their help names train's default, or is replaced by ``helps``."""
    for action in p._actions:
        if action.dest in dests:
            if action.help:
                action.help = helps.get(action.dest, action.help.replace("%(default)s", str(action.default)))
            action.default = argparse.SUPPRESS


def config_from_args(a: argparse.Namespace) -> RunConfig:
    """The RunConfig train's options describe: every option is named after its field (``--policy`` sets the
    policy's name), so the config is read field by field, never listed twice."""
    given = vars(a)
    policy = PolicyConfig(**{f.name: given["policy" if f.name == "name" else f.name]
                             for f in fields(PolicyConfig)})
    run = {f.name: given[f.name] for f in fields(RunConfig) if f.name in given and f.name != "policy"}
    return RunConfig(**{**run, "classes": parse_classes(run["classes"])}, policy=policy)
