"""``python -m learndrop bench --frontier``: Learn&Drop against the baseline simply trained for fewer epochs.

For each pair of a scenario (``bench``'s pairs, or one custom pair), every seed: the baseline (``none``)
at each budget of ``report.frontier.budgets`` (1/4, 1/3, 1/2, 2/3 and all of the pair's epochs), each a
run of its own with its own complete learning-rate schedule; then, at the pair's epochs, Learn&Drop with
its default settings and each variant (``--variants "tau=0.3,warmup=3;tau=0.5"``), and one run of every
other policy registered in ``config.POLICIES``. All of a pair's runs are made in one go, in this process:
a seed's budgets interleaved among its other runs, every other seed in reverse (a machine's speed drifts).
Results: ``frontier-<timestamp>.json`` (``{"pairs": [{"label", "scenario", "runs": [...]}]}``, every run with
its training seconds and FLOPs) and a ``.md`` with a table (margins on both axes) and PNG figures per pair
(test accuracy against training FLOPs and against training time).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import config as cfg
from .bench import RESULTS_DIR, SCENARIOS, Pair, _config, _default_root, _run, choose_pairs, machine
from .config import PolicyConfig, RunConfig
from .data.datasets import create_dataset
from .errors import LearnDropError
from .models import create_model, model_info
from .report.frontier import (
    FLOPS,
    SECONDS,
    budgets,
    frontier,
    groups,
    has_axis,
    margin,
    pick_on_validation,
    time_efficiency,
    variant_of,
)
from .report.leave_one_out import leave_one_out
from .report.leave_one_out import to_markdown as leave_one_out_markdown
from .runs.store import RunStore, check_writable_dir

DEFAULT_VARIANTS = "measure=function,tau=0.05;measure=function,tau=0.05,anneal=2"  # what BENCHMARKS.md measured
CHROMIUM = "/usr/bin/chromium"  # Debian's; kaleido renders the PNG with it unless BROWSER_PATH names another


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


def plan(pair: Pair, root: str, policy: PolicyConfig, variants: Sequence[dict[str, Any]], seeds: Sequence[int],
         overrides: dict[str, Any] | None = None) -> list[tuple[str, RunConfig]]:
    """Every run of a pair, as (variant, config), in the order they train; each config validated. Fine-tuning
    pairs also get freeze-first-k for every k up to the linear probe (every unit frozen, the head alone)."""
    full = _config(pair, root, PolicyConfig(name="none"), overrides)
    finetune = scenario_of(pair, "") == "finetune"  # freeze-first-k is partial fine-tuning: no peer from scratch
    peers = [p for p in cfg.POLICIES if p not in ("none", "learndrop") and (finetune or p != "freeze-first-k")]
    if "freeze-first-k" in peers:
        variants = [*variants, *({"name": "freeze-first-k", "k": k} for k in range(2, unit_count(full) + 1))]
    policies = [(variant_of(dataclasses.asdict(policy), dataclasses.asdict(PolicyConfig())), policy)]
    for settings in variants:
        changed = dataclasses.replace(policy, **settings)
        policies.append((variant_of(dataclasses.asdict(changed), dataclasses.asdict(PolicyConfig())), changed))
    policies += [(variant_of(dataclasses.asdict(p), dataclasses.asdict(PolicyConfig(name=p.name))), p)
                 for p in (dataclasses.replace(policy, name=name) for name in peers)]
    policies = list({(p.name, v): (v, p) for v, p in policies}.values())  # a variant equal to another: once
    runs = []
    for i, seed in enumerate(seeds):  # a machine's speed drifts: the budgets are spread among the policies,
        order = interleave([("default", dataclasses.replace(full, epochs=b, seed=seed)) for b in budgets(full.epochs)],
                           [(v, dataclasses.replace(full, policy=p, seed=seed)) for v, p in policies])
        runs += order[::-1] if i % 2 else order  # and every other seed runs in reverse: drift weighs on both alike
    for _, config in runs:
        config.validate()
        model_info(config.model)
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
    probe = planned[0][1]
    train_data = create_dataset(probe.dataset, probe.data_root, True, probe.download, probe.image_size, probe.subset)
    data = (train_data, create_dataset(probe.dataset, probe.data_root, False, probe.download, train_data.size))
    init_from = None
    if pair.pretrain is not None:  # the pre-training keeps its own epochs: an --epochs override is about the fine-tuning
        pre = _config(pair, root, PolicyConfig(name="none"),
                      {k: v for k, v in (overrides or {}).items() if k != "epochs"}, **pair.pretrain)
        log(f"  pre-training {pre.model} on classes {pre.classes} for {pre.epochs} epochs")
        init_from = _run(pre, data, store).summary["run_id"]
    runs = []
    for variant, config in planned:
        if init_from is not None:
            config = dataclasses.replace(config, init_from=init_from)
        s = _run(config, data, store).summary
        runs.append({"policy": config.policy.name, "variant": variant, "epochs": config.epochs, "seed": config.seed,
                     "train_time_s": s["train_time_s"], "train_flops": s["train_flops"], "val_acc": s.get("val_acc"),
                     "test_acc": s["test_acc"], "run_id": s["run_id"]})
        log(f"  {config.policy.name:<14} {variant:<18} {config.epochs:>3} ep  seed {config.seed}  "
            f"{s['train_time_s']:8.1f} s  test acc " + ("n/a" if s["test_acc"] is None else f"{100 * s['test_acc']:.2f} %")
            + f"  [{s['status']}]")
        on_run(runs)
    return runs


COLUMNS = ("policy", "variant", "epochs", "seeds", "mean training time s", "mean training TFLOPs", "mean test acc %",
           "margin on FLOPs", "margin on seconds", "time efficiency")


def pair_rows(runs: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The .md table of one pair (``COLUMNS``): means over seeds, each run's margin over the frontier on both
    axes, and its time efficiency against the full budget ("n/a" where the runs carry no FLOPs)."""
    all_groups = groups(runs)
    flops = has_axis(runs, FLOPS)
    fronts = {axis: frontier([r for r in runs if r["policy"] == "none"], axis=axis) for axis in (SECONDS, FLOPS)
              if axis == SECONDS or flops}
    budgets_run = [g for g in all_groups if g.policy == "none"]
    full = max(budgets_run, key=lambda g: g.epochs, default=None)
    rows = []
    for g in all_groups:
        edges = []
        for axis in (FLOPS, SECONDS):
            front = fronts.get(axis)
            edges.append("(frontier)" if g.policy == "none" else
                         margin(front, g.cost(axis), g.test_acc).text() if front else "n/a")
        efficiency = time_efficiency(g, full) if full is not None and g.policy != "none" else None
        rows.append([g.policy, g.variant, str(g.epochs), str(g.seeds), f"{g.time_s:.1f}",
                     f"{g.flops / 1e12:.2f}" if g.flops is not None else "n/a", f"{100 * g.test_acc:.2f}", *edges,
                     f"{efficiency:.2f}" if efficiency is not None else "n/a"])
    return rows


