"""Generator and discriminator families: networks built by name from a spec saved with them.

A family is registered with the schema of its config section (`model.generator`), the schema
of its spec (everything needed to rebuild the network from nothing, diffusers-style: the
checkpoint's JSON carries it, so loading weights never needs the training config) and its
builder. A spec names its family in `arch`; `width` is what a student's width multiplier
scales.

    GENERATORS.register("conv1d", Family(build=Conv1dGenerator.from_spec, spec=Conv1dSpec,
                                         config=Conv1dConfig))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel
from torch import nn

from kdgan.registry import DISCRIMINATORS, GENERATORS


@dataclass(frozen=True)
class Family:
    build: Callable[[Any], nn.Module]  # spec -> a freshly initialised network
    spec: type[BaseModel]  # has `arch` and `width`
    config: type[BaseModel]  # schema of the model.generator / model.discriminator section
    # (student, teacher, importance) -> None: initialise a narrower network from a trained
    # one (distill.student.init: prune); None where the family has no such rule
    prune: Callable[[nn.Module, nn.Module, str], None] | None = None


def read_spec(registry, data: dict | BaseModel, field: str) -> BaseModel:
    """A saved spec (a dict from JSON) as its family's typed spec."""
    if isinstance(data, BaseModel):
        return data
    family = registry.get(data.get("arch"), f"{field}.arch")
    return family.spec.model_validate(data)


def read_generator_spec(data: dict | BaseModel, field: str = "generator_spec") -> BaseModel:
    return read_spec(GENERATORS, data, field)


def read_discriminator_spec(data: dict | BaseModel, field: str = "discriminator_spec") -> BaseModel:
    return read_spec(DISCRIMINATORS, data, field)


def saved_spec(spec: BaseModel) -> dict:
    """What a checkpoint or pretrained folder stores for a spec."""
    return spec.model_dump(mode="json")


def build_generator(spec: BaseModel) -> nn.Module:
    return GENERATORS.get(spec.arch, "model.generator.arch").build(spec)


def build_discriminator(spec: BaseModel) -> nn.Module:
    return DISCRIMINATORS.get(spec.arch, "model.discriminator.arch").build(spec)
