"""Synthetic recorded runs of any size, made of the real event classes and decided by the real policy.

A unit's change decays towards a floor, earlier units faster, so the policy drops a prefix as a real
run would. Used by the plot, app and browser tests and by benchmarks/ui_latency.py (a 100-epoch,
50-unit run to time the Train page).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

from learndrop import events as ev
from learndrop.config import PolicyConfig, RunConfig
from learndrop.method.policy import initial_state, step
from learndrop.runs.store import RunStore


def fake_config(units: int, epochs: int, checks_per_epoch: int = 1, policy: str = "learndrop",
                stream: int = 1) -> RunConfig:
    """``epochs`` per data chunk: a streaming run (``stream`` > 1 chunks, by class) trains epochs x stream."""
    return RunConfig(model="resnet56", dataset="shapes", epochs=epochs, checks_per_epoch=checks_per_epoch,
                     batch_size=128, device="cpu", policy=PolicyConfig(name=policy), stream=stream,
                     stream_by="class")


def fake_events(run_id: str, config: RunConfig, units: int = 50, train_size: int = 10_000, seed: int = 0,
                finished: bool = True) -> Iterator[ev.Event]:
    """A whole run's events, in the order ``train`` emits them."""
    rng = random.Random(seed)
    names = [f"layer{1 + i * 3 // units}.{i}" for i in range(units)]
    per_unit = [{"name": n, "params": 10_000 + 500 * i, "fwd_flops": 2_000_000 + 40_000 * i,
                 "bwd_flops": 4_000_000 + 80_000 * i} for i, n in enumerate(names)]
    head = {"name": "head", "params": 650, "fwd_flops": 1_280, "bwd_flops": 2_560}
    full_fwd = sum(u["fwd_flops"] for u in per_unit) + head["fwd_flops"]
    full_bwd = sum(u["bwd_flops"] for u in per_unit) + head["bwd_flops"]
    chunks = config.stream
    chunk_size = train_size // chunks
    steps = math.ceil(chunk_size / config.batch_size)
    classes_of = [list(range(10))[k * 10 // chunks:(k + 1) * 10 // chunks] for k in range(chunks)]
    checks = config.checks_per_epoch
    t, step_no, check = 0.0, 0, 0
    state = initial_state(names)
    policy = config.policy
    total_steps = steps * config.epochs * chunks
    yield ev.RunStarted(run_id=run_id, epoch=0, step=0, time_s=0.0, config=config.to_dict(), units=[*per_unit, head],
                        device="cpu", train_size=train_size, test_size=2_000, classes=[str(c) for c in range(10)],
                        steps_per_epoch=steps, input_shape=[3, 32, 32], total_steps=total_steps,
                        val_size=config.val_split)
    for epoch in range(config.epochs * chunks):
        chunk, of_chunk = divmod(epoch, config.epochs)
        if chunks > 1 and of_chunk == 0:
            yield ev.ChunkStarted(run_id=run_id, epoch=epoch, step=step_no, time_s=round(t, 3), chunk=chunk,
                                  chunks=chunks, images=chunk_size, classes=classes_of[chunk])
        yield ev.EpochStarted(run_id=run_id, epoch=epoch, step=step_no, time_s=round(t, 3), lr=config.lr)
        fwd = bwd = 0
        epoch_time = 0.0
        for j in range(checks):
            span = steps // checks
            dropped = state.dropped
            cost = 1.0 - 0.8 * dropped / units
            fwd += int((full_fwd - sum(u["fwd_flops"] for u in per_unit[:dropped])) * chunk_size / checks)
            bwd += int((full_bwd - sum(u["bwd_flops"] for u in per_unit[:dropped])) * chunk_size / checks)
            for k in range(0, span, max(1, span // 4)):
                step_no += max(1, span // 4)
                t += 0.05 * cost * max(1, span // 4)
                yield ev.Progress(run_id=run_id, epoch=epoch, step=step_no, time_s=round(t, 3),
                                  loss=2.3 * math.exp(-step_no / (steps * 3)) + 0.05, images_per_s=2_000 / cost,
                                  lr=config.lr, epoch_step=min(steps, j * span + k + max(1, span // 4)),
                                  epoch_steps=steps)
            epoch_time += 0.05 * cost * span
            check += 1
            d = [None if i < state.dropped else
                 (0.3 * math.exp(-check / (2 + 0.15 * i)) + 0.02 + 0.01 * rng.random()) for i in range(units)]
            state, decision = step(state, d, policy, allow_drop=policy.name == "learndrop",
                                   progress=step_no / total_steps)
            yield ev.UnitScores(run_id=run_id, epoch=epoch, step=step_no, time_s=round(t, 3), check=check,
                                 thresholds=policy.thresholds(), scores=[vars(s) for s in decision.scores])
            for drop in decision.drops:
                yield ev.UnitDropped(run_id=run_id, epoch=epoch, step=step_no, time_s=round(t, 3), unit=drop.unit,
                                      index=drop.index, check=check, s=drop.s, c=drop.c, reason=drop.reason)
        acc = 0.95 - 0.85 * math.exp(-(epoch + 1) / 3)
        val = acc - 0.01 if config.val_split else None  # the validation split's, where one is held out
        yield ev.EpochEnded(run_id=run_id, epoch=epoch, step=step_no, time_s=round(t, 3), train_loss=0.3, train_acc=acc,
                            test_loss=0.35, test_acc=acc - 0.02, val_loss=None if val is None else 0.34, val_acc=val,
                            epoch_time_s=epoch_time, eval_time_s=0.1,
                            instrument_time_s=0.01, data_time_s=0.01, fwd_flops=fwd, bwd_flops=bwd,
                            baseline_fwd_flops=full_fwd * chunk_size, baseline_bwd_flops=full_bwd * chunk_size,
                            trainable_params=1, active_units=units - state.dropped, images=chunk_size)
        if chunks > 1 and of_chunk == config.epochs - 1:
            seen = [c for k in range(chunk + 1) for c in classes_of[k]]
            yield ev.ChunkEnded(run_id=run_id, epoch=epoch, step=step_no, time_s=round(t, 3), chunk=chunk,
                                test_acc=(acc - 0.02) * len(seen) / 10, seen_acc=acc - 0.02, val_acc=val,
                                per_class_acc={str(c): acc - 0.02 for c in seen})
    if finished:
        yield ev.RunFinished(run_id=run_id, epoch=config.epochs * chunks - 1, step=step_no, time_s=round(t, 3),
                             status="completed")


def write_fake_run(store: RunStore, units: int = 50, epochs: int = 100, checks_per_epoch: int = 1,
                   policy: str = "learndrop", finished: bool = True, stream: int = 1) -> str:
    """Record a synthetic run in ``store``; returns its id."""
    config = fake_config(units, epochs, checks_per_epoch, policy, stream)
    writer = store.create(config)
    for event in fake_events(writer.run_id, config, units, finished=finished):
        writer(event)
    writer.close()
    return writer.run_id
