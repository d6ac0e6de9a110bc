"""The GPU path (``pytest -m cuda``): run on CUDA when there is one, skipped with the reason elsewhere.

A demo run that drops and builds its cache, the cache against the recomputed prefix (bf16 tolerance),
no host sync inside the training step, a resume within tolerance (bit-identical under --deterministic),
a run in the dashboard's worker thread. ``benchmarks/gpu_smoke.py`` runs these and the quick benchmark.
"""

from __future__ import annotations

import pytest
import torch
from helpers import FORCED, fast_config

from learndrop import events as ev
from learndrop.config import PolicyConfig
from learndrop.runs.recorder import RunRecorder
from learndrop.training.loop import train

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here: the GPU path is not tested")]


def _cuda(**kw):
    return fast_config(device="cuda", policy=FORCED, **kw)


def test_a_demo_run_on_the_gpu_drops_and_builds_its_cache():
    events: list[ev.Event] = []
    summary = train(_cuda(epochs=4, augment=True), [events.append])
    assert summary["status"] == "completed" and summary["dropped"]
    assert any(isinstance(e, ev.CacheBuilt) for e in events), [type(e).__name__ for e in events]
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert started.device.startswith("cuda")


def test_the_cache_holds_the_prefix_as_the_loop_computes_it_in_bf16():
    from learndrop.data.loader import ImageBatches, Normalizer
    from learndrop.method.cache import ActivationCache
    from learndrop.training.prepare import prepare

    config = _cuda()
    setup = prepare(config)
    model = setup.model.to("cuda").eval()
    data = ImageBatches(setup.train_data, Normalizer(setup.train_data.images, torch.device("cuda"), False),
                        torch.device("cuda"))
    cache = ActivationCache(len(data), torch.float16)
    rows = torch.arange(len(data))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        cache.add(model, data, rows, 1, 128)
        with torch.no_grad():
            recomputed = model.forward_units(data.get(rows[:64])[0], 0, 1).float()
    torch.testing.assert_close(cache.batch(rows[:64].cuda()), recomputed, atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("policy", [PolicyConfig(name="none"), PolicyConfig(name="freeze-first-k", k=1)])
def test_the_training_step_makes_no_host_sync(policy):
    """The loop's step, through the controller (batch, forward, backward, step, after_step), with and without
    the cache, under ``set_sync_debug_mode("error")``: any call that waits for the GPU raises."""
    import torch.nn.functional as F

    from learndrop.data.loader import CROP_PADDING, ImageBatches, Normalizer, to_device
    from learndrop.method.cache import augmented_views
    from learndrop.method.controller import CacheSettings, LearnDrop
    from learndrop.method.dropping import param_groups
    from learndrop.training.prepare import prepare

    cuda = torch.device("cuda")
    setup = prepare(_cuda(augment=True))
    model = setup.model.to(cuda, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(param_groups(model), lr=0.05, momentum=0.9, nesterov=True)
    data = ImageBatches(setup.train_data, Normalizer(setup.train_data.images, cuda, True), cuda, augment=True)
    views = tuple(tuple(v) for v in augmented_views(CROP_PADDING, True))
    ld = LearnDrop(model, optimizer, policy, data=data, cache=CacheSettings(view_sets=views, amp=True))
    generator, rows = torch.Generator().manual_seed(1), torch.arange(len(data))
    batches = to_device(torch.randperm(len(data)), cuda).split(64)

    def steps(n: int) -> None:
        for idx in batches[:n]:
            ld.update_cache(rows, 3)
            x, y = ld.batch(idx, generator)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = F.cross_entropy(ld.forward(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            ld.step()

    steps(2)  # warm-up: cuDNN's choice of algorithms, the allocator, the cache (freeze-first-k) built
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        steps(6)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert (ld.cache is not None) == (policy.name == "freeze-first-k")


@pytest.mark.parametrize("deterministic", [False, True])
def test_a_resumed_gpu_run_ends_close_to_an_uninterrupted_one(store, deterministic):
    config = _cuda(epochs=4, deterministic=deterministic)
    whole = RunRecorder(store).start(config)
    stop_at = {"epoch": 1}

    def stop_after(event):
        if isinstance(event, ev.EpochEnded) and event.epoch == stop_at["epoch"]:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        RunRecorder(store).start(config, [stop_after])
    broken = next(r for r in store.run_ids() if r != whole["run_id"])
    resumed = RunRecorder(store).resume(broken)
    a, b = store.model_state(whole["run_id"]), store.model_state(resumed["run_id"])
    for k in a:
        if deterministic:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k].float(), b[k].float(), atol=5e-2, rtol=5e-2)


def test_a_gpu_run_resumes_on_the_cpu(store):
    config = _cuda(epochs=3)

    def stop_after(event):  # at the second epoch's end: the first one's checkpoint is saved
        if isinstance(event, ev.EpochEnded) and event.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        RunRecorder(store).start(config, [stop_after])
    run_id = store.run_ids()[-1]
    events: list[ev.Event] = []
    summary = RunRecorder(store).resume(run_id, [events.append], device="cpu")
    assert summary["status"] == "completed"
    assert next(e for e in events if isinstance(e, ev.CheckpointRestored)).device == "cpu"


def test_a_run_in_the_dashboards_worker_thread_trains_on_the_gpu(runs):
    from dashboard import state

    registry = state.registry()
    run_id = registry.submit(_cuda(epochs=2))
    registry.wait(run_id, 300)
    assert registry.summary(run_id)["status"] == "completed"
    started = next(e for e in registry.view(run_id).events if isinstance(e, ev.RunStarted))
    assert started.device.startswith("cuda")
