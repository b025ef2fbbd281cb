"""CycleGAN training through the one loop (train.cycle): a task with two domains, the
composite networks of kdgan.nets.cycle and the cycle and identity terms of
kdgan.losses.cycle. Nothing else changes: the loop steps the pair of generators as one
generator and the pair of discriminators as one discriminator.

A step's batch, for unpaired examples a (domain A) and b (domain B) of the same shape:

    real      (B, 2, ...)  b and a stacked on dim 1: what D_B and D_A judge as real
    g_inputs  (a, b)       the generator makes (G_AB(a), G_BA(b)) stacked the same way
"""

from __future__ import annotations

import torch

from kdgan.data.sampling import StepBatch
from kdgan.errors import UserError
from kdgan.families import saved_spec
from kdgan.losses.cycle import CycleConsistency, IdentityMapping
from kdgan.nets.cycle import CycleDiscriminatorSpec, CycleGeneratorSpec
from kdgan.registry import DISCRIMINATORS, TASKS


class CycleBatches:
    """A task as cycle training consumes it: its unpaired_batch for the steps, everything else
    (sample grids, evaluation, the fixed inputs of domain A) its own."""

    def __init__(self, task):
        self.task = task

    def __getattr__(self, name: str):
        return getattr(self.task, name)

    def __len__(self) -> int:
        return len(self.task)

    def batch(self, indices: torch.Tensor, noise: torch.Generator) -> StepBatch:
        a, b = self.task.unpaired_batch(indices, noise)
        return StepBatch(torch.stack([b, a], 1), (a, b), ())


def cycle_training(cfg, task) -> tuple[CycleBatches, CycleGeneratorSpec, CycleDiscriminatorSpec, list]:
    """The task's batches, the composite specs and the generator's extra terms for train.cycle."""
    if not task.cycle_domains:
        able = [n for n, t in TASKS.entries().items() if t.cycle_domains]
        raise UserError(f"train.cycle: task {cfg.task.name} has no two domains to translate between; "
                        f"tasks that do: {', '.join(able)}")
    a, b = task.unpaired_batch(torch.arange(1), torch.Generator().manual_seed(0))
    if a.shape != b.shape:
        raise UserError(f"train.cycle: domain A examples are shaped {tuple(a.shape[1:])} and domain B's "
                        f"{tuple(b.shape[1:])}; cycle training needs both domains shaped alike")
    g_ab, d_b = task.network_specs(cfg)
    g_ba, d_a = task.reverse_specs(cfg)
    c = cfg.train.cycle
    g_spec = CycleGeneratorSpec(a_to_b=saved_spec(g_ab), b_to_a=saved_spec(g_ba), identity=c.identity > 0)
    d_spec = CycleDiscriminatorSpec(judge_b=saved_spec(d_b, DISCRIMINATORS), judge_a=saved_spec(d_a, DISCRIMINATORS))
    terms = [CycleConsistency(c.cycle)] if c.cycle > 0 else []
    if c.identity > 0:
        terms.append(IdentityMapping(c.identity))
    return CycleBatches(task), g_spec, d_spec, terms
