"""Add Learn&Drop variants to a finished frontier report: train them for each of its built-in pairs and seeds,
append them to its runs, marked ``"supplement": true`` (trained after the interleaved measurement, one after
the other), and write its .md and figures again. Their training FLOPs and accuracies do not depend on when
they ran; their seconds do (the .md's FLOPs margins are the ones to read for them).

    python benchmarks/frontier_supplement.py benchmarks/results/frontier-X.json --scenario transfer \\
        --seeds 0,1 --variants "measure=function,peak=network,tau=0.3,kappa=1000000"

A leave-one-out report measured the scenario's held-out pairs (``--pairs heldout``).

It also completes a measurement that was cut short: the runs of the plan not in the report yet (by policy,
variant, epochs and seed), ``--policies`` naming which to train (``none`` for the frontier's budgets):

    python benchmarks/frontier_supplement.py benchmarks/results/frontier-X.json --scenario transfer \\
        --seeds 1 --policies none,learndrop,freeze-first-k
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learndrop.bench.frontier import parse_seeds, parse_variants, plan, run_pair  # noqa: E402
from learndrop.bench.pairs import SCENARIOS, default_root  # noqa: E402
from learndrop.bench.report import write_report  # noqa: E402
from learndrop.config import PolicyConfig  # noqa: E402
from learndrop.runs.store import RunStore  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("report", type=Path)
    p.add_argument("--scenario", required=True)
    p.add_argument("--pairs", default="full", help="which of the scenario's lists the report measured: full "
                   "or heldout (a --leave-one-out report)")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--variants", default="", help="Learn&Drop variants beyond the plan's default")
    p.add_argument("--policies", default=None, help="comma-separated: train only these policies' runs")
    p.add_argument("--data-root", default=None)
    p.add_argument("--runs-dir", type=Path, default=Path("benchmarks") / "runs")
    a = p.parse_args(argv)
    report = json.loads(a.report.read_text())
    root = a.data_root or default_root()
    for entry in report["pairs"]:
        (pair,) = [q for q in SCENARIOS[a.scenario][a.pairs] if entry["label"].split(" [")[0] == q.label]
        done = {(r["policy"], r["variant"], r["epochs"], r["seed"]) for r in entry["runs"]}
        wanted = set(a.policies.split(",")) if a.policies else None
        variants = parse_variants(a.variants) if a.variants else []
        planned = [(v, c) for v, c in plan(pair, root, PolicyConfig(), variants, parse_seeds(a.seeds))
                   if (c.policy.name, v, c.epochs, c.seed) not in done
                   and (wanted is None or c.policy.name in wanted)]
        print(f"{pair.label}: {len(planned)} runs")
        kept = list(entry["runs"])

        def landed(runs: list[dict], entry: dict = entry, kept: list[dict] = kept) -> None:
            entry["runs"] = kept + [{**r, "supplement": True} for r in runs]
            a.report.write_text(json.dumps(report, indent=2))

        run_pair(pair, root, [(v, dataclasses.replace(c, device="cpu")) for v, c in planned], RunStore(a.runs_dir),
                 print, None, landed)
    write_report(report, a.report)


if __name__ == "__main__":
    main()
