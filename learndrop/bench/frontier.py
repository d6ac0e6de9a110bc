"""``python -m learndrop bench --frontier``: Learn&Drop against the baseline simply trained for fewer epochs.

For each pair of a scenario (``bench``'s pairs, or one custom pair), every seed: the baseline (``none``)
at each budget of ``report.frontier.budgets`` (1/4, 1/3, 1/2, 2/3 and all of the pair's epochs), each a
run of its own with its own complete learning-rate schedule; then, at the pair's epochs, Learn&Drop with
its default settings and each variant (``--variants "tau=0.3,warmup=3;tau=0.5"``), and one run of every
other registered policy (``method.registry``)
(in fine-tuning, freeze-first-k for every k up to the linear probe). All of a pair's runs are made in one go,
in this process: a seed's budgets interleaved among its other runs, every other seed in reverse (a machine's
speed drifts). Results: ``frontier-<timestamp>.json`` (``{"pairs": [{"label", "scenario", "runs": [...]}]}``,
every run with its training seconds and FLOPs), its ``.md`` and figures written by ``bench.report``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import PolicyConfig, RunConfig
from ..errors import LearnDropError
from ..method.registry import policy_names
from ..models import create_model
from ..report.frontier import budgets, variant_of
from ..runs.store import RunStore, check_writable_dir
from ..training.preflight import preflight
from .pairs import RESULTS_DIR, SCENARIOS, Pair, choose_pairs, default_root, pair_config
from .report import write_report
from .running import load_data, machine, pretrain, train_one

# beside the default (paced): the rule unpaced (the default before leave-one-out) and the function-space
# criterion BENCHMARKS.md measured
DEFAULT_VARIANTS = "paced=false;measure=function,tau=0.05"


def parse_variants(text: str | None) -> list[dict[str, Any]]:
    """``"tau=0.3,warmup=3;tau=0.5"`` -> ``[{"tau": 0.3, "warmup": 3}, {"tau": 0.5}]``: PolicyConfig
    settings, typed as its defaults are; ``policy=NAME`` makes it a variant of another policy
    (``policy=freeze-first-k,k=2``); empty text: no variants."""
    defaults = PolicyConfig()
    out = []
    for part in filter(None, (p.strip() for p in (text or "").split(";"))):
        settings: dict[str, Any] = {}
        for item in filter(None, (i.strip() for i in part.split(","))):
            name, eq, value = (s.strip() for s in item.partition("="))
            if name == "policy" and eq:
                settings["name"] = value
                continue
            if not eq or name == "name" or not hasattr(defaults, name):
                raise LearnDropError(f"--variants: {item!r} is not a policy setting=value (settings: "
                                     f"{', '.join(f.name for f in dataclasses.fields(PolicyConfig)[1:])})")
            kind = type(getattr(defaults, name))
            try:
                settings[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
            except ValueError:
                raise LearnDropError(f"--variants: {name} must be {kind.__name__}, got {value!r}") from None
        out.append(settings)
    return out


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise LearnDropError(f"--seeds: a comma-separated list of integers, e.g. 0,1; got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise LearnDropError(f"--seeds: at least one seed, none twice; got {text!r}")
    return seeds


def scenario_of(pair: Pair, scenario: str) -> str:
    """scratch, finetune or stream: a built-in scenario's name; for a custom pair, what its config does."""
    if scenario in SCENARIOS:
        return scenario
    c = pair.config
    if pair.pretrain is not None or c.get("init_from") or c.get("pretrained"):
        return "finetune"
    return "stream" if c.get("stream", 1) > 1 else "scratch"


def plan(pair: Pair, root: str, policy: PolicyConfig, variants: Sequence[dict[str, Any]],
         seeds: Sequence[int], overrides: dict[str, Any] | None = None) -> list[tuple[str, RunConfig]]:
    """Every run of a pair, as (variant, config), in the order they train; each config validated. Fine-tuning
    pairs also get freeze-first-k for every k up to the linear probe (every unit frozen, the head alone)."""
    full = pair_config(pair, root, PolicyConfig(name="none"), overrides)
    # freeze-first-k is partial fine-tuning: no peer from scratch
    finetune = scenario_of(pair, "") == "finetune"
    peers = [p for p in policy_names() if p not in ("none", "learndrop")
             and (finetune or p != "freeze-first-k")]
    if "freeze-first-k" in peers:
        variants = [*variants, *({"name": "freeze-first-k", "k": k} for k in range(2, unit_count(full) + 1))]
    policies = [(variant_of(dataclasses.asdict(policy), dataclasses.asdict(PolicyConfig())), policy)]
    for settings in variants:
        changed = dataclasses.replace(policy, **settings)
        policies.append((variant_of(dataclasses.asdict(changed), dataclasses.asdict(PolicyConfig())),
                         changed))
    policies += [(variant_of(dataclasses.asdict(p), dataclasses.asdict(PolicyConfig(name=p.name))), p)
                 for p in (dataclasses.replace(policy, name=name) for name in peers)]
    policies = list({(p.name, v): (v, p) for v, p in policies}.values())  # a variant equal to another: once
    runs = []
    for i, seed in enumerate(seeds):  # a machine's speed drifts: the budgets are spread among the policies,
        order = interleave([("default", dataclasses.replace(full, epochs=b, seed=seed))
                            for b in budgets(full.epochs)],
                           [(v, dataclasses.replace(full, policy=p, seed=seed)) for v, p in policies])
        # and every other seed runs in reverse: drift weighs on both alike
        runs += order[::-1] if i % 2 else order
    for _, config in runs:
        preflight(config)
    return runs


