"""The Learn&Drop training loop: one function that reads top to bottom (SPEC §3-§5).

``train(config, sinks, control)`` trains the network, scores its units at every check, drops the
prefix the policy says has stopped learning, and emits typed events to the sinks. Evaluation and the
saved model always use the full network (prefix + suffix).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import events as ev
from .config import RunConfig
from .control import TrainingControl
from .data import ImageData, create_dataset
from .device import resolve_device, synchronize
from .dropping import ActivationCache, freeze_units, param_groups, set_train_mode, trainable_parameters
from .errors import LearnDropError
from .flops import StepFlops, measure_step_flops
from .loader import ImageBatches, Normalizer, epoch_batches
from .models import UnitNetwork, create_model
from .policy import initial_state
from .policy import step as policy_step
from .scores import relative_changes, snapshot
from .summary import summarize

EVAL_BATCH = 512


class StopRequested(Exception):
    """Raised inside the loop when the control's stop flag is set (never escapes ``train``)."""


@dataclass
class Setup:
    """What a run needs before its first step: device, data in memory, the model."""

    device: torch.device
    train_data: ImageData
    test_data: ImageData
    model: UnitNetwork


def prepare(config: RunConfig) -> Setup:
    """Validate the config, load the data and build the model; ``LearnDropError`` on bad input."""
    config.validate()
    device = resolve_device(config.device)
    train_data = create_dataset(config.dataset, config.data_root, True, config.download, config.image_size,
                                config.subset)
    test_data = create_dataset(config.dataset, config.data_root, False, config.download, train_data.size)
    if config.batch_size > len(train_data):
        raise LearnDropError(f"batch size {config.batch_size} is larger than the training set "
                             f"({len(train_data)} images)")
    seed_everything(config.seed)
    model = create_model(config.model, len(train_data.classes), train_data.channels, train_data.size,
                         config.width, config.pretrained)
    return Setup(device, train_data, test_data, model)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_at(config: RunConfig, step: int, total_steps: int) -> float:
    """Learning rate at optimizer step ``step`` (0-based) of ``total_steps``."""
    progress = step / max(1, total_steps)
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * progress))
    if config.lr_schedule == "onecycle":  # linear warm-up over 20 %, then linear decay to 0
        return config.lr * (progress / 0.2 if progress < 0.2 else (1 - progress) / 0.8)
    return config.lr


