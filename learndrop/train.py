"""The Learn&Drop training loop: one function that reads top to bottom (SPEC §3-§5).

``train(config, sinks, control)`` trains the network, scores its units at every check, drops the
prefix the policy says has stopped learning, and emits typed events to the sinks. Evaluation and the
saved model always use the full network (prefix + suffix). With ``stream > 1`` the training set
arrives in chunks, each trained for ``epochs`` epochs; scores, drops and the cache carry across.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from . import events as ev
from .checkpoint import save_checkpoint
from .config import PolicyConfig, RunConfig
from .control import TrainingControl
from .method.dropping import ActivationCache, augmented_views, freeze_units, param_groups, set_train_mode, trainable_parameters
from .errors import LearnDropError
from .method.flops import StepFlops, measure_step_flops
from .loader import CROP_PADDING, ImageBatches, Normalizer, epoch_batches, stream_chunks
from .models import UnitNetwork
from .method.policy import PolicyState, initial_state
from .method.policy import step as policy_step
from .method.scores import relative_changes, snapshot
from .setup import EVAL_BATCH, Setup, evaluate, prepare
from .summary import summarize

MIN_LR_FACTOR = 0.01  # the lr normalisation never scales d up more than 100x (the end of a decay to 0)


class StopRequested(Exception):
    """Raised inside the loop when the control's stop flag is set (never escapes ``train``)."""


def lr_at(config: RunConfig, step: int, total_steps: int) -> float:
    """Learning rate at optimizer step ``step`` (0-based) of ``total_steps``."""
    progress = step / max(1, total_steps)
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * progress))
    if config.lr_schedule == "onecycle":  # linear warm-up over 20 %, then linear decay to 0
        return config.lr * (progress / 0.2 if progress < 0.2 else (1 - progress) / 0.8)
    if config.lr_schedule == "wsd":  # warm-up over 5 %, stable until 70 %, linear decay to 0
        return config.lr * min(1.0, progress / 0.05, (1 - progress) / 0.3)
    return config.lr


@dataclass
class Method:
    """Learn&Drop's state while a run trains: what a checkpoint saves besides weights and optimizer."""

    policy: PolicyConfig  # the live thresholds last read
    state: PolicyState
    previous: list[torch.Tensor]  # per unit, its parameters at the last check
    step_flops: StepFlops  # per-sample FLOPs of the current step
    dropped: int = 0
    frozen: list[str] = field(default_factory=list)
    cache: ActivationCache | None = None
    cache_ops: list[list] = field(default_factory=list)  # ["add", units, chunk] | ["extend", units], in order
    cache_refused: int = -1  # prefix length for which the cache was refused (over its cap)
    lr_sum: float = 0.0  # learning rates of the steps since the last check, summed
    lr_steps: int = 0


