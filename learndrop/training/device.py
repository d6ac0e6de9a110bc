"""The training device: CUDA when present, else the CPU (all cores); its settings, waits and timers."""

from __future__ import annotations

import os
import time

import torch

from ..errors import LearnDropError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        name = "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise LearnDropError("--device cuda asked for, but no CUDA GPU is available here; use --device cpu "
                             "or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LearnDropError("--device mps asked for, but Apple's MPS backend is not available here")
    if name == "cpu" and not os.environ.get("OMP_NUM_THREADS"):  # all cores, unless the user capped them
        torch.set_num_threads(os.cpu_count() or 1)
    return torch.device(name)


def configure(device: torch.device, deterministic: bool) -> None:
    """cuDNN picks its fastest algorithms for the run's fixed shapes (``cudnn.benchmark``), unless the run
    asks for deterministic ones (``--deterministic``: bit-identical resumes on a GPU, somewhat slower)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what deterministic cuBLAS needs
        torch.use_deterministic_algorithms(True, warn_only=device.type != "cuda")


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA only): before a wall-clock timer starts or stops."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SpanTimer:
    """The summed duration of many short spans (preparing each batch) without a host sync per span: on CUDA
    each span is a pair of CUDA events, read once at the end (``seconds``); elsewhere ``perf_counter``."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.spans: list[tuple] = []
        self.total = 0.0
        self._start: object = None

    def start(self) -> None:
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._start = time.perf_counter()

    def stop(self) -> None:
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self.spans.append((self._start, end))
        else:
            self.total += time.perf_counter() - self._start

    def seconds(self) -> float:
        """The spans so far, in seconds (on CUDA: one sync, for the last span's end)."""
        if self.spans:
            self.spans[-1][1].synchronize()
            self.total += sum(a.elapsed_time(b) for a, b in self.spans) / 1000
            self.spans = []
        return self.total
