"""Trains one small run in each process torchrun starts (or alone, as one process) and saves what each ended
with: ``python -m torch.distributed.run --standalone --nproc-per-node 2 tests/ddp_worker.py OUT``.

Every process gets a sink (the CLI gives one to rank 0 only) so that the test sees each process's cache.
"""

from __future__ import annotations

import sys

import torch

from learndrop import events as ev
from learndrop.config import PolicyConfig, RunConfig
from learndrop.training.loop import train
from learndrop.training.prepare import prepare
from learndrop.training.world import World

CONFIG = dict(subset=4000, epochs=4, batch_size=128, checks_per_epoch=2, device="cpu")
# Learn&Drop's own criterion (every unit a candidate past the warm-up, so that it drops on any CPU), and a
# schedule that drops by progress alone
POLICIES = {"learndrop": PolicyConfig(tau=1.0, kappa=1e9, warmup=2), "schedule": PolicyConfig(name="schedule")}


def main(out: str) -> None:
    world = World.from_environment()
    for name, policy in POLICIES.items():
        config = RunConfig(**CONFIG, policy=policy, world_size=world.size)
        setup = prepare(config)
        events: list[ev.Event] = []
        summary = train(config, [events.append], setup=setup, world=world)
        torch.save({"state": {k: v.detach().cpu() for k, v in setup.model.state_dict().items()},
                    "drops": [(e.unit, e.check) for e in events if isinstance(e, ev.UnitDropped)],
                    "caches": [(e.units, e.rows, e.bytes) for e in events if isinstance(e, ev.CacheBuilt)],
                    "train_size": len(setup.train_data), "summary": summary}, f"{out}/rank{world.rank}-{name}.pt")
    world.close()


if __name__ == "__main__":
    main(sys.argv[1])
