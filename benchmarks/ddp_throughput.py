"""Images/s of one run trained on 1, 2, ... data-parallel processes (``learndrop train --nproc N``), baseline and
Learn&Drop, one after another; results in ``benchmarks/results/ddp-<device>-<timestamp>.json`` and ``.md``.

    .venv/bin/python benchmarks/ddp_throughput.py                          # here: CPU processes, gloo
    .venv/bin/python benchmarks/ddp_throughput.py --device cuda --procs 1,2,4,8   # a machine with that many GPUs

On a CPU the processes share the same cores (torchrun gives each one thread; one process alone uses all), so
this shows what the mechanics cost (gradient all-reduce, a new DDP wrapper at each drop, reduced meters), not
a speed-up. On GPUs each process has its own. Any other option goes to ``learndrop train`` as it is, e.g.
``--model vgg11 --width 0.25 --dataset cifar10 --data-root ../shared/data --subset 10000``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from learndrop.bench.pairs import RESULTS_DIR  # noqa: E402
from learndrop.bench.running import machine  # noqa: E402
from learndrop.runs.store import RunStore  # noqa: E402

DEFAULT_TRAIN = ["--epochs", "4", "--checks-per-epoch", "2"]  # the offline demo (shapes, the tiny CNN), 4 epochs


def one_run(nproc: int, device: str, policy: str, train_args: list[str], runs: Path) -> dict:
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "learndrop", "train", "--nproc", str(nproc), "--device", device, "--policy", policy,
           "--runs-dir", str(runs), *train_args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    store = RunStore(runs)
    (run_id,) = store.run_ids()  # one run per folder
    summary = store.summary(run_id)
    return {"processes": nproc, "policy": policy, "images_per_s": summary["images_per_s"],
            "train_time_s": summary["train_time_s"], "test_acc": summary["test_acc"],
            "dropped": len(summary["dropped"]), "wall_s": round(time.perf_counter() - start, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--procs", default="1,2", help="process counts, e.g. 1,2,4 (default %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one GPU per process)")
    p.add_argument("--results-dir", default=str(RESULTS_DIR))
    a, train_args = p.parse_known_args()
    train_args = train_args or DEFAULT_TRAIN
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, nproc in enumerate(int(n) for n in a.procs.split(",")):
            for policy in ("none", "learndrop"):
                rows.append(one_run(nproc, a.device, policy, train_args, Path(tmp) / f"runs-{i}-{policy}"))
                print(rows[-1], flush=True)
    one = {r["policy"]: r["images_per_s"] for r in rows if r["processes"] == 1}
    for r in rows:
        r["vs_one_process"] = round(r["images_per_s"] / one[r["policy"]], 3) if one.get(r["policy"]) else None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(a.results_dir) / f"ddp-{a.device}-{stamp}"
    header = {"started": stamp, "machine": machine(), "device": a.device, "train_args": train_args,
              "command": " ".join(sys.argv)}
    out.with_suffix(".json").write_text(json.dumps({"header": header, "runs": rows}, indent=2))
    lines = [f"# Data-parallel throughput, {a.device} ({stamp})", "", f"`{header['command']}`; train options "
             f"`{' '.join(train_args)}`", "", "| processes | policy | images/s | vs 1 process | training s | "
             "test % | drops |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['processes']} | {r['policy']} | {r['images_per_s']:.0f} | {r['vs_one_process']} | "
              f"{r['train_time_s']:.1f} | {100 * r['test_acc']:.2f} | {r['dropped']} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}.json and .md")


if __name__ == "__main__":
    main()
