"""Networks for voice conversion on log-mel spectrograms (#18).

`mel-convnext` (generator): the source's log-mel (B, n_mels, F) -> the target voice's
(B, n_mels, F), frame for frame: a ConvNeXt-1D backbone at the mel's frame rate (the Vocos
backbone, kdgan.tasks.audio.vocos) whose output is added to the input (what a voice changes is
a correction of the spectral envelope, not a new spectrogram). Feature taps `stem`, `stages.i`.
With `speaker` > 0 it is a cloning generator: forward(mel, speaker) takes the target voice's
speaker embedding (B, speaker) too (kdgan.tasks.audio.speaker), projected to the stream's
width and added to every frame before the blocks.

`mel-patch` (discriminator): 1-D convs over the frames with the mel bands as channels, one
logit per receptive field (a PatchGAN along time, about 30 frames), every layer's features
returned for feature matching.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from kdgan.errors import UserError
from kdgan.losses import DiscriminatorOutput
from kdgan.tasks.audio.prune import prune_convnext
from kdgan.tasks.audio.vocos import add_convnext_backbone, run_convnext_backbone


class MelConverterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: Literal["mel-convnext"] = "mel-convnext"
    width: int = Field(256, ge=1)
    layers: int = Field(6, ge=1)
    expansion: int = Field(3, ge=1)
    speaker: int = Field(0, ge=0)  # > 0: conditioned on a speaker embedding of this size (cloning)
    n_mels: int = 80


class MelConverter(nn.Module):
    def __init__(self, spec: MelConverterSpec):
        super().__init__()
        self.spec = spec
        add_convnext_backbone(self, spec.n_mels, spec.width, spec.layers, spec.expansion)
        self.to_mel = nn.Linear(spec.width, spec.n_mels)
        if spec.speaker:
            self.speaker = nn.Linear(spec.speaker, spec.width)

    def forward(self, mel: torch.Tensor, speaker: torch.Tensor | None = None) -> torch.Tensor:
        if (speaker is None) != (not self.spec.speaker):
            raise ValueError(f"this converter takes {'a' if self.spec.speaker else 'no'} speaker embedding")
        condition = self.speaker(speaker) if speaker is not None else None
        return mel + self.to_mel(run_convnext_backbone(self, mel, condition)).transpose(1, 2)


class MelDiscriminatorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: Literal["mel-patch"] = "mel-patch"
    width: int = Field(64, ge=1)
    n_mels: int = 80


class MelDiscriminator(nn.Module):
    def __init__(self, spec: MelDiscriminatorSpec):
        super().__init__()
        w = spec.width
        chans = [spec.n_mels, w, 2 * w, 4 * w, 4 * w]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, 5, stride=2 if i in (1, 2) else 1, padding=2)
                                   for i, (a, b) in enumerate(zip(chans, chans[1:])))
        self.post = nn.Conv1d(chans[-1], 1, 3, padding=1)

    def forward(self, mel: torch.Tensor) -> DiscriminatorOutput:
        features, x = [], mel
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            features.append(x)
        x = self.post(x)
        features.append(x)
        return DiscriminatorOutput([x.flatten(1)], features)


@torch.no_grad()
def prune_converter(student: MelConverter, teacher: MelConverter, importance: str = "l1") -> list[torch.Tensor]:
    """As the Vocos backbone is pruned (kdgan.tasks.audio.prune.prune_vocos): one channel set
    for the residual stream (scored by the stem's filters and every block's output rows), each
    block's strongest hidden units, evenly spaced teacher blocks for a shallower student; the
    output layer keeps every mel band."""
    s, t = student.spec, teacher.spec
    if s.width > t.width or s.layers > t.layers or (s.n_mels, s.speaker) != (t.n_mels, t.speaker):
        raise UserError("distill.student.init: prune needs a mel-convnext student no wider or deeper than the "
                        "teacher, with its mel bands and speaker embedding; use init: scratch")
    keep, layers = prune_convnext(student, teacher)
    student.to_mel.weight.copy_(teacher.to_mel.weight[:, keep])
    student.to_mel.bias.copy_(teacher.to_mel.bias)
    if s.speaker:  # the projection writes into the residual stream: its kept rows
        student.speaker.weight.copy_(teacher.speaker.weight[keep])
        student.speaker.bias.copy_(teacher.speaker.bias[keep])
    return [keep, torch.tensor(layers)]
