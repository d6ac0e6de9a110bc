"""Probe: is a unit's late movement still learning (drift) or equilibrium noise (diffusion)?

Trains the benchmark's VGG-11 x0.25 / CIFAR-10 baseline (policy ``none``, two checks per epoch) and
keeps every check's snapshot of each unit's parameters (conv filters at unit length, as the change
score measures them). For each unit and check t it prints the coherence

    r_k(t) = ||θ(t) − θ(t−k)|| / Σ_{j<k} ||θ(t−j) − θ(t−j−1)||

which is 1 for movement in a straight line (drift: the unit is still going somewhere) and about
1/√k for a random walk (diffusion: the unit jitters around where it is). A drop rule built on it
would drop units whose r_k has fallen to the random-walk level.

    .venv/bin/python benchmarks/drift_probe.py [--epochs 15] [--data-root ../shared/data] [--out FILE]

About 6 minutes on 2 CPU cores; the snapshots stay in memory (a few MB per check).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import learndrop.training.loop as training  # noqa: E402
from learndrop.config import PolicyConfig, RunConfig  # noqa: E402
from learndrop.runs.store import RunStore  # noqa: E402


def record_snapshots(config: RunConfig) -> list[list[torch.Tensor]]:
    """Train ``config`` and return the snapshot of every unit at the start and at every check."""
    snaps: list[list[torch.Tensor]] = []
    original = training.snapshot

    def keep(units, directions=False):
        out = original(units, directions)
        snaps.append([s.cpu().clone() for s in out])
        return out

    training.snapshot = keep  # a baseline scores every unit at every check, so each call sees all of them
    try:
        with tempfile.TemporaryDirectory() as tmp:
            writer = RunStore(tmp).create(config)
            training.train(config, [writer], run_id=writer.run_id, run_dir=writer.dir)
            writer.close()
    finally:
        training.snapshot = original
    return snaps


def coherence(snaps: list[list[torch.Tensor]], k: int) -> list[list[float]]:
    """r_k(t) for t = k .. len(snaps) − 1 (rows) and each unit (columns)."""
    dist = lambda t, back, u: float((snaps[t][u] - snaps[t - back][u]).norm())  # noqa: E731
    units = range(len(snaps[0]))
    return [[dist(t, k, u) / max(1e-12, sum(dist(t - j, 1, u) for j in range(k))) for u in units]
            for t in range(k, len(snaps))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", type=Path, help="also write the tables here")
    args = parser.parse_args()
    config = RunConfig(model="vgg11", width=0.25, dataset=f"folder:{args.data_root}/cifar10", epochs=args.epochs,
                       batch_size=128, lr=0.05, lr_schedule="wsd", weight_decay=5e-4, augment=True,
                       checks_per_epoch=2, policy=PolicyConfig(name="none"))
    snaps = record_snapshots(config)
    lines = []
    for k in (2, 4):
        lines += ["", f"r_{k}: drift 1.00, random walk {k ** -0.5:.2f}; rows: check (2 per epoch), columns: units",
                  "check " + " ".join(f"u{u:<4}" for u in range(len(snaps[0])))]
        lines += [f"{t:<5} " + " ".join(f"{v:.2f} " for v in row)
                  for t, row in zip(range(k, len(snaps)), coherence(snaps, k))]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(f"`python benchmarks/drift_probe.py --epochs {args.epochs}`\n{text}\n")


if __name__ == "__main__":
    main()