def train(config: RunConfig, sinks: Sequence[ev.Sink] = (), control: TrainingControl | None = None,
          run_id: str = "run", run_dir: Path | None = None, setup: Setup | None = None,
          checkpoint: dict | None = None, history: Sequence[ev.Event] = ()) -> dict:
    """Train one run and return its summary. ``run_dir`` receives model.pt and checkpoint.pt per epoch.

    Every exit path emits ``run_finished`` from ``finally``: completed, stopped (the control's stop
    flag, checked before every step), failed (the error is re-raised) or interrupted (Ctrl-C).
    ``checkpoint`` and ``history`` (the events up to it) continue an earlier run (see ``resume``).
    """
    setup = setup or prepare(config)
    control = control or TrainingControl(config.policy)
    device, model = setup.device, setup.model
    recorded: list[ev.Event] = list(history)
    t0 = time.perf_counter() - (checkpoint["time_s"] if checkpoint else 0.0)
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
    chunks = stream_chunks(setup.train_data.labels, config.stream, config.stream_by)
    steps_per_epoch = [math.ceil(len(c) / config.batch_size) for c in chunks]
    total_steps = sum(steps_per_epoch) * config.epochs
    input_shape = tuple(setup.train_data.images.shape[1:])
    names = list(model.unit_names)
    # With augmentation the cache holds a fixed set of exact augmented views per image (dropping.py).
    use_cache = config.cache
    view_sets = (augmented_views(CROP_PADDING, setup.train_data.flip) if config.augment else [[(0, 0, False)]])
    full_flops = measure_step_flops(model, input_shape)
    reference = [setup.reference_peaks[n] for n in names] if setup.reference_peaks else None
    m = Method(control.policy(), initial_state(names, reference), [], full_flops)

    start_epoch, carry_fwd, carry_s = 0, 0, 0.0
    if checkpoint is None:
        emit(ev.RunStarted, config=config.to_dict(), device=str(device), train_size=len(train_batches),
             test_size=len(test_batches), classes=list(setup.train_data.classes),
             steps_per_epoch=steps_per_epoch[0], total_steps=total_steps, input_shape=list(input_shape),
             data_notes=list(setup.train_data.notes + setup.test_data.notes), reference_peaks=setup.reference_peaks,
             units=[{"name": n, "params": sum(p.numel() for p in model.get_submodule(n).parameters()),
                     "fwd_flops": full_flops.fwd[n], "bwd_flops": full_flops.bwd[n]}
                    for n in (*names, model.head_name)])
    else:
        start_epoch = checkpoint["epoch"] + 1
        emit.epoch, emit.step = start_epoch, checkpoint["step"]
        emit(ev.CheckpointRestored, from_epoch=start_epoch, set_aside=checkpoint.get("set_aside", 0),
             previous_status=checkpoint.get("previous_status", "interrupted"))
        carry_fwd, carry_s = _restore(checkpoint, model, optimizer, m, augment_gen, train_batches, chunks,
                                      full_flops, input_shape, emit, getattr(torch, config.cache_dtype))
    m.previous = snapshot([model.unit(i) for i in range(len(names))], config.policy.measure == "directions")

    status, error, save_at_end = "completed", None, True
    try:
        for epoch in range(start_epoch, config.epochs * len(chunks)):
            chunk_index, first_of_chunk = divmod(epoch, config.epochs)
            chunk = chunks[chunk_index]
            emit.epoch = epoch
            if len(chunks) > 1 and first_of_chunk == 0:
                emit(ev.ChunkStarted, chunk=chunk_index, chunks=len(chunks), images=len(chunk),
                     classes=sorted(set(setup.train_data.labels[chunk].tolist())))
            emit(ev.EpochStarted, lr=lr_at(config, emit.step, total_steps))
            set_train_mode(model, m.dropped, m.frozen)
            paused_s = instrument_s = data_s = 0.0
            fwd, bwd, cache_s = carry_fwd, 0, carry_s
            carry_fwd, carry_s = 0, 0.0
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            window_loss, window_images, window_start = torch.zeros((), device=device), 0, time.perf_counter()
            batches = [chunk[b] for b in epoch_batches(len(chunk), config.batch_size, config.seed, epoch)]
            check_steps = {math.ceil((j + 1) * len(batches) / config.checks_per_epoch) - 1
                           for j in range(config.checks_per_epoch)}
            epoch_start = time.perf_counter()
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
                m.lr_sum, m.lr_steps = m.lr_sum + lr, m.lr_steps + 1

                # the activation cache: fill or extend it when the prefix or the data has grown
                if m.dropped and use_cache and m.cache_refused != m.dropped and not (
                        m.cache is not None and m.cache.covers(m.dropped, chunk)):
                    epochs_left = config.epochs * len(chunks) - epoch
                    fwd += _update_cache(model, train_batches, m, chunk, chunk_index, config, emit, full_flops,
                                         input_shape, view_sets, epochs_left)

                # data: cached prefix output, or normalised (augmented) images
                t_data = time.perf_counter()
                cached = m.dropped > 0 and m.cache is not None and m.cache.covers(m.dropped, chunk)
                if cached:
                    views = m.cache.views
                    view = torch.randint(0, views, (len(idx),), generator=augment_gen) if views > 1 else None
                    x, y = m.cache.batch(idx, view), train_batches.labels[idx.to(device)]
                else:
                    x, y = train_batches.get(idx, augment_gen)
                data_s += time.perf_counter() - t_data

                # forward: the dropped prefix under no_grad (unless cached), the suffix with autograd
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    if m.dropped and not cached:
                        with torch.no_grad():
                            x = model.forward_units(x, 0, m.dropped)
                    out = model.forward_from(x, m.dropped)
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
                fwd += m.step_flops.fwd_total * b
                bwd += m.step_flops.bwd_total * b

                # check: score the units still training, let the policy decide, drop the prefix
                if i in check_steps and (config.instrument or config.policy.name != "none"):
                    t_check = time.perf_counter()
                    _check(model, optimizer, m, control, emit, config, input_shape)
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
            torch.cuda.synchronize(device) if device.type == "cuda" else None
            epoch_time = time.perf_counter() - epoch_start - paused_s + cache_s
            train_loss = float(loss_sum) / len(chunk)
            if not math.isfinite(train_loss):
                raise _diverged(train_loss, epoch, emit.step)
            t_eval = time.perf_counter()
            val_loss, val_acc, per_class = evaluate(model, test_batches, use_amp)
            eval_time = time.perf_counter() - t_eval
            emit(ev.EpochEnded, train_loss=train_loss, train_acc=float(correct) / len(chunk), val_loss=val_loss,
                 val_acc=val_acc, epoch_time_s=epoch_time, eval_time_s=eval_time, instrument_time_s=instrument_s,
                 data_time_s=data_s, fwd_flops=fwd, bwd_flops=bwd,
                 baseline_fwd_flops=full_flops.fwd_total * len(chunk),
                 baseline_bwd_flops=full_flops.bwd_total * len(chunk),
                 trainable_params=trainable_parameters(model), active_units=len(names) - m.dropped - len(m.frozen),
                 images=len(chunk))
            if len(chunks) > 1 and first_of_chunk == config.epochs - 1:
                seen = sorted(set(setup.train_data.labels[torch.cat(chunks[:chunk_index + 1])].tolist()))
                seen_mask = torch.isin(setup.test_data.labels, torch.tensor(seen))
                seen_acc = sum(per_class[c] * int((setup.test_data.labels == c).sum()) for c in seen)
                emit(ev.ChunkEnded, chunk=chunk_index, val_acc=val_acc,
                     seen_acc=seen_acc / max(1, int(seen_mask.sum())),
                     per_class_acc={setup.train_data.classes[c]: per_class[c] for c in seen})
            if run_dir is not None:  # the last good model and everything needed to continue from here
                _save_model(model, run_dir)
                save_checkpoint(run_dir, _checkpoint(epoch, emit, len(recorded), model, optimizer, m, augment_gen))
    except StopRequested:
        status = "stopped"
    except KeyboardInterrupt:
        status, error, save_at_end = "interrupted", "interrupted by the user (Ctrl-C)", False
        raise
    except LearnDropError as exc:  # divergence: model.pt stays the last good epoch's
        status, error, save_at_end = "failed", str(exc), False
        raise
    except Exception as exc:
        status, error, save_at_end = "failed", f"{type(exc).__name__}: {exc}", False
        raise
    finally:
        if run_dir is not None and save_at_end:
            _save_model(model, run_dir)
        emit(ev.RunFinished, status=status, error=error)
    return summarize(recorded)


