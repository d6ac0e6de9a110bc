"""The frontier's report: a table per pair (margins on training FLOPs and on seconds, time efficiency), the
variant each policy chose on validation, figures on both axes, and the leave-one-pair-out table.

``python -m learndrop.bench.report FILE.json ...`` writes a report's .md and PNGs again (a stopped measurement
keeps its JSON); with ``--leave-one-out``, it prints the held-out table over every pair of the files given.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..report.frontier import (
    FLOPS,
    SECONDS,
    frontier,
    groups,
    has_axis,
    margin,
    pick_on_validation,
    time_efficiency,
)
from ..report.leave_one_out import leave_one_out
from ..report.leave_one_out import to_markdown as leave_one_out_markdown

CHROMIUM = "/usr/bin/chromium"  # Debian's; kaleido renders the PNG with it unless BROWSER_PATH names another


COLUMNS = ("policy", "variant", "epochs", "seeds", "mean training time s", "mean training TFLOPs",
           "mean test acc %", "margin on FLOPs", "margin on seconds", "time efficiency")


def pair_rows(runs: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The .md table of one pair (``COLUMNS``): means over seeds, each run's margin over the frontier on both
    axes, and its time efficiency against the full budget ("n/a" where the runs carry no FLOPs)."""
    all_groups = groups(runs)
    flops = has_axis(runs, FLOPS)
    fronts = {axis: frontier([r for r in runs if r["policy"] == "none"], axis=axis)
              for axis in (SECONDS, FLOPS)
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
                     f"{g.flops / 1e12:.2f}" if g.flops is not None else "n/a", f"{100 * g.test_acc:.2f}",
                     *edges, f"{efficiency:.2f}" if efficiency is not None else "n/a"])
    return rows


def to_markdown(report: dict[str, Any], pngs: Sequence[dict[str, str]], header: dict[str, Any]) -> str:
    lines = ["# The budget frontier", "", f"`{header['command']}`  ",
             f"{header['started']}, {header['machine']['processor']}, {header['machine']['cpus']} CPUs, "
             f"torch {header['machine']['torch']}, {header['machine']['cuda'] or 'no GPU'}", "",
             "The frontier: the baseline (policy none) trained for fewer epochs, each budget with its own "
             "complete learning-rate schedule; margin: a run's mean test accuracy minus the frontier's at "
             "its mean training cost (linear interpolation, the line made monotone), in percentage points, "
             "on two axes: the training FLOPs (forward and backward actually run, cache builds and probe "
             "passes included: the same on every run of the same work) and the training seconds (what a user "
             "waits for; on a shared machine they swing). Variants are chosen on the FLOPs margin. Time "
             "efficiency: the share of time saved per share of FLOPs saved against the full budget. In the "
             "figures each policy and variant is one point, at its means over seeds."]
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
                                                            f"{p.axis}, {p.score:+.2f})"
                                                            for p in picks.values()) + "."]
        lines += [""] + [f"![test accuracy against training {axis}]({name})" for axis, name in png.items()]
        if not png:
            lines.append("(no figure: kaleido could not render one here)")
    if len(report["pairs"]) > 1:
        lines += ["", *held_out_section(report["pairs"])]
    return "\n".join(lines) + "\n"


def held_out_section(pairs: Sequence[dict[str, Any]]) -> list[str]:
    """The leave-one-pair-out table of ``report.leave_one_out``, with what it means."""
    return ["## Leave one pair out", "",
            "Per policy and held-out pair: the setting with the best mean validation margin (training FLOPs) "
            "on the *other* pairs, and its test margin on the held-out pair in points, over the frontier of "
            "training FLOPs (over the frontier of seconds in brackets); then the worst and the mean of "
            "those.", "",
            *leave_one_out_markdown(leave_one_out(pairs))]


def write_png(pair: dict[str, Any], path: Path, axis: str = SECONDS) -> bool:
    """The pair's figure on ``axis`` (plots.frontier_chart, points at the means over seeds) as a PNG through
    kaleido."""
    from ..report.plots import frontier_chart  # plotly only when writing

    if os.path.exists(CHROMIUM):
        os.environ.setdefault("BROWSER_PATH", CHROMIUM)
    others = [{"name": f"{g.policy} {g.variant}".replace(" default", ""), "policy": g.policy,
               "train_time_s": g.time_s, "train_flops": g.flops, "test_acc": g.test_acc}
              for g in groups(pair["runs"]) if g.policy != "none"]
    fig = frontier_chart([r for r in pair["runs"] if r["policy"] == "none"], others, named=True, axis=axis)
    fig.update_layout(title=pair["label"], margin=dict(l=70, r=30, t=60, b=140),
                      legend=dict(orientation="v", x=1.02, y=1, xanchor="left", yanchor="top",
                                  font=dict(size=12)))
    try:
        fig.write_image(str(path), width=1200, height=560)
    except Exception as exc:  # noqa: BLE001  (no kaleido, no browser: the .md says so, the results stand)
        why = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        print(f"note: no figure for {pair['label']}: {why}", file=sys.stderr)
        return False
    return True


def write_report(report: dict[str, Any], path: Path) -> None:
    """The report as ``path`` (.json) and, beside it, its .md and one PNG per pair with runs and axis (FLOPs
    where the runs carry them, seconds); also after the fact, from a report a stopped measurement left
    (``python -m learndrop.bench.report FILE.json``)."""
    path.write_text(json.dumps(report, indent=2))
    stem = path.with_suffix("")
    pngs = []
    for i, pair in enumerate(report["pairs"]):
        axes = [axis for axis in (FLOPS, SECONDS) if pair["runs"] and has_axis(pair["runs"], axis)]
        names = {axis: f"{stem.name}-{i + 1}{'-flops' if axis == FLOPS else ''}.png" for axis in axes}
        pngs.append({axis: name for axis, name in names.items() if write_png(pair, path.parent / name, axis)})
    (path.with_suffix(".md")).write_text(to_markdown(report, pngs, report["header"]))


def merged_pairs(reports: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reports' pairs, one per label, in the order first seen; a pair's runs from every report."""
    pairs: dict[str, dict[str, Any]] = {}
    for report in reports:
        for pair in report["pairs"]:
            kept = pairs.setdefault(pair["label"], {**pair, "runs": []})
            kept["runs"] = [*kept["runs"], *pair["runs"]]
    return list(pairs.values())


def main(argv: Sequence[str]) -> None:
    """``python -m learndrop.bench.report FILE.json ...``: each report's .md and PNGs written again; with
    ``--leave-one-out``, the held-out table over every pair of the files given, printed (a pair in several
    files, e.g. one seed each, has all their runs)."""
    files = [Path(name) for name in argv if name != "--leave-one-out"]
    if "--leave-one-out" in argv:
        reports = [json.loads(f.read_text()) for f in files]
        print("\n".join(held_out_section(merged_pairs(reports))))
        return
    for path in files:
        write_report(json.loads(path.read_text()), path)


if __name__ == "__main__":
    main(sys.argv[1:])
