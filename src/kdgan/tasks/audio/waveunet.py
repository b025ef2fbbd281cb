"""A waveform U-Net for speech enhancement (`arch: wave-unet`): SEGAN's idea, a 1-D
encoder-decoder on the raw waveform with skip connections, in the layout of Demucs's denoiser
(Defossez et al. 2020), which runs in real time on a CPU: each encoder level is a strided
conv (kernel 8, stride 4), ReLU, then a 1x1 conv with a gated linear unit; each decoder level
mirrors it; skips are added, not concatenated. At the bottom, dilated residual convs give
about half a second of context (Demucs uses an LSTM there; convs prune and export like the
rest).

Shapes: noisy (B, 1, T) -> enhanced (B, 1, T) for any T: the input is padded with zeros to a
multiple of stride^depth and the output cut back. The input is divided by its RMS and the
output multiplied back (Demucs's normalisation), so loud and quiet recordings look alike.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from kdgan.distill.channels import top_channels
from kdgan.errors import UserError

KERNEL, STRIDE = 8, 4


class WaveUNetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: Literal["wave-unet"] = "wave-unet"
    width: int = Field(32, ge=1)  # the first level's channels; each level doubles them
    depth: int = Field(4, ge=1)  # levels (each divides the rate by 4)
    context: int = Field(4, ge=0)  # dilated residual convs at the bottom (dilations 1, 2, 4, ...)

    def channels(self, level: int) -> int:
        """Channels of level 1..depth (level 0: the waveform)."""
        return 1 if level == 0 else self.width << (level - 1)


class Encoder(nn.Module):
    def __init__(self, c_in: int, c: int):
        super().__init__()
        self.down = nn.Conv1d(c_in, c, KERNEL, STRIDE, padding=(KERNEL - STRIDE) // 2)
        self.gate = nn.Conv1d(c, 2 * c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(self.gate(F.relu(self.down(x))), dim=1)


class Decoder(nn.Module):
    def __init__(self, c: int, c_out: int, last: bool):
        super().__init__()
        self.gate = nn.Conv1d(c, 2 * c, 1)
        self.up = nn.ConvTranspose1d(c, c_out, KERNEL, STRIDE, padding=(KERNEL - STRIDE) // 2)
        self.last = last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(F.glu(self.gate(x), dim=1))
        return x if self.last else F.relu(x)


class WaveUNetGenerator(nn.Module):
    """Feature taps: `encoders.i`, `context.i`, `decoders.i` (decoders run deepest first)."""

    def __init__(self, spec: WaveUNetSpec):
        super().__init__()
        self.spec = spec
        c = spec.channels
        self.encoders = nn.ModuleList(Encoder(c(i), c(i + 1)) for i in range(spec.depth))
        bottom = c(spec.depth)
        self.context = nn.ModuleList(nn.Conv1d(bottom, bottom, 3, dilation=2**i, padding=2**i)
                                     for i in range(spec.context))
        self.decoders = nn.ModuleList(Decoder(c(i), c(i - 1), last=i == 1) for i in range(spec.depth, 0, -1))
        self.multiple = STRIDE**spec.depth
        # the feature term's default taps: every level's stream on the way down and up
        self.feature_taps = [f"encoders.{i}" for i in range(spec.depth)] + \
            [f"decoders.{i}" for i in range(spec.depth - 1)]

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        length = noisy.shape[-1]
        scale = noisy.pow(2).mean(dim=(1, 2), keepdim=True).sqrt() + 1e-3
        x = F.pad(noisy / scale, (0, (-length) % self.multiple))
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
        for conv in self.context:
            x = x + conv(F.relu(x))
        for decoder in self.decoders:
            x = decoder(x + skips.pop())
        return (x[..., :length] * scale).clamp(-1, 1)


@torch.no_grad()
def prune_waveunet(student: WaveUNetGenerator, teacher: WaveUNetGenerator, importance: str = "l1") -> list[torch.Tensor]:
    """A narrower wave U-Net from the teacher's strongest channels. Skips are added, so one
    index set per level serves the encoder's output, the skip, the deeper decoder's output and
    this level's decoder input (and, at the bottom, every context conv); its score is the L1
    norm of every filter writing to it. The convs inside a level (before the gate) keep their
    own strongest filters. Returns each level's kept channels, top level first."""
    s, t = student.spec, teacher.spec
    if s.depth != t.depth or s.context != t.context or s.width > t.width:
        raise UserError("distill.student.init: prune needs a wave-unet student of the teacher's depth and context, "
                        "at most its width; use init: scratch")

    def rows_l1(w: torch.Tensor) -> torch.Tensor:  # per output channel of a Conv1d
        return w.abs().sum((1, 2))

    def glu_rows(keep: torch.Tensor, c: int) -> torch.Tensor:  # a gate conv's value and gate rows
        return torch.cat([keep, keep + c])

    levels = [torch.arange(1)]
    for i in range(1, t.depth + 1):
        c = t.channels(i)
        enc, dec_out = teacher.encoders[i - 1], teacher.decoders[t.depth - i - 1] if i < t.depth else None
        gate_w = enc.gate.weight.abs().sum((1, 2))
        score = gate_w[:c] + gate_w[c:]
        if dec_out is not None:  # the deeper level's decoder writes this level's stream
            score = score + dec_out.up.weight.abs().sum((0, 2))
        else:
            score = score + sum(rows_l1(conv.weight) for conv in teacher.context)
        levels.append(top_channels(score, s.channels(i)))
    for i in range(1, t.depth + 1):
        c_t, keep, below = t.channels(i), levels[i], levels[i - 1]
        te, se = teacher.encoders[i - 1], student.encoders[i - 1]
        hidden = top_channels(rows_l1(te.down.weight), s.channels(i))
        _conv(se.down, te.down, hidden, below)
        _conv(se.gate, te.gate, glu_rows(keep, c_t), hidden)
        td, sd = teacher.decoders[t.depth - i], student.decoders[t.depth - i]
        inner = top_channels(td.up.weight.abs().sum((1, 2)), s.channels(i))
        _conv(sd.gate, td.gate, glu_rows(inner, c_t), keep)
        sd.up.weight.copy_(td.up.weight[inner][:, below])
        sd.up.bias.copy_(td.up.bias[below])
    for sc, tc in zip(student.context, teacher.context):
        _conv(sc, tc, levels[-1], levels[-1])
    return levels[1:]


def _conv(s: nn.Conv1d, t: nn.Conv1d, keep_out: torch.Tensor, keep_in: torch.Tensor) -> None:
    s.weight.copy_(t.weight[keep_out][:, keep_in])
    s.bias.copy_(t.bias[keep_out])