def _check(model: UnitNetwork, optimizer: torch.optim.Optimizer, m: Method, control: TrainingControl,
           emit: ev.Emitter, config: RunConfig, input_shape: tuple[int, ...]) -> None:
    """Score every unit still training, let the policy decide, and drop (or freeze) what it says."""
    names = list(model.unit_names)
    policy = control.policy()
    if policy != m.policy:
        emit(ev.ThresholdsChanged, old=m.policy.thresholds(), new=policy.thresholds())
        m.policy = policy
    active = [k for k in range(len(names)) if k >= m.dropped and names[k] not in m.frozen]
    current = snapshot([model.unit(k) for k in active], directions=config.policy.measure == "directions")
    # lr_factor: the mean learning rate since the last check, as a share of the peak. Dividing by it
    # makes d the change per unit of learning rate, so a decaying schedule is not read as convergence.
    lr_factor = (m.lr_sum / max(1, m.lr_steps)) / config.lr
    m.lr_sum, m.lr_steps = 0.0, 0
    scale = 1.0 / max(lr_factor, MIN_LR_FACTOR) if config.policy.lr_normalized else 1.0
    d: list[float | None] = [None] * len(names)
    for k, value, snap in zip(active, relative_changes([m.previous[k] for k in active], current), current):
        d[k], m.previous[k] = value * scale, snap
    m.state, decision = policy_step(m.state, d, policy, allow_drop=policy.name == "learndrop")
    emit(ev.LayerScores, check=decision.check, thresholds=policy.thresholds(), lr_factor=round(lr_factor, 6),
         scores=[asdict(s) for s in decision.scores])
    for drop in decision.drops:
        emit(ev.LayerDropped, unit=drop.unit, index=drop.index, check=decision.check, s=drop.s, c=drop.c,
             reason=drop.reason)
    for name in decision.frozen:
        emit(ev.LayerFrozen, unit=name, check=decision.check)
    if decision.drops or decision.frozen:
        freeze_units(model, optimizer, [dr.unit for dr in decision.drops] + list(decision.frozen))
        m.dropped, m.frozen = m.state.dropped, [names[k] for k in m.state.frozen]
        m.step_flops = measure_step_flops(model, input_shape, m.dropped, cached=False)


