"""``python -m learndrop`` (and the ``learndrop`` command): train, runs, bench, show, models, datasets.

Bad input is one line on stderr and exit code 2; a full disk while a run records, one line and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import LearnDropError
from ..files import no_space_line
from ..runs.store import default_runs_dir
from .args import EXIT_USAGE, Parser, given_only, train_args, train_defaults
from .bench import BENCH_HELP, cmd_bench


def cmd_train(a: argparse.Namespace) -> int:
    from .train import cmd_train as train  # one process, or one of a data-parallel run's

    return train(a)


def cmd_runs(a: argparse.Namespace) -> int:
    from .listing import cmd_runs as runs  # the recorded runs, a damaged one said so

    return runs(a)


def cmd_show(a: argparse.Namespace) -> int:
    from .listing import cmd_show as show

    return show(a)


def cmd_models(a: argparse.Namespace) -> int:
    from .listing import cmd_models as models

    return models(a)


def cmd_datasets(a: argparse.Namespace) -> int:
    from .listing import cmd_datasets as datasets

    return datasets(a)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="learndrop", description="Learn&Drop: train CNNs while dropping the layers that "
                     "stopped learning.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    p = sub.add_parser("train", help="train a model (no arguments: the offline shapes demo)")
    train_args(p)
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="also write a TensorBoard log there: losses, accuracies, change scores, FLOPs, drops")
    p.add_argument("--nproc", type=int, default=1, metavar="N", help="data-parallel on N processes, started "
                   "by torchrun's launcher (one per GPU; gloo on the CPU); --batch-size is the global batch")
    p.add_argument("--run-id", default=None, help="the new run's id (default: a fresh one)")
    p.add_argument("--config", default=None, metavar="FILE", help="train with every setting of a run's "
                   "config.json (the other run options are not read; --device, --runs-dir, --run-id, --nproc "
                   "are)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("runs", help="list recorded runs")
    p.add_argument("--runs-dir", default=None, help=f"default {default_runs_dir()}")
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("bench", help="baseline vs Learn&Drop side by side on real data", description=(
        "The baseline (policy none) and Learn&Drop, same seed and data order, one after the other. Without "
        "--model/--dataset: the built-in pairs of --scenario; a train option given overrides every pair's "
        "own (--epochs: a fine-tuning's pre-training keeps its own). With --model and/or --dataset: that one "
        "pair, with train's options and defaults, reported as custom-*.json/.md."))
    p.add_argument("--scenario", default=None, help="scratch, finetune, transfer or stream (default scratch)")
    p.add_argument("--quick", action="store_true",
                   help="a small subset, a few minutes: for regression checks")
    p.add_argument("--repeats", type=int, default=1,
                   help="train each policy this many times, alternating order")
    p.add_argument("--only", default=None, help="run only the pairs whose label contains this text")
    p.add_argument("--results-dir", default=None, help="where the results go (default benchmarks/results)")
    p.add_argument("--frontier", action="store_true", help="the budget frontier: per pair, the baseline at "
                   "1/4, 1/3, 1/2, 2/3 and all of the epochs, Learn&Drop and its --variants and every other "
                   "policy at all of them; results as frontier-*.json/.md")
    p.add_argument("--seeds", default=None, metavar="LIST", help="with --frontier: every run once per seed, "
                   "e.g. 0,1 (default: --seed's)")
    p.add_argument("--variants", default=None, metavar="SETTINGS",
                   help="with --frontier: Learn&Drop's variants, "
                   "e.g. 'tau=0.3;measure=function,anneal=2' (default: BENCHMARKS.md's; '' none)")
    p.add_argument("--leave-one-out", action="store_true", help="with --frontier: the held-out scratch pairs "
                   "(VGG-11 and ResNet-20 on CIFAR-10, VGG-11 on MNIST; with --model/--dataset yours too), "
                   "then each policy's setting chosen on the other pairs' validation margins, its test "
                   "margin on each")
    train_args(p)  # the same options as train, absent unless given
    given_only(p, train_defaults(), BENCH_HELP)
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
