"""``preflight(config)``: every check a run's settings can pass or fail without its data, made before anything
is loaded or created; the command line, the dashboard's queue and its form all ask it, and so does
``prepare``.

The config's own values, the policy's name (``method.registry``), the model's name (``models``), the device
(CUDA or MPS asked for where there is none) and the data-parallel processes this machine can host, the weights
file there. The first thing wrong is one ``LearnDropError`` whose ``field`` names the setting.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..config import RunConfig
from ..errors import LearnDropError
from ..method.registry import get_policy
from ..models import model_info


def preflight(config: RunConfig) -> None:
    config.validate()
    get_policy(config.policy.name)
    model_info(config.model)
    check_device(config.device)
    check_processes(config.world_size, config.device)
    if config.weights and not Path(config.weights).is_file():
        raise LearnDropError(f"weights file {config.weights!r}: no such file", field="weights")


def check_device(name: str) -> None:
    """The device asked for is there (``auto`` always is: a GPU when there is one, else the CPU)."""
    if name == "cuda" and not torch.cuda.is_available():
        raise LearnDropError("device cuda asked for, but no CUDA GPU is available here; choose auto or cpu",
                             field="device")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LearnDropError("device mps asked for, but Apple's MPS backend is not available here",
                             field="device")


def check_processes(processes: int, device: str = "auto") -> None:
    """Data-parallel processes: a GPU each where the run trains on GPUs, else no more than the CPU cores."""
    gpus = torch.cuda.device_count() if device in ("auto", "cuda") and torch.cuda.is_available() else 0
    if processes > 1 and device == "mps":
        raise LearnDropError("data-parallel runs train on CUDA or the cpu", field="world_size")
    if gpus and processes > gpus:
        raise LearnDropError(f"{processes} processes need a GPU each, and this machine has {gpus}; choose "
                             "fewer, or the cpu", field="world_size")
    cores = os.cpu_count() or 1
    if not gpus and processes > cores:
        raise LearnDropError(f"{processes} processes, and this machine has {cores} CPU core(s): choose at "
                             f"most {cores}", field="world_size")
