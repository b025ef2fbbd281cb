"""A history of generated samples for the discriminator (train.fake_pool).

Shrivastava et al. (2017) and CycleGAN show the discriminator older generator outputs beside
new ones, so that it does not chase the generator's latest mode and oscillate. The rule, per
sample of a batch: until the pool holds `size` samples, the new sample joins it and is shown
as is; after that, with probability 1/2 the discriminator sees a random stored sample instead,
which the new one replaces, else it sees the new one.

The draws come from the loop's checkpointed noise generator and the pool is saved with every
checkpoint, so a resumed run shows the discriminator exactly what an uninterrupted one would.
"""

from __future__ import annotations

import torch


class FakePool:
    def __init__(self, size: int):
        self.size = size
        self.stored: list[torch.Tensor] = []

    @torch.no_grad()
    def query(self, samples: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
        """What the discriminator judges in place of `samples` (B, ...); updates the pool."""
        shown = []
        for sample in samples.detach():
            if len(self.stored) < self.size:
                self.stored.append(sample.clone())
                shown.append(sample)
            elif float(torch.rand((), generator=noise)) < 0.5:
                slot = int(torch.randint(self.size, (), generator=noise))
                shown.append(self.stored[slot])
                self.stored[slot] = sample.clone()
            else:
                shown.append(sample)
        return torch.stack(shown)

    def state(self) -> dict[str, torch.Tensor]:
        return {"pool.samples": torch.stack(self.stored)} if self.stored else {}

    def load(self, tensors: dict[str, torch.Tensor], device: torch.device) -> None:
        saved = tensors.get("pool.samples")
        self.stored = [] if saved is None else [s.to(device) for s in saved]