def to_markdown(report: dict[str, Any], pngs: Sequence[dict[str, str]], header: dict[str, Any]) -> str:
    lines = ["# The budget frontier", "", f"`{header['command']}`  ",
             f"{header['started']}, {header['machine']['processor']}, {header['machine']['cpus']} CPUs, torch "
             f"{header['machine']['torch']}, {header['machine']['cuda'] or 'no GPU'}", "",
             "The frontier: the baseline (policy none) trained for fewer epochs, each budget with its own complete "
             "learning-rate schedule; margin: a run's mean test accuracy minus the frontier's at its mean training "
             "cost (linear interpolation, the line made monotone), in percentage points, on two axes: the training "
             "FLOPs (forward and backward actually run, cache builds and probe passes included: the same on every "
             "run of the same work) and the training seconds (what a user waits for; on a shared machine they "
             "swing). Variants are chosen on the FLOPs margin. Time efficiency: the share of time saved per share "
             "of FLOPs saved against the full budget. In the figures each policy and variant is one point, at its "
             "means over seeds."]
    for pair, png in zip(report["pairs"], pngs):
        lines += ["", f"## {pair['label']} ({pair['scenario']})", "", f"| {' | '.join(COLUMNS)} |",
                  "|" + "---|" * len(COLUMNS)]
        lines += [f"| {' | '.join(row)} |" for row in pair_rows(pair["runs"])]
        if pair["runs"] and not has_axis(pair["runs"], FLOPS):
            lines += ["", "These runs were recorded before runs carried their training FLOPs: seconds only."]
        picks = pick_on_validation(pair["runs"])
        if picks:
            why = {True: "on its test margin: no validation split", False: "on its validation margin"}
            lines += ["", "Chosen per policy: " + "; ".join(f"{p.policy}: {p.variant} ({why[p.fallback]} on "
                                                            f"{p.axis}, {p.score:+.2f})" for p in picks.values()) + "."]
        lines += [""] + [f"![test accuracy against training {axis}]({name})" for axis, name in png.items()]
        if not png:
            lines.append("(no figure: kaleido could not render one here)")
    if len(report["pairs"]) > 1:
        lines += ["", *held_out_section(report["pairs"])]
    return "\n".join(lines) + "\n"


def held_out_section(pairs: Sequence[dict[str, Any]]) -> list[str]:
    """The leave-one-pair-out table of ``report.leave_one_out``, with what it means."""
    return ["## Leave one pair out", "",
            "Per policy and held-out pair: the setting with the best mean validation margin (training FLOPs) on "
            "the *other* pairs, and its test margin on the held-out pair in points, over the frontier of training "
            "FLOPs (over the frontier of seconds in brackets); then the worst and the mean of those.", "",
            *leave_one_out_markdown(leave_one_out(pairs))]


