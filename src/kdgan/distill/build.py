"""Assemble a distillation run: teacher, student networks, distillation terms, the loop.

From Python, any `nn.Module` can be the teacher generator (and discriminator):

    from kdgan.distill import Teacher, build_distill_trainer
    trainer = build_distill_trainer(cfg, Teacher(my_generator, my_discriminator),
                                    student=my_small_generator)
    trainer.fit(run_dir)

The teacher must accept the task's generator inputs (`G(z)`, `G(z, y)`, `G(mel)`, ...) and
return samples shaped like the data, or a tuple/list whose first element is them; this is checked
once before training starts.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel
from torch import nn

from kdgan.config import Config
from kdgan.distill.distiller import build_terms
from kdgan.distill.students import scaled_width
from kdgan.loading import GAN, samples_of, load_gan
from kdgan.errors import UserError
from kdgan.families import build_discriminator, build_generator, read_spec, saved_spec
from kdgan.registry import DISCRIMINATORS, GENERATORS
from kdgan.tasks import build_task
from kdgan.train.build import apply_determinism, assemble_trainer, resolve_device
from kdgan.train import distributed
from kdgan.train.loop import Trainer


def _updated(spec: BaseModel, registry, **update) -> BaseModel:
    """`spec` with the fields of `update` that its family's spec has (`arch` may change the family)."""
    fields = {k: v for k, v in update.items() if k == "arch" or k in type(spec).model_fields}
    return read_spec(registry, {**saved_spec(spec, registry), **fields}, "distill.student")


def student_specs(cfg: Config, teacher: GAN, task) -> tuple[BaseModel, BaseModel]:
    """Width-scaled copies of the teacher's specs, or the config's model section."""
    g_spec, d_spec = task.network_specs(cfg)
    num_classes = task.num_classes
    st, sd = cfg.distill.student, cfg.distill.discriminator
    if st.blocks is not None and st.width_multiplier is None:
        raise UserError("distill.student.blocks: applies to a width-scaled student; with width_multiplier: null "
                        "set model.generator.blocks instead")
    if st.width_multiplier is not None:
        if teacher.generator_spec is None:
            raise UserError("distill.student.width_multiplier: the teacher has no kdgan spec to scale; "
                            "set it to null and describe the student in model.generator")
        t = teacher.generator_spec
        g_spec = _updated(t, GENERATORS, width=scaled_width(t.width, st.width_multiplier),
                          arch=st.arch or t.arch, num_classes=num_classes)
        if st.blocks is not None:
            if g_spec.arch not in ("sr", "resnet-i2i"):
                raise UserError(f"distill.student.blocks: only sr and resnet-i2i students have residual blocks "
                                f"(this one is {g_spec.arch}); set it to null")
            g_spec = g_spec.model_copy(update={"blocks": st.blocks})
    if sd.width_multiplier is not None and teacher.discriminator_spec is not None:
        t = teacher.discriminator_spec
        # The task decides what D is conditioned on (unpaired: nothing, whatever the teacher's D saw).
        d_spec = _updated(t, DISCRIMINATORS, width=scaled_width(t.width, sd.width_multiplier),
                          num_classes=num_classes, in_channels=getattr(d_spec, "in_channels", 0))
    return g_spec, d_spec


def check_teacher_fits(teacher: GAN, task, device: torch.device) -> None:
    """One forward of the teacher on the task's inputs; a wrong shape is the user's to fix."""
    inputs = tuple(t.to(device) for t in task.fixed_inputs(2, 0))
    try:
        with torch.no_grad():
            out = teacher.generator(*inputs)
    except Exception as err:  # a user's module can fail in any way; report it as one line
        raise UserError(f"--teacher: the teacher generator failed on the task's inputs: {err}") from None
    out = samples_of(out)
    want = (2, *task.fixed_batch(2, 0).real.shape[1:])
    if tuple(out.shape) != want:
        raise UserError(
            f"--teacher: the teacher generates {tuple(out.shape)[1:]} but data gives {want[1:]}; "
            "set the data section (and task) to what the teacher makes, e.g. data.resolution / data.channels"
        )


def build_distill_trainer(cfg: Config, teacher: GAN | None = None, student: nn.Module | None = None,
                          student_discriminator: nn.Module | None = None) -> Trainer:
    if cfg.distill is None:
        raise UserError("distill: the config has no distill section (see configs/distill_*.yaml)")
    apply_determinism(cfg.deterministic)
    device = resolve_device(cfg.device)
    _, device = distributed.init(device)  # each process's own GPU under torchrun
    if teacher is None:
        if not cfg.distill.teacher:
            raise UserError("--teacher: no teacher given (set --teacher or distill.teacher)")
        teacher = load_gan(cfg.distill.teacher, cfg.distill.trust_pickle)
    teacher.freeze()
    teacher.generator.to(device)
    if cfg.train.channels_last:
        teacher.generator.to(memory_format=torch.channels_last)
    if teacher.discriminator is not None:
        teacher.discriminator.to(device)
    task = build_task(cfg)
    if teacher.generator_spec is not None:
        t_classes = getattr(teacher.generator_spec, "num_classes", 0)
        if t_classes != task.num_classes:
            raise UserError(f"data.conditional: the teacher is {'conditional on %d classes' % t_classes if t_classes else 'unconditional'}, "
                            f"the data gives {task.num_classes or 'no'} classes")
        t_latent = getattr(teacher.generator_spec, "latent_dim", None)
        if not getattr(teacher.generator_spec, "in_channels", 0) and t_latent not in (None, cfg.model.latent_dim):
            raise UserError(f"model.latent_dim: must be the teacher's, {teacher.generator_spec.latent_dim}")
    check_teacher_fits(teacher, task, device)

    g_spec, d_spec = student_specs(cfg, teacher, task)
    torch.manual_seed(cfg.seed)
    meta = {}
    if student is None:
        student = build_generator(g_spec)
        meta["generator_spec"] = saved_spec(g_spec)
        if cfg.distill.student.init == "prune":
            prune = GENERATORS.get(g_spec.arch, "distill.student.arch").prune
            if prune is None:
                raise UserError(f"distill.student.init: the {g_spec.arch} family has no pruning rule; use init: scratch")
            prune(student, teacher.generator, cfg.distill.student.importance)
    if student_discriminator is None:
        student_discriminator = build_discriminator(d_spec)
        meta["discriminator_spec"] = saved_spec(d_spec, DISCRIMINATORS)
        if cfg.distill.discriminator.init == "teacher":
            if teacher.discriminator is None or d_spec != teacher.discriminator_spec:
                raise UserError("distill.discriminator.init: teacher needs a teacher discriminator of the same "
                                "spec (width_multiplier: 1.0)")
            student_discriminator.load_state_dict(teacher.discriminator.state_dict())
    student, student_discriminator = student.to(device), student_discriminator.to(device)
    meta["teacher"] = {"source": teacher.source,
                       "generator_spec": saved_spec(teacher.generator_spec) if teacher.generator_spec else None}

    probe = tuple(t.to(device) for t in task.fixed_inputs(2, 0))
    terms, provider = build_terms(cfg.distill.terms, teacher, student, cfg.train.loss.name, probe)
    g_terms = [t for t in terms if t.phase == "g"]
    d_terms = [t for t in terms if t.phase == "d"]
    trainer = assemble_trainer(cfg, task, device, student, student_discriminator, g_terms, d_terms,
                               providers=[provider], meta=meta, reference=teacher.generate)
    trainer.fidelity_features = task.fidelity_features(cfg)
    return trainer