@torch.no_grad()
def evaluate(model: UnitNetwork, batches: ImageBatches, use_amp: bool) -> tuple[float, float]:
    """Mean loss and accuracy of the full network on a split."""
    model.eval()
    loss_sum = torch.zeros((), device=batches.device)
    correct = torch.zeros((), device=batches.device, dtype=torch.long)
    for idx in epoch_batches(len(batches), EVAL_BATCH, 0, 0, shuffle=False):
        x, y = batches.get(idx)
        with torch.autocast(batches.device.type, dtype=torch.bfloat16, enabled=use_amp):
            out = model(x)
        loss_sum += F.cross_entropy(out.float(), y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
    n = len(batches)
    return float(loss_sum) / n, float(correct) / n


def train(config: RunConfig, sinks: Sequence[ev.Sink] = (), control: TrainingControl | None = None,
          run_id: str = "run", run_dir: Path | None = None, setup: Setup | None = None) -> dict:
    """Train one run and return its summary. ``run_dir`` receives model.pt (the full network).

    Every exit path emits ``run_finished`` from ``finally``: completed, stopped (the control's stop
    flag, checked before every step), failed (the error is re-raised) or interrupted (Ctrl-C).
    """
    setup = setup or prepare(config)
    control = control or TrainingControl(config.policy)
    device, model = setup.device, setup.model
    recorded: list[ev.Event] = []
    t0 = time.perf_counter()
    emit = ev.Emitter(run_id, [recorded.append, *sinks], clock=lambda: time.perf_counter() - t0)

    # --- model, optimizer, data on the device -------------------------------------------------------
    channels_last = device.type in ("cpu", "cuda")
    use_amp = device.type == "cuda"
    model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    optimizer = torch.optim.SGD(param_groups(model), lr=config.lr, momentum=config.momentum,
                                nesterov=config.momentum > 0, weight_decay=config.weight_decay)
    normalizer = Normalizer(setup.train_data.images, device, channels_last)
    train_batches = ImageBatches(setup.train_data, normalizer, device, augment=config.augment)
    test_batches = ImageBatches(setup.test_data, normalizer, device)
    augment_gen = torch.Generator().manual_seed(config.seed + 1)
    n_train = len(train_batches)
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    check_steps = {math.ceil((j + 1) * steps_per_epoch / config.checks_per_epoch) - 1
                   for j in range(config.checks_per_epoch)}
    input_shape = tuple(setup.train_data.images.shape[1:])
    names = list(model.unit_names)

    # --- Learn&Drop state ----------------------------------------------------------------------------
    policy = control.policy()
    state = initial_state(names)
    previous = snapshot([model.unit(i) for i in range(len(names))])
    dropped, frozen = 0, []
    cache: ActivationCache | None = None
    cache_refused_at = -1  # prefix length for which a cache_skipped event was sent
    use_cache = config.cache and not config.augment
    full_flops = measure_step_flops(model, input_shape)
    step_flops: StepFlops = full_flops

    emit(ev.RunStarted, config=config.to_dict(), device=str(device), train_size=n_train,
         test_size=len(test_batches), classes=list(setup.train_data.classes), steps_per_epoch=steps_per_epoch,
         input_shape=list(input_shape),
         units=[{"name": n, "params": sum(p.numel() for p in model.get_submodule(n).parameters()),
                 "fwd_flops": full_flops.fwd[n], "bwd_flops": full_flops.bwd[n]}
                for n in (*names, model.head_name)])
    status, error, saved_ok = "completed", None, True
    try:
        for epoch in range(config.epochs):
            emit.epoch = epoch
            emit(ev.EpochStarted, lr=lr_at(config, emit.step, total_steps))
            set_train_mode(model, dropped, frozen)
            paused_s = instrument_s = data_s = 0.0
            fwd = bwd = 0
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            window_loss, window_images, window_start = torch.zeros((), device=device), 0, time.perf_counter()
            epoch_start = time.perf_counter()
            batches = epoch_batches(n_train, config.batch_size, config.seed, epoch)
            for i, idx in enumerate(batches):
                if control.stop_requested:
                    raise StopRequested
                if control.paused:
                    emit(ev.RunPaused)
                    waited = control.wait_while_paused()
                    paused_s += waited
                    window_start += waited
                    emit(ev.RunResumed, paused_s=round(waited, 3))
                    if control.stop_requested:
                        raise StopRequested
                lr = lr_at(config, emit.step, total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr

                # (re)build the activation cache when the prefix has grown and the inputs are deterministic
                if dropped and use_cache and (cache is None or cache.units != dropped) \
                        and cache_refused_at != dropped:
                    cache, cost = _update_cache(model, train_batches, cache, dropped, config, emit, full_flops)
                    fwd += cost
                    if cache is None or cache.units != dropped:
                        cache_refused_at = dropped
                    t_flops = time.perf_counter()
                    step_flops = measure_step_flops(model, input_shape, dropped, cached=cache is not None
                                                    and cache.units == dropped)
                    instrument_s += time.perf_counter() - t_flops

                # data: cached prefix output, or normalised (augmented) images
                t_data = time.perf_counter()
                cached = cache is not None and cache.units == dropped and dropped > 0
                if cached:
                    x, y = cache.batch(idx), train_batches.labels[idx.to(device)]
                else:
                    x, y = train_batches.get(idx, augment_gen)
                data_s += time.perf_counter() - t_data

                # forward: the dropped prefix under no_grad (unless cached), the suffix with autograd
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    if dropped and not cached:
                        with torch.no_grad():
                            x = model.forward_units(x, 0, dropped)
                    out = model.forward_from(x, dropped)
                    loss = F.cross_entropy(out.float(), y, label_smoothing=config.label_smoothing)

                # backward, step
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                emit.step += 1

                # accounting without device syncs
                b = len(idx)
                loss_sum += loss.detach() * b
                window_loss += loss.detach() * b
                window_images += b
                correct += (out.argmax(1) == y).sum()
                fwd += step_flops.fwd_total * b
                bwd += step_flops.bwd_total * b

                # check: score every unit still training, let the policy decide, drop the prefix
                if i in check_steps and (config.instrument or config.policy.name != "none"):
                    t_check = time.perf_counter()
                    new_policy = control.policy()
                    if new_policy != policy:
                        emit(ev.ThresholdsChanged, old=policy.thresholds(), new=new_policy.thresholds())
                        policy = new_policy
                    active = [k for k in range(len(names)) if k >= dropped and names[k] not in frozen]
                    current = snapshot([model.unit(k) for k in active])
                    changes = relative_changes([previous[k] for k in active], current)
                    for k, snap in zip(active, current):
                        previous[k] = snap
                    d = [None] * len(names)
                    for k, value in zip(active, changes):
                        d[k] = value
                    state, decision = policy_step(state, d, policy, allow_drop=policy.name == "learndrop")
                    emit(ev.LayerScores, check=decision.check, thresholds=policy.thresholds(),
                         scores=[vars(s) for s in decision.scores])
                    for drop in decision.drops:
                        emit(ev.LayerDropped, unit=drop.unit, index=drop.index, check=decision.check, s=drop.s,
                             c=drop.c, reason=drop.reason)
                    for name in decision.frozen:
                        emit(ev.LayerFrozen, unit=name, check=decision.check)
                    if decision.drops or decision.frozen:
                        freeze_units(model, optimizer, [dr.unit for dr in decision.drops] + list(decision.frozen))
                        dropped = state.dropped
                        frozen = [names[k] for k in state.frozen]
                        step_flops = measure_step_flops(model, input_shape, dropped, cached=False)
                    instrument_s += time.perf_counter() - t_check

                # progress: one device sync every few steps
                if config.instrument and (emit.step % config.progress_every == 0 or i == len(batches) - 1):
                    t_progress = time.perf_counter()
                    mean_loss = float(window_loss) / max(1, window_images)
                    if not math.isfinite(mean_loss):
                        raise _diverged(mean_loss, epoch, emit.step)
                    elapsed = max(1e-9, time.perf_counter() - window_start)
                    emit(ev.Progress, loss=mean_loss, images_per_s=window_images / elapsed, lr=lr,
                         epoch_step=i + 1, epoch_steps=len(batches))
                    window_loss.zero_()
                    window_images, window_start = 0, time.perf_counter()
                    instrument_s += time.perf_counter() - t_progress

            # end of epoch: time the training work only, then evaluate the full network apart
            synchronize(device)
            epoch_time = time.perf_counter() - epoch_start - paused_s
            train_loss = float(loss_sum) / n_train
            if not math.isfinite(train_loss):
                raise _diverged(train_loss, epoch, emit.step)
            t_eval = time.perf_counter()
            val_loss, val_acc = evaluate(model, test_batches, use_amp)
            synchronize(device)
            eval_time = time.perf_counter() - t_eval
            emit(ev.EpochEnded, train_loss=train_loss, train_acc=float(correct) / n_train, val_loss=val_loss,
                 val_acc=val_acc, epoch_time_s=epoch_time, eval_time_s=eval_time, instrument_time_s=instrument_s,
                 data_time_s=data_s, fwd_flops=fwd, bwd_flops=bwd,
                 baseline_fwd_flops=full_flops.fwd_total * n_train, baseline_bwd_flops=full_flops.bwd_total * n_train,
                 trainable_params=trainable_parameters(model), active_units=len(names) - dropped - len(frozen),
                 images=n_train)
            if run_dir is not None:
                _save_model(model, run_dir)  # the last good model, should a later epoch diverge
    except StopRequested:
        status = "stopped"
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted by the user (Ctrl-C)"
        raise
    except LearnDropError as exc:
        status, error, saved_ok = "failed", str(exc), False
        raise
    except Exception as exc:
        status, error, saved_ok = "failed", f"{type(exc).__name__}: {exc}", False
        raise
    finally:
        if run_dir is not None and saved_ok and status != "interrupted":
            _save_model(model, run_dir)
        emit(ev.RunFinished, status=status, error=error)
    return summarize(recorded)


def _update_cache(model: UnitNetwork, batches: ImageBatches, cache: ActivationCache | None, dropped: int,
                  config: RunConfig, emit: ev.Emitter, full_flops: StepFlops) -> tuple[ActivationCache | None, int]:
    """Build or extend the cache for a prefix of ``dropped`` units; returns it and its forward FLOPs."""
    dtype = getattr(torch, config.cache_dtype)
    sample = batches.get(torch.arange(1))[0]
    needed = ActivationCache.bytes_needed(model, sample, dropped, len(batches), dtype)
    if needed > config.cache_max_mb * 2**20:
        emit(ev.CacheSkipped, bytes_needed=needed,
             reason=f"the prefix output needs {needed / 2**20:.0f} MiB, over the {config.cache_max_mb:g} MiB cap; "
                    "the prefix is recomputed every step under no_grad")
        return None, 0
    set_train_mode(model, dropped)
    start = cache.units if cache is not None else 0
    new, seconds = ActivationCache.build(model, batches, len(batches), dropped, dtype, EVAL_BATCH, previous=cache)
    cost = sum(full_flops.fwd[n] for n in model.unit_names[start:dropped]) * len(batches)
    emit(ev.CacheBuilt, units=dropped, bytes=new.nbytes, seconds=round(seconds, 4), dtype=config.cache_dtype,
         extended=cache is not None, fwd_flops=cost)
    return new, cost


def _diverged(loss: float, epoch: int, step: int) -> LearnDropError:
    return LearnDropError(f"training diverged: the loss became {loss} at epoch {epoch + 1}, step {step}; "
                          "try a lower learning rate")


def _save_model(model: UnitNetwork, run_dir: Path) -> None:
    """Atomic write of the full network's state_dict (loaded back with ``weights_only=True``)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "model.pt.tmp"
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    tmp.replace(run_dir / "model.pt")
