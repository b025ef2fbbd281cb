"""Feature taps: forward hooks that keep the latest output of modules named by path.

Paths are those of `model.named_modules()` (`stages.1`, `body.3.conv`), so a loss never
needs the architecture's code edited, and any `nn.Module` teacher works.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from kdgan.errors import UserError


class Taps:
    def __init__(self, model: nn.Module, paths: list[str], owner: str, field: str):
        self._model, self._owner = model, owner
        self.paths: list[str] = []
        self.outputs: dict[str, torch.Tensor] = {}
        self._modules: list[nn.Module] = []
        self._handles = []
        self.extend(paths, field)

    def extend(self, paths: list[str], field: str) -> None:
        """Hook more modules (a second feature term's), keeping those already hooked."""
        modules = dict(self._model.named_modules())
        for path in paths:
            if path not in modules or path == "":
                near = [n for n in modules if n and n.count(".") <= 1][:12]
                raise UserError(
                    f"{field}: the {self._owner} has no module {path!r}; some of its modules: {', '.join(near)}"
                )
        new = [p for p in dict.fromkeys(paths) if p not in self.paths]
        self.paths += new
        self._modules += [modules[p] for p in new]
        self.remove()
        self.attach()

    def attach(self) -> None:
        """Hook the modules (again, after `remove`)."""
        if not self._handles:
            self._handles = [m.register_forward_hook(self._keeper(p)) for p, m in zip(self.paths, self._modules)]

    def _keeper(self, path: str):
        def keep(module, inputs, output):
            if isinstance(output, (tuple, list)):
                output = output[0]
            self.outputs[path] = output

        return keep

    def snapshot(self) -> dict[str, torch.Tensor]:
        """The outputs of the last forward pass (a copy of the dict, not of the tensors)."""
        return dict(self.outputs)

    def remove(self) -> None:
        """Unhook the modules (a user's teacher leaves distillation as it came) and drop the
        recorded tensors."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.outputs.clear()


_STAGE = re.compile(r"^(stem|stages\.\d+)$")


def default_generator_taps(student: nn.Module, teacher: nn.Module) -> list[tuple[str, str]]:
    """For kdgan's generators: the output of each resolution stage (`stem`, `stages.i`)
    present in both networks, paired by name; or the paths a network lists as `feature_taps`
    (the image-to-image generators)."""
    listed = getattr(student, "feature_taps", None)
    s = list(listed) if listed else [n for n, _ in student.named_modules() if _STAGE.match(n)]
    t = {n for n, _ in teacher.named_modules() if n in s or _STAGE.match(n)}
    pairs = [(n, n) for n in s if n in t]
    if not pairs:
        raise UserError(
            "distill.terms: feature: no default taps for these networks (they have no `stem`/"
            "`stages.i` modules); list them as taps: [[student_path, teacher_path], ...]"
        )
    return pairs


def default_attention_taps(student: nn.Module, teacher: nn.Module) -> list[tuple[str, str]]:
    """The attention maps each network lists as `attention_taps` (modules whose output is a
    (B, heads, queries, keys) map), paired in order."""
    s, t = getattr(student, "attention_taps", None), getattr(teacher, "attention_taps", None)
    if not s or not t or len(s) != len(t):
        raise UserError(
            "distill.terms: feature: loss attention has no default taps for these networks (both must list "
            "the same number of `attention_taps`); list them as taps: [[student_path, teacher_path], ...]"
        )
    return list(zip(s, t))


def default_discriminator_taps(discriminator: nn.Module) -> list[str]:
    """For kdgan's discriminators: the output of each resolution stage."""
    paths = [n for n, _ in discriminator.named_modules() if re.match(r"^(from_image|stages\.\d+)$", n)]
    if not paths:
        raise UserError(
            "distill.terms: perceptual: the teacher discriminator has no `stages.i` modules; "
            "list its feature layers as layers: [path, ...]"
        )
    return paths
