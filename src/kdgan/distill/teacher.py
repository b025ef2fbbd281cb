"""Load a teacher: a shipped name, a pretrained folder, a run folder or a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from kdgan.errors import UserError
from kdgan.export import SHIPPED, load_pretrained
from kdgan.nets import DiscriminatorSpec, GeneratorSpec, build_discriminator, build_generator
from kdgan.train.checkpoint import load_checkpoint, unprefixed


@dataclass
class Teacher:
    generator: nn.Module
    discriminator: nn.Module | None = None
    generator_spec: GeneratorSpec | None = None  # None for a user's own module
    discriminator_spec: DiscriminatorSpec | None = None
    class_names: list[str] = field(default_factory=list)
    source: str = "python"

    def freeze(self) -> "Teacher":
        """Teachers are fixed functions: eval mode (BatchNorm uses its running statistics)
        and no gradients for their weights."""
        for net in (self.generator, self.discriminator):
            if net is not None:
                net.eval().requires_grad_(False)
        return self


def load_teacher(source: str | Path) -> Teacher:
    path = Path(source)
    if str(source) in SHIPPED or (path / "config.json").is_file():
        g, d, config = load_pretrained(source)
        return Teacher(g, d, GeneratorSpec(**config["generator"]), DiscriminatorSpec(**config["discriminator"]),
                       config.get("class_names", []), str(source)).freeze()
    if not path.exists():
        raise UserError(
            f"--teacher: {source} does not exist; give a run folder, a checkpoint, a pretrained "
            f"folder or a shipped teacher ({', '.join(SHIPPED)})"
        )
    meta, tensors = load_checkpoint(path)
    g_spec = GeneratorSpec(**meta["generator_spec"])
    d_spec = DiscriminatorSpec(**meta["discriminator_spec"])
    g_key = "generator_ema" if any(k.startswith("generator_ema.") for k in tensors) else "generator"
    generator, discriminator = build_generator(g_spec), build_discriminator(d_spec)
    generator.load_state_dict(unprefixed(g_key, tensors))
    discriminator.load_state_dict(unprefixed("discriminator", tensors))
    return Teacher(generator, discriminator, g_spec, d_spec, meta.get("class_names", []), str(source)).freeze()
