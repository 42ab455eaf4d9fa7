"""Data order that can be resumed exactly: one permutation per (seed, epoch), cut into global batches.

Every process walks the same permutation; each global batch is cut into accumulation
micro-batches and each micro-batch into one slice per process. So 2 processes with half the
batch see exactly the samples that 1 process sees, and a resumed run starts from the sample
where the checkpoint left off, whatever its process count or batch size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DataPosition:
    epoch: int = 0
    offset: int = 0  # samples of this epoch's permutation already consumed

    def advance(self, global_batch: int, num_samples: int) -> DataPosition:
        """The position after one global batch; a tail shorter than a batch is skipped (drop_last)."""
        start = _start(self, global_batch, num_samples)
        return _start(DataPosition(start.epoch, start.offset + global_batch), global_batch, num_samples)


def _start(position: DataPosition, global_batch: int, num_samples: int) -> DataPosition:
    if position.offset + global_batch > num_samples:
        return DataPosition(position.epoch + 1, 0)
    return position


def permutation(seed: int, epoch: int, num_samples: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_samples, generator=generator)


class GlobalBatchSampler(torch.utils.data.Sampler):
    """Endless batch sampler: this process's share of each micro-batch, from `start` on."""

    def __init__(self, num_samples: int, global_batch: int, accumulation: int, num_processes: int, process_index: int, seed: int, start: DataPosition):
        if global_batch > num_samples:
            raise ValueError(f"train.batch_size ({global_batch}) is larger than the dataset ({num_samples} samples)")
        if global_batch % (accumulation * num_processes):
            raise ValueError(
                f"train.batch_size ({global_batch}) must be divisible by gradient_accumulation_steps ({accumulation})"
                f" x processes ({num_processes})"
            )
        self.num_samples = num_samples
        self.global_batch = global_batch
        self.accumulation = accumulation
        self.num_processes = num_processes
        self.process_index = process_index
        self.seed = seed
        self.start = start

    @property
    def per_process(self) -> int:
        return self.global_batch // (self.accumulation * self.num_processes)

    def __iter__(self) -> Iterator[list[int]]:
        position = _start(self.start, self.global_batch, self.num_samples)
        order, epoch = None, None
        micro = self.global_batch // self.accumulation
        lo, hi = self.process_index * self.per_process, (self.process_index + 1) * self.per_process
        while True:
            if position.epoch != epoch:
                epoch, order = position.epoch, permutation(self.seed, position.epoch, self.num_samples)
            batch = order[position.offset : position.offset + self.global_batch]
            for k in range(self.accumulation):
                yield batch[k * micro : (k + 1) * micro][lo:hi].tolist()
            position = position.advance(self.global_batch, self.num_samples)