def write_png(pair: dict[str, Any], path: Path, axis: str = SECONDS) -> bool:
    """The pair's figure on ``axis`` (plots.frontier_chart, points at the means over seeds) as a PNG through
    kaleido."""
    from .report.plots import frontier_chart  # plotly only when writing

    if os.path.exists(CHROMIUM):
        os.environ.setdefault("BROWSER_PATH", CHROMIUM)
    others = [{"name": f"{g.policy} {g.variant}".replace(" default", ""), "policy": g.policy, "train_time_s": g.time_s,
               "train_flops": g.flops, "test_acc": g.test_acc} for g in groups(pair["runs"]) if g.policy != "none"]
    fig = frontier_chart([r for r in pair["runs"] if r["policy"] == "none"], others, named=True, axis=axis)
    fig.update_layout(title=pair["label"], margin=dict(l=70, r=30, t=60, b=140),
                      legend=dict(orientation="v", x=1.02, y=1, xanchor="left", yanchor="top", font=dict(size=12)))
    try:
        fig.write_image(str(path), width=1200, height=560)
    except Exception as exc:  # noqa: BLE001  (no kaleido, no browser: the .md says so, the results stand)
        why = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        print(f"note: no figure for {pair['label']}: {why}", file=sys.stderr)
        return False
    return True


def run_frontier(scenario: str = "scratch", quick: bool = False, data_root: str | None = None,
                 only: str | None = None, out_dir: Path = RESULTS_DIR, policy: PolicyConfig | None = None,
                 overrides: dict[str, Any] | None = None, log: Callable[[str], None] = print,
                 pairs: Sequence[Pair] | None = None, runs_dir: Path | None = None, seeds: Sequence[int] = (0,),
                 variants: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The frontier of a scenario's pairs (as ``bench.bench`` chooses them) or of ``pairs``; every run is
    planned and validated before the first one trains. Returns the report written as JSON."""
    pairs, root = choose_pairs(scenario, quick, only, pairs), data_root or _default_root()
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
        given = ", ".join(f"{k}={v}" for k, v in sorted((overrides or {}).items()))  # what the label does not say
        entry = {"label": f"{pair.label} [{given}]" if given else pair.label, "scenario": scenario_of(pair, scenario),
                 "runs": []}
        report["pairs"].append(entry)

        def landed(runs: list[dict[str, Any]], entry: dict[str, Any] = entry) -> None:
            entry["runs"] = runs  # every run as it lands: a long measurement loses nothing to a stop
            (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2))

        landed(run_pair(pair, root, planned, store, log, overrides, landed))
    write_report(report, out_dir / f"{stem}.json")
    log(f"wrote {out_dir / stem}.json and .md")
    return report


def write_report(report: dict[str, Any], path: Path) -> None:
    """The report as ``path`` (.json) and, beside it, its .md and one PNG per pair with runs and axis (FLOPs where
    the runs carry them, seconds); also after the fact, from a report a stopped measurement left
    (``python -m learndrop.frontier FILE.json``)."""
    path.write_text(json.dumps(report, indent=2))
    stem = path.with_suffix("")
    pngs = []
    for i, pair in enumerate(report["pairs"]):
        axes = [axis for axis in (FLOPS, SECONDS) if pair["runs"] and has_axis(pair["runs"], axis)]
        names = {axis: f"{stem.name}-{i + 1}{'-flops' if axis == FLOPS else ''}.png" for axis in axes}
        pngs.append({axis: name for axis, name in names.items() if write_png(pair, path.parent / name, axis)})
    (path.with_suffix(".md")).write_text(to_markdown(report, pngs, report["header"]))


def runner(a: Any, given: dict[str, Any], where: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """``cmd_bench``'s frontier, called with bench's arguments: --seeds and --variants only with --frontier;
    --repeats gives way to --seeds, --seed is the one seed when --seeds is not given (``given`` and ``where``
    are changed in place)."""
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
        raise LearnDropError("--leave-one-out trains the held-out scratch pairs (and yours, with --model/--dataset): "
                             "no --scenario, --quick or --only")

    def frontier_of(scenario: str = "scratch", *args: Any, pairs: Sequence[Pair] | None = None,
                    **kw: Any) -> dict[str, Any]:
        if a.leave_one_out:
            scenario, pairs = "scratch", [*SCENARIOS["scratch"]["heldout"], *(pairs or [])]
        return run_frontier(scenario, *args, pairs=pairs, seeds=seeds, variants=variants, **kw)

    return frontier_of


def main(argv: Sequence[str]) -> None:
    """``python -m learndrop.frontier FILE.json ...``: each report's .md and PNGs written again; with
    ``--leave-one-out``, the held-out table over every pair of the files given, printed."""
    files = [Path(name) for name in argv if name != "--leave-one-out"]
    if "--leave-one-out" in argv:
        pairs = [pair for f in files for pair in json.loads(f.read_text())["pairs"]]
        print("\n".join(held_out_section(pairs)))
        return
    for path in files:
        write_report(json.loads(path.read_text()), path)


if __name__ == "__main__":
    main(sys.argv[1:])
