"""Mixed precision for the step: autocast regions and, for fp16, gradient scaling.

bf16 keeps fp32's exponent range and needs no scaling; fp16 does, with one GradScaler per
optimizer (D and G update at different points of the step). Losses and penalties are
computed in fp32 whatever the region (see losses/adversarial.py, losses/penalties.py).
"""

from __future__ import annotations

import contextlib

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    def __init__(self, name: str, device: torch.device):
        self.name, self.device = name, device
        fp16 = name == "fp16"
        self.scalers = {k: torch.amp.GradScaler(device.type, enabled=fp16) for k in ("d", "g")}

    def autocast(self):
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.name])

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, phase: str,
                          before_step=None) -> None:
        """zero_grad, backward (scaled for fp16), `before_step()` (e.g. a gradient all-reduce,
        on the still-scaled gradients: averaging commutes with the scale), step, update."""
        scaler = self.scalers[phase]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if before_step is not None:
            before_step()
        scaler.step(optimizer)
        scaler.update()

    def state(self) -> dict:
        return {k: s.state_dict() for k, s in self.scalers.items() if s.is_enabled()}

    def load_state(self, state: dict) -> None:
        for k, s in state.items():
            self.scalers[k].load_state_dict(s)
