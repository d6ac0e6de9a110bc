"""The training loop: one function that reads top to bottom, a client of the Learn&Drop controller.

``train(config, sinks, control)`` trains the network; at every check the controller scores the units,
the policy decides and the prefix that has stopped learning is dropped; every step of that is an event
for the sinks. Evaluation always uses the full network (prefix + suffix). With ``stream > 1`` the
training set arrives in chunks, each trained for ``epochs`` epochs; scores, drops and the cache carry
across. Storage is not the loop's: ``on_epoch`` hands the end of every epoch to whoever keeps the run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .. import events as ev
from ..config import RunConfig
from ..data.datasets import ImageData
from ..data.loader import CROP_PADDING, ImageBatches, Normalizer, epoch_batches, stream_chunks, to_device
from ..errors import LearnDropError
from ..method.cache import augmented_views
from ..method.controller import CacheSettings, LearnDrop
from ..method.dropping import param_groups
from ..method.probe import probe_of
from ..status import RunState
from ..summary import summarize
from .checkpoint import epoch_checkpoint, restore
from .control import TrainingControl
from .device import SpanTimer, configure, synchronize
from .evaluate import evaluate
from .meters import EpochMeters, StopRequested, diverged, report_progress
from .prepare import Setup, prepare
from .schedule import lr_at
from .world import World, is_peer_failure

# process r of a data-parallel run draws its augmentation from seed + 1 + r * this
AUGMENT_SEED_STRIDE = 1_000_003


def train(config: RunConfig, sinks: Sequence[ev.Sink] = (), control: TrainingControl | None = None, *,
          setup: Setup | None = None, run_id: str = "run", checkpoint: dict | None = None,
          history: Sequence[ev.Event] = (), on_epoch: Callable[[dict], None] | None = None,
          world: World | None = None) -> dict:
    """Train one run, emitting its events to ``sinks``, and return its summary.

    Every exit path emits ``run_finished`` from ``finally``: completed, stopped (the control's stop
    flag, checked before every step), failed (the error is re-raised) or interrupted (Ctrl-C).
    ``on_epoch`` receives, after every epoch, everything needed to continue from there (the run
    store's recorder saves it); ``checkpoint`` and ``history`` (the events up to it) continue a run.
    ``world``: this process's place in a data-parallel run (``training.world``); only rank 0 gets sinks.
    """
    setup, world = setup or prepare(config), world or World()
    control = control or TrainingControl(config.policy)
    setup.device = world.start(setup.device)  # data-parallel: this process's own GPU
    device, model = setup.device, setup.model
    recorded: list[ev.Event] = list(history)
    t0 = time.perf_counter() - (checkpoint["time_s"] if checkpoint else 0.0)
    emit = ev.Emitter(run_id, [recorded.append, *sinks], clock=lambda: time.perf_counter() - t0)

    # --- model, optimizer, data on the device, and the Learn&Drop controller beside them -----------
    channels_last, use_amp = device.type in ("cpu", "cuda"), device.type == "cuda"
    model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    configure(device, config.deterministic)
    optimizer = torch.optim.SGD(param_groups(model), lr=config.lr, momentum=config.momentum,
                                nesterov=config.momentum > 0, weight_decay=config.weight_decay)
    train_data, batch_size = world.shard(setup.train_data), config.batch_size // world.size  # this process's
    train_batches, val_batches, test_batches = _batches(config, setup, train_data, device, channels_last)
    augment_gen = torch.Generator().manual_seed(config.seed + 1 + AUGMENT_SEED_STRIDE * world.rank)
    chunks = stream_chunks(train_data.labels, config.stream, config.stream_by)
    total_epochs = config.epochs * len(chunks)
    total_steps = sum(math.ceil(len(c) / batch_size) for c in chunks) * config.epochs
    ld = LearnDrop(model, optimizer, config.policy, train_data.images.shape[1:], data=train_batches,
                   total_steps=total_steps,
                   cache=cache_settings(config, train_data.flip, use_amp), peak_lr=config.lr,
                   inherited_peaks=setup.peaks_in_unit_order(), wrap=world.wrap if world.size > 1 else None,
                   probe=probe_of(val_batches) if val_batches is not None else None)
    start_epoch, carry = 0, None
    if checkpoint is None:
        emit(ev.RunStarted, **_run_started(config, setup, ld, chunks, batch_size, total_steps,
                                           len(test_batches), train_batches.normalize))
    else:
        start_epoch, carry = restore(checkpoint, ld, augment_gen, chunks, emit, world)

    status, error = RunState.COMPLETED, None
    try:
        for epoch in range(start_epoch, total_epochs):
            chunk_index, epoch_in_chunk = divmod(epoch, config.epochs)
            chunk = chunks[chunk_index]
            emit.epoch = epoch
            if len(chunks) > 1 and epoch_in_chunk == 0:
                emit(ev.ChunkStarted, chunk=chunk_index, chunks=len(chunks), images=len(chunk),
                     classes=sorted(set(train_data.labels[chunk].tolist())))
            emit(ev.EpochStarted, lr=lr_at(config, emit.step, total_steps))
            ld.train_mode()
            meters, carry = EpochMeters.start(device, ld, carry), None
            data_timer = SpanTimer(device)
            batches, check_steps = _epoch_plan(config, chunk, epoch, device, world)
            epoch_start = time.perf_counter()
            for i, idx in enumerate(batches):
                # control: stop before the step, or wait here while paused
                _obey(control, emit, meters, world.size > 1)
                lr = lr_at(config, emit.step, total_steps)
                ld.set_lr(lr, emit.step / total_steps)  # every group; a policy may scale a unit's (FreezeOut)

                # cache: filled or extended at the first step after the prefix or the data grew
                for event in getattr(ld.update_cache(chunk, total_epochs - epoch, chunk_index), "events", ()):
                    emit.send(event)

                # data: the cached prefix output, or normalised (augmented) images
                data_timer.start()
                x, y = ld.batch(idx, augment_gen)
                data_timer.stop()

                # forward: the dropped prefix under no_grad (unless cached), the suffix with autograd
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    out = ld.forward(x)
                    loss = F.cross_entropy(out.float(), y, label_smoothing=config.label_smoothing)

                # backward, step, and the step's FLOPs and meters (no device sync)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                emit.step += 1
                ld.step()
                meters.add(loss, out, y)

                # check: score the units still training, let the policy decide, drop the prefix
                if i in check_steps and (config.instrument or config.policy.name != "none"):
                    _check(ld, control, emit, meters, emit.step / total_steps, world)

                # progress: one device sync every few steps
                if config.instrument and (emit.step % config.progress_every == 0 or i == len(batches) - 1):
                    report_progress(emit, meters, lr, i + 1, len(batches), world, control)

            # end of epoch: time the training work only, then evaluate the full network apart
            synchronize(device)
            epoch_time = time.perf_counter() - epoch_start - meters.paused_s + meters.extra_s
            meters.data_s, images = data_timer.seconds(), len(chunk) * world.size
            stop = meters.reduce(world, control.stop_requested)  # summed over the processes
            train_loss = float(meters.loss_sum) / images
            if not math.isfinite(train_loss):
                raise diverged(train_loss, epoch, emit.step)
            evaluated = _evaluate(model, val_batches, test_batches, use_amp, world)
            (val_loss, val_acc), (test_loss, test_acc, per_class), eval_s = evaluated
            emit(ev.EpochEnded, train_loss=train_loss, test_loss=test_loss, test_acc=test_acc,
                 val_loss=val_loss, val_acc=val_acc, epoch_time_s=epoch_time, eval_time_s=eval_s,
                 **meters.totals(ld, images, world.size))
            if len(chunks) > 1 and epoch_in_chunk == config.epochs - 1:
                emit(ev.ChunkEnded, **_chunk_ended(setup, chunks, chunk_index, test_acc, per_class),
                     val_acc=val_acc)
            ranks = world.gather(augment_gen.get_state()) if world.size > 1 else None  # each process's own
            if on_epoch is not None:  # the last good model and everything needed to continue from here
                on_epoch(epoch_checkpoint(epoch, emit, ld, augment_gen, ranks))
            if stop and world.size > 1:  # asked to stop (SIGTERM) since the last progress: all stop here
                raise StopRequested
    except StopRequested:
        status = RunState.STOPPED
    except BaseException as exc:  # Ctrl-C, divergence, a bug: recorded, then raised on
        status, error = _failure(exc)
        raise
    finally:
        ld.close()  # its hooks off the model, a data-parallel wrapper gone while the process group lives
        emit(ev.RunFinished, status=status, error=error)
    return summarize(recorded)


def _batches(config: RunConfig, setup: Setup, train_data: ImageData, device: torch.device, channels_last: bool
             ) -> tuple[ImageBatches, ImageBatches | None, ImageBatches]:
    """The training (this process's ``train_data``), validation and test splits on the device, normalised
    with the whole training set's statistics."""
    normalizer = setup.normalizer(device, channels_last)
    val = ImageBatches(setup.val_data, normalizer, device) if setup.val_data is not None else None
    return (ImageBatches(train_data, normalizer, device, augment=config.augment), val,
            ImageBatches(setup.test_data, normalizer, device))


def _evaluate(model: torch.nn.Module, val: ImageBatches | None, test: ImageBatches, use_amp: bool,
              world: World) -> tuple[tuple, tuple, float]:
    """The validation split (choices are made on it) and the test split, with rank 0's BatchNorm statistics
    on every process; the seconds it took."""
    start = time.perf_counter()
    world.sync_buffers(model)
    val_loss, val_acc, _ = evaluate(model, val, use_amp, world) if val is not None else (None, None, None)
    return (val_loss, val_acc), evaluate(model, test, use_amp, world), time.perf_counter() - start


def _epoch_plan(config: RunConfig, chunk: torch.Tensor, epoch: int, device: torch.device, world: World
                ) -> tuple[list[torch.Tensor], set[int]]:
    """The epoch's batches of ``chunk`` rows (drawn on the CPU, the same on every device; sent in one copy)
    and the steps at whose end a check runs. Data-parallel: one order of every process's rows, the one a
    single process would train in, of which this process takes its own."""
    order = torch.cat(epoch_batches(len(chunk) * world.size, config.batch_size, config.seed, epoch))
    batches = list(to_device(chunk[world.own(order)], device).split(config.batch_size // world.size))
    return batches, {math.ceil((j + 1) * len(batches) / config.checks_per_epoch) - 1
                     for j in range(config.checks_per_epoch)}


def _check(ld: LearnDrop, control: TrainingControl, emit: ev.Emitter, meters: EpochMeters, progress: float,
           world: World) -> None:
    """A check, its events emitted, its time (between two syncs: not the steps queued before it) counted.
    Data-parallel: every process scores rank 0's BatchNorm statistics, and all must decide alike."""
    device = next(ld.model.parameters()).device
    synchronize(device)
    t_check = time.perf_counter()
    world.sync_buffers(ld.model)
    for event in ld.check(control.policy(), progress).events:
        emit.send(event)
    world.agree("to drop and freeze", (ld.dropped, ld.frozen))
    synchronize(device)
    meters.instrument_s += time.perf_counter() - t_check


def cache_settings(config: RunConfig, flip: bool, amp: bool = False) -> CacheSettings:
    """The cache as the config asks. With augmentation it holds a fixed set of exact augmented views
    per image (``method.cache``), the richest that fits; ``amp``: filled under the loop's bf16 autocast."""
    views = augmented_views(CROP_PADDING, flip) if config.augment else [[(0, 0, False)]]
    return CacheSettings(config.cache, config.cache_max_mb, config.cache_dtype,
                         tuple(tuple(v) for v in views), amp=amp)


def _failure(exc: BaseException) -> tuple[RunState, str]:
    """The status and one-line reason ``run_finished`` records for an exception."""
    if isinstance(exc, KeyboardInterrupt):
        return RunState.INTERRUPTED, "interrupted by the user (Ctrl-C)"
    if isinstance(exc, LearnDropError):  # divergence: the recorder keeps the last good epoch's model
        return RunState.FAILED, str(exc)
    if is_peer_failure(exc):
        return RunState.FAILED, ("another process of this data-parallel run ended or stalled "
                                 f"({exc})").splitlines()[0]
    return RunState.FAILED, f"{type(exc).__name__}: {exc}"


def _obey(control: TrainingControl, emit: ev.Emitter, meters: EpochMeters, parallel: bool) -> None:
    """Stop, or wait while paused. Data-parallel runs do not pause, and stop where all processes agree
    (``_progress``, the epoch's end), not at once."""
    if parallel:
        return
    if control.stop_requested:
        raise StopRequested
    if control.paused:
        emit(ev.RunPaused)
        waited = control.wait_while_paused()
        meters.paused_s += waited
        meters.window_start += waited
        emit(ev.RunUnpaused, paused_s=round(waited, 3))
        if control.stop_requested:
            raise StopRequested


def _run_started(config: RunConfig, setup: Setup, ld: LearnDrop, chunks: list[torch.Tensor], batch_size: int,
                 total_steps: int, test_size: int, norm: Normalizer) -> dict:
    model, full = setup.model, ld.full_flops
    return dict(config=config.to_dict(), device=str(setup.device), train_size=len(setup.train_data),
                test_size=test_size, classes=list(setup.train_data.classes),
                steps_per_epoch=math.ceil(len(chunks[0]) / batch_size), total_steps=total_steps,
                input_shape=list(ld.input_shape),
                data_notes=[*setup.train_data.notes, *setup.test_data.notes, *setup.notes],
                normalization={"name": setup.normalization.name, "mean": [round(v, 6) for v in norm.mean],
                               "std": [round(v, 6) for v in norm.std]},
                inherited_peaks=setup.inherited_peaks, val_size=len(setup.val_data or ()),
                units=[{"name": n, "params": sum(p.numel() for p in model.get_submodule(n).parameters()),
                        "fwd_flops": full.fwd[n], "bwd_flops": full.bwd[n]}
                       for n in (*ld.names, model.head_name)])


def _chunk_ended(setup: Setup, chunks: list[torch.Tensor], index: int, test_acc: float, per_class: list[float]
                 ) -> dict:
    """A streaming run's accuracy after a chunk, on all test images and on the classes seen so far."""
    labels = setup.test_data.labels
    seen = sorted(set(setup.train_data.labels[torch.cat(chunks[:index + 1])].tolist()))
    seen_images = int(torch.isin(labels, torch.tensor(seen)).sum())
    seen_acc = sum(per_class[c] * int((labels == c).sum()) for c in seen) / max(1, seen_images)
    return dict(chunk=index, test_acc=test_acc, seen_acc=seen_acc,
                per_class_acc={setup.train_data.classes[c]: per_class[c] for c in seen})
