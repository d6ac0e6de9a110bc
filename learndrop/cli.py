"""``python -m learndrop``: train, runs, models, datasets. Bad input: one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import events as ev
from .config import POLICIES, PolicyConfig, RunConfig, parse_classes
from .data.datasets import list_datasets
from .errors import LearnDropError
from .models import list_models, model_info
from .runs.files import no_space_line
from .runs.store import RunStore, default_runs_dir

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise LearnDropError(f"{self.prog}: {message}")


def _train_args(p: argparse.ArgumentParser) -> None:
    d, dp = RunConfig(), PolicyConfig()
    p.add_argument("--model", default=d.model, help=f"one of: {', '.join(list_models())}, or torchvision:NAME "
                   "(any torchvision CNN of a family `learndrop models` lists) (default %(default)s)")
    p.add_argument("--width", type=float, default=d.width, help="channel multiplier (default %(default)s)")
    p.add_argument("--pretrained", action="store_true", help="start from ImageNet weights: timm:efficientnet_lite0 "
                   "offline (the pretrained extra), other models downloaded by torchvision or timm")
    p.add_argument("--weights", default=None, metavar="FILE", help="start from this state dict (the model's own "
                   "keys, or those of the torchvision/timm model it is cut from); a head that does not fit stays new")
    p.add_argument("--normalize", default=d.normalize, help="input normalisation: auto (what the weights were "
                   "trained with; the data's own from scratch), dataset, imagenet or inception (default %(default)s)")
    p.add_argument("--init-from", default=None, metavar="RUN_ID",
                   help="fine-tune: start from that run's model, with a new head")
    p.add_argument("--dataset", default=d.dataset, help="shapes, mnist, fashion-mnist, cifar10, imagenette or "
                   "folder:PATH (default %(default)s)")
    p.add_argument("--data-root", default=d.data_root, help="where torchvision data sets live (default %(default)s)")
    p.add_argument("--download", action="store_true", help="download the data set if it is missing")
    p.add_argument("--image-size", type=int, default=None, help="resize images to this many px")
    p.add_argument("--subset", type=int, default=None, help="train on the first N training images")
    p.add_argument("--classes", default=None, metavar="LIST",
                   help="keep only these class indices, e.g. 0-4 or 5,7,9 (renumbered from 0)")
    p.add_argument("--val-split", type=int, default=d.val_split, metavar="N",
                   help="hold N training images out as a validation split, the same for every run on these data "
                        "(default %(default)s: none; the test split is only reported)")
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
    p.add_argument("--policy", default=dp.name, help=f"{', '.join(POLICIES)}: Learn&Drop, the baseline (full "
                   "training) or a peer on the same drop mechanics (README: Policies; default %(default)s)")
    p.add_argument("--tau", type=float, default=dp.tau, help="change-score threshold (default %(default)s)")
    p.add_argument("--kappa", type=float, default=dp.kappa, help="continuation threshold (default %(default)s)")
    p.add_argument("--warmup", type=int, default=dp.warmup, help="checks before any drop (default %(default)s)")
    p.add_argument("--patience", type=int, default=dp.patience, help="consecutive checks (default %(default)s)")
    p.add_argument("--window", type=int, default=dp.window, help="continuation window in checks (default %(default)s)")
    p.add_argument("--measure", default=dp.measure, help="what d measures: params, directions or function (1 - CKA "
                   "of the unit's output on a validation probe batch; default %(default)s)")
    p.add_argument("--rewind-eps", type=float, default=dp.rewind_eps, help="rewind gate: drop only if rewinding "
                   "the unit to the last check changes the probe loss by less than this share (0: off)")
    p.add_argument("--anneal", type=int, default=dp.anneal, help="checks to anneal a candidate's lr before it drops")
    p.add_argument("--lr-normalized", action=argparse.BooleanOptionalAction, default=dp.lr_normalized,
                   help="measure d per unit of learning rate (default %(default)s)")
    p.add_argument("--inherit-peaks", action=argparse.BooleanOptionalAction, default=dp.inherit_peaks,
                   help="with --init-from: start each unit's peak change at the one it reached in that run "
                        "(default %(default)s)")
    p.add_argument("--freeze-candidates", action="store_true", help="freeze candidates behind the frontier")
    peer = "%s (README: Policies; default %%(default)s)"  # the peers' settings, named after their fields
    p.add_argument("--freezeout-t0", type=float, default=dp.freezeout_t0, help=peer % "freezeout: t_0 of its t_i")
    p.add_argument("--freezeout-scale", default=dp.freezeout_scale, help=peer % "freezeout: linear, squared or cubic")
    p.add_argument("--freezeout-scale-lr", action=argparse.BooleanOptionalAction, default=dp.freezeout_scale_lr,
                   help=peer % "freezeout: start each unit at lr / t_i")
    p.add_argument("--autofreeze-percentile", type=float, default=dp.autofreeze_percentile,
                   help=peer % "autofreeze: the percentile of the units' gradient-norm change rates")
    p.add_argument("--schedule-start", type=float, default=dp.schedule_start, help=peer % "schedule: first drop at")
    p.add_argument("--schedule-end", type=float, default=dp.schedule_end, help=peer % "schedule: last drop at")
    p.add_argument("--k", type=int, default=dp.k, help=peer % "freeze-first-k: units dropped before training")
    p.add_argument("--checks-per-epoch", type=int, default=d.checks_per_epoch)
    p.add_argument("--cache", action=argparse.BooleanOptionalAction, default=d.cache,
                   help="cache the dropped prefix's output (default %(default)s)")
    p.add_argument("--cache-max-mb", type=float, default=d.cache_max_mb)
    p.add_argument("--cache-dtype", default=d.cache_dtype, help="float16 or float32 (default %(default)s)")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or mps (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--deterministic", action="store_true", help="deterministic algorithms (GPU: slower, resumes exact)")
    p.add_argument("--runs-dir", default=None, help="where runs are stored (default ./runs or $LEARNDROP_RUNS_DIR)")
    p.add_argument("--resume", default=None, metavar="RUN_ID", help="continue a stopped, failed or interrupted run "
                   "from its last epoch checkpoint (other options are taken from that run, but --device)")


def _train_defaults() -> dict[str, Any]:
    """train's options (by dest) and their defaults."""
    p = _Parser(prog="learndrop train")
    _train_args(p)
    return vars(p.parse_args([]))