def _update_cache(model: UnitNetwork, batches: ImageBatches, m: Method, chunk: torch.Tensor, chunk_index: int,
                  config: RunConfig, emit: ev.Emitter, full_flops: StepFlops, input_shape: tuple[int, ...],
                  view_sets: list[list], epochs_left: int) -> int:
    """Extend the cache to the current prefix and add the rows of the current chunk; returns its FLOPs."""
    dtype = getattr(torch, config.cache_dtype)
    sample = batches.get(chunk[:1])[0]
    cap = config.cache_max_mb * 2**20
    if m.cache is not None and m.cache.rows:  # keep the views it has: extending must not change them
        view_sets = [list(m.cache.transforms)]
    sizes = [ActivationCache.bytes_needed(model, sample, m.dropped, len(batches), dtype, len(v)) for v in view_sets]
    # Building V views costs V prefix passes over the data; each remaining epoch saves one. Take the
    # richest set that fits the cap and costs at most half of what it saves (always at least one view).
    fitting = [v for v, size in zip(view_sets, sizes) if size <= cap and (len(v) <= epochs_left / 2 or len(v) <= 2)]
    if not fitting:
        m.cache, m.cache_refused = None, m.dropped
        m.step_flops = measure_step_flops(model, input_shape, m.dropped, cached=False)
        emit(ev.CacheSkipped, bytes_needed=min(sizes),
             reason=f"the prefix output needs {min(sizes) / 2**20:.0f} MiB, over the {config.cache_max_mb:g} MiB "
                    "cap; the prefix is recomputed every step under no_grad")
        return 0
    start = time.perf_counter()
    set_train_mode(model, m.dropped, m.frozen)
    if m.cache is None:
        m.cache = ActivationCache(len(batches), dtype, fitting[0])
        m.cache_ops.append(["new", [list(t) for t in fitting[0]]])
    old_units, extended = m.cache.units, 0
    if m.cache.rows and m.cache.units != m.dropped:
        extended = m.cache.extend(model, m.dropped, EVAL_BATCH)
        m.cache_ops.append(["extend", m.dropped])
    added = m.cache.add(model, batches, chunk, m.dropped, EVAL_BATCH)
    if added:
        m.cache_ops.append(["add", m.dropped, chunk_index])
    views = m.cache.views
    cost = views * (sum(full_flops.fwd[n] for n in model.unit_names[old_units:m.dropped]) * extended
                    + sum(full_flops.fwd[n] for n in model.unit_names[:m.dropped]) * added)
    m.step_flops = measure_step_flops(model, input_shape, m.dropped, cached=True)
    emit(ev.CacheBuilt, units=m.dropped, extended_rows=extended, added_rows=added, rows=m.cache.rows,
         bytes=m.cache.nbytes, seconds=round(time.perf_counter() - start, 4), dtype=config.cache_dtype,
         fwd_flops=cost)
    return cost


