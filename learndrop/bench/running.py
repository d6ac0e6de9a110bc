"""Training a benchmark's runs: the pair's data loaded once, its pre-training once, each run recorded with its
peak memory, and the machine it ran on."""

from __future__ import annotations

import os
import platform
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..config import PolicyConfig, RunConfig
from ..data.datasets import ImageData, create_dataset
from ..runs.finetune import prepare_run
from ..runs.recorder import RunRecorder
from ..runs.store import RunStore
from .pairs import Pair, pair_config


@dataclass
class Measured:
    summary: dict[str, Any]
    peak_rss_mb: float


class PeakMemory:
    """The peak memory of a run on ``device``: CUDA's peak allocation on a GPU, else this process's resident
    memory (Linux /proc), sampled while it trains."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __enter__(self) -> PeakMemory:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        return self

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        while not self._stop.wait(0.05):
            try:
                with open("/proc/self/statm") as f:
                    self.peak = max(self.peak, int(f.read().split()[1]) * page)
            except OSError:
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        return (torch.cuda.max_memory_allocated() if self.cuda else self.peak) / 2**20


def load_data(config: RunConfig) -> tuple[ImageData, ImageData]:
    """The (train, test) data of a pair's runs, loaded once for all of them."""
    train = create_dataset(config.dataset, config.data_root, True, config.download, config.image_size,
                           config.subset)
    return train, create_dataset(config.dataset, config.data_root, False, config.download, train.size)


def train_one(config: RunConfig, data: tuple[ImageData, ImageData], store: RunStore) -> Measured:
    """One recorded run on already loaded data, and its peak memory."""
    setup = prepare_run(config, store, data)  # bad input fails here, before a run folder exists
    with PeakMemory(setup.device) as mem:
        summary = RunRecorder(store).start(config, setup=setup)
    return Measured(summary, round(mem.mb, 1))


def pretrain(pair: Pair, root: str, overrides: dict[str, Any] | None, data: tuple[ImageData, ImageData],
             store: RunStore, log: Callable[[str], None]) -> str | None:
    """A fine-tuning pair's pre-training, once for all its runs: the run id they start from (None: no
    pre-training). It keeps its own epochs: an --epochs override is about the fine-tuning."""
    if pair.pretrain is None:
        return None
    kept = {k: v for k, v in (overrides or {}).items() if k != "epochs"}
    config = pair_config(pair, root, PolicyConfig(name="none"), kept, **pair.pretrain)
    log(f"  pre-training {config.model} on classes {config.classes} for {config.epochs} epochs")
    return train_one(config, data, store).summary["run_id"]


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "python": platform.python_version(), "torch": torch.__version__,
        "torchvision": __import__("torchvision").__version__,
    }