def _given_only(p: argparse.ArgumentParser, dests: Collection[str], helps: Mapping[str, str]) -> None:
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
    policy = PolicyConfig(**{f.name: given["policy" if f.name == "name" else f.name] for f in fields(PolicyConfig)})
    run = {f.name: given[f.name] for f in fields(RunConfig) if f.name in given and f.name != "policy"}
    return RunConfig(**{**run, "classes": parse_classes(run["classes"])}, policy=policy)


class ProgressBar:
    """A tqdm bar over all steps of the run, fed by events; drops are printed as they happen."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            for note in event.data_notes:
                print(f"note: {note}", file=sys.stderr)
            total = event.total_steps or event.steps_per_epoch * event.config["epochs"]
            self.bar = tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr)
        elif isinstance(event, ev.CheckpointRestored):
            self.bar = tqdm(initial=event.step, unit="step", dynamic_ncols=True, file=sys.stderr)
        elif self.bar is None:
            return
        elif isinstance(event, ev.Progress):
            self.bar.update(event.step - self.bar.n)
            self.bar.set_postfix(epoch=event.epoch + 1, loss=f"{event.loss:.3f}", img_s=f"{event.images_per_s:.0f}")
        elif isinstance(event, ev.LayerDropped):
            self.bar.write(f"  epoch {event.epoch + 1}: {event.reason}")
        elif isinstance(event, ev.CacheSkipped):
            self.bar.write(f"  cache skipped: {event.reason}")
        elif isinstance(event, ev.EpochEnded):
            val = "" if event.val_acc is None else f"val acc {100 * event.val_acc:.2f} %, "
            self.bar.write(f"epoch {event.epoch + 1}: train loss {event.train_loss:.4f}, {val}test acc "
                           f"{100 * event.test_acc:.2f} %, {event.epoch_time_s:.2f} s, {event.active_units} units "
                           "training")
        elif isinstance(event, ev.RunFinished):
            self.bar.close()


def cmd_train(a: argparse.Namespace) -> int:
    from .launch import cmd_train as train  # one process, or one of a data-parallel run's

    return train(a)


def _tensorboard(a: argparse.Namespace) -> list:
    """--tensorboard DIR: a sink writing the run's TensorBoard log (learndrop/report/tensorboard.py)."""
    if not getattr(a, "tensorboard", None):
        return []
    from .report.tensorboard import TensorBoardSink

    return [TensorBoardSink(a.tensorboard)]