def unit_count(config: RunConfig) -> int:
    """How many units the pair's network is cut into (built untrained, on the CPU)."""
    return len(create_model(config.model, 10, 3, config.image_size or 32, config.width).unit_names)


def interleave(spread: Sequence[Any], among: Sequence[Any]) -> list[Any]:
    """``spread``'s items at even intervals among ``among``'s, each list's order kept
    ([b1, b2], [p1, p2, p3, p4] -> [b1, p1, p2, b2, p3, p4])."""
    step, out = len(among) / max(1, len(spread)), []
    for i, item in enumerate(spread):
        out += [item, *among[round(i * step):round((i + 1) * step)]]
    return out if spread else list(among)


def run_pair(pair: Pair, root: str, planned: Sequence[tuple[str, RunConfig]], store: RunStore,
             log: Callable[[str], None], overrides: dict[str, Any] | None = None,
             on_run: Callable[[list[dict[str, Any]]], None] = lambda runs: None) -> list[dict[str, Any]]:
    """Train a pair's planned runs (the data loaded once; a fine-tuning pair's pre-training once, shared);
    ``on_run`` gets the runs so far after each one (the report is written as they land)."""
    data = load_data(planned[0][1])
    init_from = pretrain(pair, root, overrides, data, store, log)
    runs = []
    for variant, config in planned:
        if init_from is not None:
            config = dataclasses.replace(config, init_from=init_from)
        s = train_one(config, data, store).summary
        runs.append({"policy": config.policy.name, "variant": variant, "epochs": config.epochs,
                     "seed": config.seed, "train_time_s": s["train_time_s"], "train_flops": s["train_flops"],
                     "val_acc": s.get("val_acc"), "test_acc": s["test_acc"], "run_id": s["run_id"]})
        acc = "n/a" if s["test_acc"] is None else f"{100 * s['test_acc']:.2f} %"
        log(f"  {config.policy.name:<14} {variant:<18} {config.epochs:>3} ep  seed {config.seed}  "
            f"{s['train_time_s']:8.1f} s  test acc {acc}  [{s['status']}]")
        on_run(runs)
    return runs


def run_frontier(scenario: str = "scratch", quick: bool = False, data_root: str | None = None,
                 only: str | None = None, out_dir: Path = RESULTS_DIR, policy: PolicyConfig | None = None,
                 overrides: dict[str, Any] | None = None, log: Callable[[str], None] = print,
                 pairs: Sequence[Pair] | None = None, runs_dir: Path | None = None,
                 seeds: Sequence[int] = (0,),
                 variants: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The frontier of a scenario's pairs (as ``bench.bench`` chooses them) or of ``pairs``; every run is
    planned and validated before the first one trains. Returns the report written as JSON."""
    pairs = choose_pairs(scenario, quick, only, pairs)
    root = data_root or default_root()
    policy = policy or PolicyConfig()
    variants = parse_variants(DEFAULT_VARIANTS) if variants is None else variants
    plans = [plan(pair, root, policy, variants, seeds, overrides) for pair in pairs]
    runs_dir = runs_dir if runs_dir is not None else out_dir.parent / "runs"
    check_writable_dir(runs_dir, "runs folder")
    check_writable_dir(out_dir, "results folder")
    header = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
              "command": " ".join(["python -m learndrop", *sys.argv[1:]] if sys.argv[1:2] == ["bench"] else
                                  ["python -m learndrop bench --frontier"])}
    store = RunStore(runs_dir)
    report: dict[str, Any] = {"header": header, "pairs": []}
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"frontier-{time.strftime('%Y%m%d-%H%M%S')}"
    for pair, planned in zip(pairs, plans):
        log(f"{pair.label}: {len(planned)} runs")
        # what the label does not say
        given = ", ".join(f"{k}={v}" for k, v in sorted((overrides or {}).items()))
        entry = {"label": f"{pair.label} [{given}]" if given else pair.label,
                 "scenario": scenario_of(pair, scenario), "runs": []}
        report["pairs"].append(entry)

        def landed(runs: list[dict[str, Any]], entry: dict[str, Any] = entry) -> None:
            entry["runs"] = runs  # every run as it lands: a long measurement loses nothing to a stop
            (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2))

        landed(run_pair(pair, root, planned, store, log, overrides, landed))
    write_report(report, out_dir / f"{stem}.json")
    log(f"wrote {out_dir / stem}.json and .md")
    return report