def _checkpoint(epoch: int, emit: ev.Emitter, events_written: int, model: UnitNetwork,
                optimizer: torch.optim.Optimizer, m: Method, augment_gen: torch.Generator) -> dict:
    return {
        "epoch": epoch, "step": emit.step, "time_s": emit.clock(), "events": events_written,
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "policy": asdict(m.policy), "policy_state": asdict(m.state), "dropped": m.dropped, "frozen": list(m.frozen),
        "cache_ops": [list(op) for op in m.cache_ops], "cache_refused": m.cache_refused,
        "rng": {"torch": torch.get_rng_state(), "augment": augment_gen.get_state()},
    }


def _restore(ck: dict, model: UnitNetwork, optimizer: torch.optim.Optimizer, m: Method,
             augment_gen: torch.Generator, batches: ImageBatches, chunks: list[torch.Tensor],
             full_flops: StepFlops, input_shape: tuple[int, ...], emit: ev.Emitter,
             cache_dtype: torch.dtype) -> tuple[int, float]:
    """Put a run back where its checkpoint left it; rebuild the cache the way it was built.

    Returns the FLOPs and seconds of that rebuild, which count towards the first resumed epoch.
    """
    model.load_state_dict(ck["model"])
    m.dropped, m.frozen = ck["dropped"], list(ck["frozen"])
    freeze_units(model, optimizer, [*model.unit_names[:m.dropped], *m.frozen])
    optimizer.load_state_dict(ck["optimizer"])
    ps = ck["policy_state"]
    m.state = PolicyState(tuple(ps["units"]), ps["check"], tuple(tuple(h) for h in ps["history"]),
                          tuple(ps["streak"]), ps["dropped"], tuple(ps["frozen"]), tuple(ps.get("reference", ())))
    m.policy = PolicyConfig(**ck["policy"])
    torch.set_rng_state(ck["rng"]["torch"])
    augment_gen.set_state(ck["rng"]["augment"])
    m.cache_refused = ck["cache_refused"]
    m.step_flops = measure_step_flops(model, input_shape, m.dropped, cached=False)
    if not ck["cache_ops"]:
        return 0, 0.0
    start, cost, cache = time.perf_counter(), 0, None
    for op in ck["cache_ops"]:
        if op[0] == "new":
            cache = ActivationCache(len(batches), cache_dtype, [tuple(t) for t in op[1]])
            continue
        set_train_mode(model, op[1], m.frozen)
        if op[0] == "extend":
            old = cache.units
            rows = cache.extend(model, op[1], EVAL_BATCH)
            cost += cache.views * sum(full_flops.fwd[n] for n in model.unit_names[old:op[1]]) * rows
        else:
            rows = cache.add(model, batches, chunks[op[2]], op[1], EVAL_BATCH)
            cost += cache.views * sum(full_flops.fwd[n] for n in model.unit_names[:op[1]]) * rows
    m.cache, m.cache_ops = cache, [list(op) for op in ck["cache_ops"]]
    if cache.units == m.dropped:
        m.step_flops = measure_step_flops(model, input_shape, m.dropped, cached=True)
    seconds = time.perf_counter() - start
    emit(ev.CacheBuilt, units=cache.units, extended_rows=0, added_rows=cache.rows, rows=cache.rows,
         bytes=cache.nbytes, seconds=round(seconds, 4), dtype=str(cache.dtype).replace("torch.", ""), fwd_flops=cost)
    return cost, seconds


def _diverged(loss: float, epoch: int, step: int) -> LearnDropError:
    return LearnDropError(f"training diverged: the loss became {loss} at epoch {epoch + 1}, step {step}; "
                          "try a lower learning rate")


def _save_model(model: UnitNetwork, run_dir: Path) -> None:
    """Atomic write of the full network's state_dict (loaded back with ``weights_only=True``)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "model.pt.tmp"
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    tmp.replace(run_dir / "model.pt")