def format_summary(s: dict) -> str:
    acc = f"{100 * s['test_acc']:.2f} %" if s["test_acc"] is not None else "n/a"
    drops = ", ".join(f"{d['unit']} (epoch {d['epoch']})" for d in s["dropped"]) or "none"
    fwd, train_red = s["fwd_flops_reduction_pct"], s["train_flops_reduction_pct"]
    lines = [
        f"run           {s['run_id']}  [{s['status']}]",
        f"test accuracy {acc}",
        *([f"validation    {100 * s['val_acc']:.2f} % (held-out training images)"] if s.get("val_acc") is not None
          else []),
        f"training time {s['train_time_s']:.1f} s  (evaluation {s['eval_time_s']:.1f} s apart)"
        + (f" on {s['world_size']} processes" if s.get("world_size", 1) > 1 else ""),
        f"forward FLOPs {'n/a' if fwd is None else f'{-fwd + 0.0:+.1f} %'} against full training of the same steps "
        f"(training FLOPs {'n/a' if train_red is None else f'{-train_red + 0.0:+.1f} %'})",
        f"dropped       {drops}",
    ]
    return "\n".join(lines)


def cmd_runs(a: argparse.Namespace) -> int:
    from .listing import cmd_runs as runs  # the recorded runs, a damaged one said so

    return runs(a)


def cmd_show(a: argparse.Namespace) -> int:
    from .listing import cmd_show as show

    return show(a)


def cmd_models(a: argparse.Namespace) -> int:
    for name in list_models():
        info = model_info(name)
        extras = [x for x, ok in (("width", info.has_width), ("pretrained", info.has_pretrained)) if ok]
        print(f"{name:<10} {info.description}" + (f"  [{', '.join(extras)}]" if extras else ""))
    from .models.zoo import listing

    print(listing())  # torchvision:NAME families, timm:NAME classes
    return 0


def cmd_datasets(a: argparse.Namespace) -> int:
    for info in list_datasets():
        print(f"{info.name:<14} {info.description}" + ("  [--download]" if info.downloadable else ""))
    return 0


POLICY_OPTIONS = tuple(f.name for f in fields(PolicyConfig) if f.name != "name")  # --policy is refused
NOT_FOR_BENCH = {"policy": "it trains both, the baseline (none) and learndrop", "resume": "it starts new runs"}
BENCH_HELP = {"policy": argparse.SUPPRESS, "resume": argparse.SUPPRESS,  # refused, with a reason
              "runs_dir": "where the runs go (default benchmarks/runs)",
              "data_root": "where torchvision data sets and cifar10/ live (default ../shared/data if present, "
                           "else data)"}


MAX_REPEATS = 100  # bench --repeats: each pair trained this many times per policy


