"""What one training step consumes: a real batch and the generator's inputs.

The training loop only knows that a generator maps a tuple of input tensors to an output
batch, and that the discriminator scores an output batch given optional extra tensors (the
class labels of a projection discriminator). A *task* builds both from the data; later tasks
(image-to-image, vocoders, tokens) supply other inputs without touching the loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kdgan.errors import UserError


@dataclass
class StepBatch:
    real: torch.Tensor  # (B, C, H, W) in [-1, 1]: what the discriminator sees as real
    g_inputs: tuple[torch.Tensor, ...]  # generator(*g_inputs) -> fake, shaped like `real`
    d_inputs: tuple[torch.Tensor, ...]  # discriminator(x, *d_inputs) for real and fake alike

    def shard(self, rank: int, world: int) -> "StepBatch":
        """This process's contiguous share of a global batch (world must divide it)."""
        if world == 1:
            return self
        n = self.real.shape[0] // world
        cut = lambda t: t[rank * n : (rank + 1) * n]  # noqa: E731
        return StepBatch(cut(self.real), tuple(map(cut, self.g_inputs)), tuple(map(cut, self.d_inputs)))

    def to(self, device: torch.device) -> "StepBatch":
        move = lambda ts: tuple(t.to(device, non_blocking=True) for t in ts)  # noqa: E731
        return StepBatch(self.real.to(device, non_blocking=True), move(self.g_inputs), move(self.d_inputs))


class EpochSampler:
    """Batch indices as a pure function of (seed, step): each epoch is a fresh permutation
    drawn from a generator seeded by (seed, epoch), the last partial batch dropped.

    Because nothing is carried from step to step, a resumed run sees exactly the batches an
    uninterrupted run would, and so does any process of a multi-process run.
    """

    def __init__(self, size: int, batch_size: int, seed: int):
        if size < batch_size:
            raise UserError(f"train.batch_size: {batch_size} is larger than the dataset ({size} training examples)")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.per_epoch = size // batch_size
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.int64)

    def indices(self, step: int) -> torch.Tensor:
        epoch, i = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.size, generator=gen)
        return self._perm[i * self.batch_size : (i + 1) * self.batch_size]
