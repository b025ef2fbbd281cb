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

from pydantic import BaseModel, ValidationError
from torch import nn

from kdgan.errors import UserError
from kdgan.registry import DISCRIMINATORS, GENERATORS


@dataclass(frozen=True)
class Family:
    build: Callable[[Any], nn.Module]  # spec -> a freshly initialised network
    spec: type[BaseModel]  # has `arch` and `width`
    config: type[BaseModel]  # schema of the model.generator / model.discriminator section
    # (student, teacher, importance) -> None: initialise a narrower network from a trained
    # one (distill.student.init: prune); None where the family has no such rule
    prune: Callable[[nn.Module, nn.Module, str], None] | None = None
    # The spec's schema version, saved beside it as `spec_version` (no key: version 1), and
    # how a saved spec of an older version becomes this one: (fields, its version) -> fields.
    version: int = 1
    upgrade: Callable[[dict, int], dict] | None = None
    # What the family's networks take or make ("image", "audio", ...): a task of another
    # modality refuses it in one line. None: any task may use it.
    modality: str | None = None
    # False: the core builds it (train.cycle's composite pair), a model section never names it
    configurable: bool = True


def check_modality(family: Family, arch: str, task, task_name: str, registry, field: str) -> None:
    """A one-line error when `task` (the registered Task class named `task_name`) cannot use
    the family."""
    takes = getattr(task, "generators", None) if registry is GENERATORS else None
    if family.modality is not None and task.modality is not None and family.modality != task.modality:
        usable = takes or [n for n, f in registry.entries().items()
                           if f.modality in (None, task.modality) and f.configurable]
        raise UserError(f"config error: {field}: {arch!r} is a family of {family.modality} networks; "
                        f"task {task_name} takes {task.modality} families: {', '.join(usable)}")
    if takes is not None and arch not in takes:  # the task's own list is narrower than its modality
        raise UserError(f"config error: {field}: task {task_name} takes {' or '.join(takes)}, not {arch!r}")


def read_spec(registry, data: dict | BaseModel, field: str) -> BaseModel:
    """A saved spec (a dict from JSON, or a spec object of an older schema) as its family's
    current typed spec."""
    if isinstance(data, BaseModel):
        family = registry.get(data.arch, f"{field}.arch")
        if isinstance(data, family.spec):
            return data
        data = data.model_dump()  # an older schema's object (kdgan.nets.GeneratorSpec)
    data = dict(data)
    family = registry.get(data.get("arch"), f"{field}.arch")
    version = data.pop("spec_version", 1)
    if version > family.version:
        raise UserError(f"{field}: spec version {version} of {data['arch']!r} is newer than this kdgan reads "
                        f"({family.version}); upgrade kdgan")
    if version < family.version and family.upgrade is not None:
        data = family.upgrade(data, version)
    try:
        return family.spec.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join([field, *(str(p) for p in first["loc"])])
        message = first["msg"].removeprefix("Value error, ")
        raise UserError(f"{where}: {message} (the {data['arch']} family's spec)") from None


def read_generator_spec(data: dict | BaseModel, field: str = "generator_spec") -> BaseModel:
    return read_spec(GENERATORS, data, field)


def read_discriminator_spec(data: dict | BaseModel, field: str = "discriminator_spec") -> BaseModel:
    return read_spec(DISCRIMINATORS, data, field)


def saved_spec(spec: BaseModel, registry=GENERATORS) -> dict:
    """What a checkpoint or pretrained folder stores for a spec: its fields and, past version
    1, its schema version."""
    spec = read_spec(registry, spec, "spec")  # an older schema's object is saved as the current one
    version = registry.get(spec.arch, "arch").version
    return {**spec.model_dump(mode="json"), **({"spec_version": version} if version > 1 else {})}


def build_generator(spec: BaseModel) -> nn.Module:
    return GENERATORS.get(spec.arch, "model.generator.arch").build(read_generator_spec(spec))


def build_discriminator(spec: BaseModel) -> nn.Module:
    return DISCRIMINATORS.get(spec.arch, "model.discriminator.arch").build(read_discriminator_spec(spec))
