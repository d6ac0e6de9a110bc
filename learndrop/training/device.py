"""Pick the training device: CUDA when present, else the CPU (all cores)."""

from __future__ import annotations

import os

import torch

from ..errors import LearnDropError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        name = "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise LearnDropError("--device cuda asked for, but no CUDA GPU is available here; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LearnDropError("--device mps asked for, but Apple's MPS backend is not available here")
    if name == "cpu" and not os.environ.get("OMP_NUM_THREADS"):  # all cores, unless the user capped them
        torch.set_num_threads(os.cpu_count() or 1)
    return torch.device(name)
