"""The GPU check in one go (under 9 minutes on one GPU): ``pytest -m cuda``, host syncs per training step,
the GPU's busy share while it trains, and the quick benchmark at GPU batch sizes; every check passed or
failed, in ``benchmarks/results/gpu-<timestamp>.json``.

    .venv/bin/python benchmarks/gpu_smoke.py                 # on the GPU
    .venv/bin/python benchmarks/gpu_smoke.py --device cpu    # a dry run of the same code here (the cuda tests skip)

Batch size 512 (the quick pairs' models are small: at 128 they cannot fill a large GPU, and FLOPs saved
would not become seconds saved). Targets: every cuda test passed, zero host syncs in the step, time
efficiency >= 0.9 for the quick pairs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from learndrop.bench.pairs import RESULTS_DIR  # noqa: E402
from learndrop.bench.running import machine  # noqa: E402
from learndrop.bench.side_by_side import bench  # noqa: E402
from learndrop.config import PolicyConfig, RunConfig  # noqa: E402
from learndrop.data.loader import ImageBatches, Normalizer, to_device  # noqa: E402
from learndrop.method.controller import CacheSettings, LearnDrop  # noqa: E402
from learndrop.method.dropping import param_groups  # noqa: E402
from learndrop.training.prepare import prepare  # noqa: E402

GPU_BATCH = 512
STEPS = 20


def cuda_tests(out: Path) -> dict:
    """``pytest -m cuda``: each test's outcome (passed, failed or skipped with its reason)."""
    xml = out / "gpu-smoke-pytest.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-q", f"--junitxml={xml}", "-p",
                           "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True, check=False)
    tests = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome = next(((c.tag, (c.get("message") or "")[:200]) for c in case if c.tag in ("failure", "error", "skipped")),
                       ("passed", ""))
        tests[case.get("name")] = {"outcome": {"failure": "failed", "error": "failed"}.get(outcome[0], outcome[0]),
                                   "message": outcome[1]}
    xml.unlink(missing_ok=True)
    return {"returncode": proc.returncode, "tests": tests, "tail": proc.stdout[-1500:]}


def _step_loop(device: torch.device, policy: PolicyConfig):
    """A Quick-demo-like model and data on ``device``, and a function that runs n training steps as the loop does."""
    config = RunConfig(device=str(device), augment=True, batch_size=GPU_BATCH, policy=policy, subset=4096)
    setup = prepare(config)
    model = setup.model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(param_groups(model), lr=0.05, momentum=0.9, nesterov=True)
    data = ImageBatches(setup.train_data, Normalizer(setup.train_data.images, device, True), device, augment=True)
    ld = LearnDrop(model, optimizer, policy, data=data, cache=CacheSettings(amp=device.type == "cuda"))
    generator, rows = torch.Generator().manual_seed(0), torch.arange(len(data))
    batches = to_device(torch.randperm(len(data)), device).split(GPU_BATCH)

    def steps(n: int) -> None:
        for i in range(n):
            idx = batches[i % len(batches)]
            ld.update_cache(rows, 3)
            x, y = ld.batch(idx, generator)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = F.cross_entropy(ld.forward(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            ld.step()

    return steps


def host_syncs(device: torch.device) -> dict:
    """Synchronising calls per training step (``set_sync_debug_mode("warn")``), without and with the cache."""
    if device.type != "cuda":
        return {"checked": False, "why": "no CUDA: host syncs are a GPU matter"}
    out = {}
    for policy in (PolicyConfig(name="none"), PolicyConfig(name="freeze-first-k", k=1)):
        steps = _step_loop(device, policy)
        steps(3)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            steps(STEPS)
        torch.cuda.set_sync_debug_mode("default")
        out[policy.name] = sum("synchroniz" in str(w.message) for w in caught) / STEPS
    return {"checked": True, "per_step": out}


def busy_fraction(device: torch.device) -> float | None:
    """The share of wall-clock time the GPU spends in kernels over ``STEPS`` training steps (torch.profiler)."""
    if device.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    steps = _step_loop(device, PolicyConfig(name="none"))
    steps(3)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        steps(STEPS)
        torch.cuda.synchronize()
        wall = time.perf_counter() - start
    kernels = sum(e.device_time_total for e in prof.key_averages()) / 1e6  # µs -> s
    return round(min(1.0, kernels / wall), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (the check) or cpu (a dry run of the same code)")
    parser.add_argument("--out", type=Path, default=ROOT / RESULTS_DIR)
    parser.add_argument("--epochs", type=int, default=None, help="override the quick pairs' epochs (dry runs)")
    parser.add_argument("--subset", type=int, default=None, help="override the quick pairs' subsets (dry runs)")
    a = parser.parse_args()
    device = torch.device(a.device)
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "device": a.device, "machine": machine(),
              "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None, "batch_size": GPU_BATCH}
    result["cuda_tests"] = cuda_tests(a.out)
    result["host_syncs"] = host_syncs(device)
    result["busy_fraction"] = busy_fraction(device)
    overrides = {"batch_size": GPU_BATCH, "device": a.device}
    overrides.update({k: v for k, v in (("epochs", a.epochs), ("subset", a.subset)) if v is not None})
    with_runs = a.out.parent / "runs"
    report = bench("scratch", quick=True, overrides=overrides, out_dir=a.out, runs_dir=with_runs, log=print)
    result["quick"] = [{k: p[k] for k in ("label", "speedup", "time_efficiency", "images_per_s_base", "images_per_s_ld",
                                           "peak_mem_mb_base", "peak_mem_mb_ld", "acc_drop_pts", "dropped")}
                       for p in report["pairs"]]
    tests = result["cuda_tests"]["tests"].values()
    result["checks"] = {
        "cuda tests all passed": bool(tests) and all(t["outcome"] == "passed" for t in tests),
        "no host sync in the step": result["host_syncs"].get("checked", False)
        and all(v == 0 for v in result["host_syncs"]["per_step"].values()),
        "time efficiency >= 0.9 (quick pairs)": all((p["time_efficiency"] or 0) >= 0.9 for p in result["quick"]),
    }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    path = a.out / f"gpu-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    for name, ok in result["checks"].items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print(f"wrote {path} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