def cmd_bench(a: argparse.Namespace) -> int:
    """The built-in pairs of a scenario, every train option given overriding each pair's own; or, with
    --model or --dataset, that one pair with train's options and defaults."""
    from .bench import RESULTS_DIR, bench, custom_pair  # torch-heavy

    given = {k: v for k, v in vars(a).items() if k in _train_defaults()}
    if not 1 <= a.repeats <= MAX_REPEATS:
        raise LearnDropError(f"--repeats must be an integer from 1 to {MAX_REPEATS}, got {a.repeats}")
    for name, why in NOT_FOR_BENCH.items():
        if name in given:
            raise LearnDropError(f"--{name} does not apply to bench: {why}")
    runs_dir, data_root = given.pop("runs_dir", None), given.pop("data_root", None)
    policy = PolicyConfig(**{k: given.pop(k) for k in POLICY_OPTIONS if k in given})
    if "classes" in given:
        given["classes"] = parse_classes(given["classes"])
    where = dict(repeats=a.repeats, data_root=data_root, policy=policy, runs_dir=runs_dir and Path(runs_dir),
                 out_dir=Path(a.results_dir) if a.results_dir else RESULTS_DIR)
    if a.frontier or a.seeds is not None or a.variants is not None or a.leave_one_out:  # against fewer epochs
        from .frontier import runner

        bench = runner(a, given, where)
    if "model" not in given and "dataset" not in given:
        bench(a.scenario or "scratch", quick=a.quick, only=a.only, overrides=given, **where)
        return 0
    builtin = [flag for flag, on in (("--scenario", a.scenario is not None), ("--quick", a.quick),
                                     ("--only", a.only is not None)) if on]
    if builtin:
        raise LearnDropError(f"{', '.join(builtin)} chooses built-in pairs; --model and --dataset ask for one "
                             "pair of your own")
    bench("custom", pairs=[custom_pair(RunConfig(policy=policy, **given))], **where)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="learndrop", description="Learn&Drop: train CNNs while dropping the layers that "
                     "stopped learning.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("train", help="train a model (no arguments: the offline shapes demo)")
    _train_args(p)
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="also write a TensorBoard log there: losses, accuracies, change scores, FLOPs, drops")
    p.add_argument("--nproc", type=int, default=1, metavar="N", help="data-parallel on N processes, started by "
                   "torchrun's launcher (one per GPU; gloo on the CPU); --batch-size is the global batch")
    p.add_argument("--run-id", default=None, help="the new run's id (default: a fresh one)")
    p.add_argument("--config", default=None, metavar="FILE", help="train with every setting of a run's config.json "
                   "(the other run options are not read; --device, --runs-dir, --run-id, --nproc are)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("runs", help="list recorded runs")
    p.add_argument("--runs-dir", default=None, help=f"default {default_runs_dir()}")
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("bench", help="baseline vs Learn&Drop side by side on real data", description=(
        "The baseline (policy none) and Learn&Drop, same seed and data order, one after the other. Without "
        "--model/--dataset: the built-in pairs of --scenario; a train option given overrides every pair's own "
        "(--epochs: a fine-tuning's pre-training keeps its own). With --model and/or --dataset: that one pair, "
        "with train's options and defaults, reported as custom-*.json/.md."))
    p.add_argument("--scenario", default=None, help="scratch, finetune or stream (default scratch)")
    p.add_argument("--quick", action="store_true", help="a small subset, a few minutes: for regression checks")
    p.add_argument("--repeats", type=int, default=1, help="train each policy this many times, alternating order")
    p.add_argument("--only", default=None, help="run only the pairs whose label contains this text")
    p.add_argument("--results-dir", default=None, help="where the results go (default benchmarks/results)")
    p.add_argument("--frontier", action="store_true", help="the budget frontier: per pair, the baseline at 1/4, "
                   "1/3, 1/2, 2/3 and all of the epochs, Learn&Drop and its --variants and every other policy "
                   "at all of them; results as frontier-*.json/.md")
    p.add_argument("--seeds", default=None, metavar="LIST", help="with --frontier: every run once per seed, e.g. "
                   "0,1 (default: --seed's)")
    p.add_argument("--variants", default=None, metavar="SETTINGS", help="with --frontier: Learn&Drop's variants, "
                   "e.g. 'tau=0.3;measure=function,anneal=2' (default: BENCHMARKS.md's; '' none)")
    p.add_argument("--leave-one-out", action="store_true", help="with --frontier: the held-out scratch pairs "
                   "(VGG-11 and ResNet-20 on CIFAR-10, VGG-11 on MNIST; with --model/--dataset yours too), then each "
                   "policy's setting chosen on the other pairs' validation margins, its test margin on each")
    _train_args(p)  # the same options as train, absent unless given
    _given_only(p, _train_defaults(), BENCH_HELP)
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("show", help="one run: its summary, epochs and drops")
    p.add_argument("run_id")
    p.add_argument("--runs-dir", default=None, help=f"default {default_runs_dir()}")
    p.set_defaults(func=cmd_show)
    sub.add_parser("models", help="list the models").set_defaults(func=cmd_models)
    sub.add_parser("datasets", help="list the data sets").set_defaults(func=cmd_datasets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # what a launcher passes on
        return args.func(args)
    except LearnDropError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a full disk while a run is recorded: one line (the run keeps what was written)
        if (line := no_space_line(exc)) is None:
            raise
        print(line, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
