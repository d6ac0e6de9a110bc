"""``learndrop bench``: its options (train's, absent unless given) and the call into ``learndrop.bench``."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..config import PolicyConfig, RunConfig, parse_classes
from ..errors import LearnDropError
from .args import train_defaults

POLICY_OPTIONS = tuple(f.name for f in fields(PolicyConfig) if f.name != "name")  # --policy is refused
NOT_FOR_BENCH = {"policy": "it trains both, the baseline (none) and learndrop",
                 "resume": "it starts new runs"}
BENCH_HELP = {"policy": argparse.SUPPRESS, "resume": argparse.SUPPRESS,  # refused, with a reason
              "runs_dir": "where the runs go (default benchmarks/runs)",
              "data_root": "where torchvision data sets and cifar10/ live (default ../shared/data if "
                           "present, else data)"}


MAX_REPEATS = 100  # bench --repeats: each pair trained this many times per policy


def cmd_bench(a: argparse.Namespace) -> int:
    """The built-in pairs of a scenario, every train option given overriding each pair's own; or, with
    --model or --dataset, that one pair with train's options and defaults."""
    from ..bench.pairs import RESULTS_DIR, custom_pair  # torch-heavy
    from ..bench.side_by_side import bench

    given = {k: v for k, v in vars(a).items() if k in train_defaults()}
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
        bench = frontier_runner(a, given, where)
    if "model" not in given and "dataset" not in given:
        bench(a.scenario or "scratch", quick=a.quick, only=a.only, overrides=given, **where)
        return 0
    builtin = [flag for flag, on in (("--scenario", a.scenario is not None), ("--quick", a.quick),
                                     ("--only", a.only is not None)) if on]
    if builtin:
        raise LearnDropError(f"{', '.join(builtin)} chooses built-in pairs; --model and --dataset ask for "
                             "one pair of your own")
    bench("custom", pairs=[custom_pair(RunConfig(policy=policy, **given))], **where)
    return 0


def frontier_runner(a: argparse.Namespace, given: dict[str, Any], where: dict[str, Any]
                    ) -> Callable[..., dict[str, Any]]:
    """``cmd_bench``'s frontier, called with bench's arguments: --seeds and --variants only with --frontier;
    --repeats gives way to --seeds, --seed is the one seed when --seeds is not given (``given`` and ``where``
    are changed in place)."""
    from ..bench.frontier import DEFAULT_VARIANTS, parse_seeds, parse_variants, run_frontier
    from ..bench.pairs import SCENARIOS, Pair

    if not a.frontier:
        raise LearnDropError("--seeds, --variants and --leave-one-out apply to bench --frontier only")
    if where.pop("repeats", 1) != 1:
        raise LearnDropError("--repeats does not apply to bench --frontier: give --seeds")
    if a.seeds is not None and "seed" in given:
        raise LearnDropError("--seed and --seeds: give one of them")
    seeds = parse_seeds(a.seeds) if a.seeds is not None else [given.get("seed", 0)]
    given.pop("seed", None)
    variants = parse_variants(DEFAULT_VARIANTS if a.variants is None else a.variants)
    if a.leave_one_out and (a.scenario not in (None, "scratch") or a.quick or a.only):
        raise LearnDropError("--leave-one-out trains the held-out scratch pairs (and yours, with "
                             "--model/--dataset): no --scenario, --quick or --only")

    def frontier_of(scenario: str = "scratch", *args: Any, pairs: Sequence[Pair] | None = None,
                    **kw: Any) -> dict[str, Any]:
        if a.leave_one_out:
            scenario, pairs = "scratch", [*SCENARIOS["scratch"]["heldout"], *(pairs or [])]
        return run_frontier(scenario, *args, pairs=pairs, seeds=seeds, variants=variants, **kw)

    return frontier_of
