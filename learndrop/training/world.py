"""Data-parallel training on PyTorch's own engine: ``torchrun`` starts the processes, DDP reduces the
gradients.

A ``World`` is this process's place among a run's processes, read from what torchrun sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``). One process is ``World()``: every method is then a no-op, so the training
loop reads the same for one process and for many. What data parallelism changes in a Learn&Drop run:

- **the data**: each process owns a fixed shard of the training rows (every ``size``-th row), the same in
  every epoch, so its activation cache holds its shard only. An epoch's order is one permutation of all
  the processes' rows, the one a single process would train in; each process takes its own rows from it.
- **the gradients**: the trainable suffix is wrapped in ``DistributedDataParallel``, and after a drop it is
  wrapped anew (``LearnDrop(wrap=World.wrap)``), so DDP never sees a parameter that gets no gradient.
- **the decisions**: BatchNorm's running statistics are taken from rank 0 before every check and every
  evaluation, so every process scores the very same network; at each check the processes' drops are
  compared, and a process that decided otherwise stops the run with an error.
- **the figures**: losses, hits and images are summed over the processes; evaluation is sharded and summed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..data.datasets import ImageData
from ..errors import LearnDropError

# seconds a process waits in a collective for the others (a stalled process) before the run fails; a process
# that dies ends the others at once (its sockets close, and torchrun stops the rest). LEARNDROP_DIST_TIMEOUT
TIMEOUT_S = float(os.environ.get("LEARNDROP_DIST_TIMEOUT", "120"))


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0  # the GPU this process trains on, on its machine

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes the run (the others write nothing)."""
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> World:
        """This process's place as torchrun set it; one process when it did not start this one."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size == 1:
            return cls()
        return cls(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))

    def start(self, device: torch.device) -> torch.device:
        """Join the run's process group (NCCL on CUDA, gloo elsewhere); this process's device (its own
        GPU)."""
        if self.size == 1:
            return device
        if device.type == "mps":
            raise LearnDropError("data-parallel training runs on CUDA (NCCL) or the CPU (gloo), not on mps")
        if device.type == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise LearnDropError(f"process {self.rank} needs GPU {self.local_rank}, and this machine has "
                                     f"{torch.cuda.device_count()}: start at most one process per GPU")
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                    timeout=timedelta(seconds=TIMEOUT_S))
        return device

    def close(self, finished: bool = False) -> None:
        """Leave the process group; a run that ``finished`` waits for every process first, so none tears the
        group down while another is still in a collective (gloo aborts the process then)."""
        if self.size > 1 and dist.is_initialized():
            if finished:
                try:
                    dist.barrier()
                except Exception as exc:  # a process that ended after the run had finished: none to wait for
                    if not is_peer_failure(exc):
                        raise
            dist.destroy_process_group()

    # --- the data ------------------------------------------------------------------------------------
    def shard(self, data: ImageData) -> ImageData:
        """This process's training rows: every ``size``-th from ``rank``, as many for every process (the last
        ``len(data) % size`` rows are not trained on, as with ``DistributedSampler(drop_last=True)``)."""
        if self.size == 1:
            return data
        idx = torch.arange(self.rank, len(data) // self.size * self.size, self.size)
        return ImageData(data.images[idx], data.labels[idx], data.classes, data.flip, data.notes)

    def own(self, order: torch.Tensor) -> torch.Tensor:
        """Of ``order``, a permutation of every process's rows (``rank + size * row``), this process's rows in
        that order."""
        return order if self.size == 1 else order[order % self.size == self.rank] // self.size

    def rows(self, n: int) -> torch.Tensor:
        """This process's share of a split of ``n`` images to evaluate."""
        return torch.arange(self.rank, n, self.size)

    # --- collectives ----------------------------------------------------------------------------------
    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over the processes (in place)."""
        if self.size > 1:
            dist.all_reduce(values)
        return values

    def sync_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (BatchNorm's running statistics) on every process."""
        if self.size > 1:
            for buffer in model.buffers():
                dist.broadcast(buffer, 0)

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value`` (picklable), in rank order."""
        if self.size == 1:
            return [value]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, value)
        return out

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (picklable) on every process."""
        if self.size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, 0)
        return box[0]

    def agree(self, what: str, value: Any) -> None:
        """Every process must have decided ``value`` as rank 0 did; else each raises the same error."""
        values = self.gather(value)
        other = next((r for r, v in enumerate(values) if v != values[0]), None)
        if other is not None:
            raise LearnDropError(f"process {other} decided {what} {values[other]}, process 0 {values[0]}: "
                                 "their networks differ, so the run stops")

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` (the trainable suffix) under ``DistributedDataParallel``: every parameter it wraps gets
        a gradient at every step, so it needs no ``find_unused_parameters``."""
        device = next(module.parameters()).device
        return nn.parallel.DistributedDataParallel(module,
                                                   device_ids=[device] if device.type == "cuda" else None)


def is_peer_failure(exc: BaseException) -> bool:
    """An error from the process group: another process ended, or stalled past ``TIMEOUT_S``."""
    return isinstance(exc, dist.DistError) or (isinstance(exc, RuntimeError) and any(
        word in str(exc) for word in ("gloo", "Gloo", "NCCL", "Connection closed", "Connection reset")))
