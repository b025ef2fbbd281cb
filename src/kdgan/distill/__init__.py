"""Distillation: teachers, students, feature taps and the terms they add to the loop."""

from kdgan.distill.build import build_distill_trainer
from kdgan.distill.taps import Taps
from kdgan.loading import Teacher, load_gan

__all__ = ["Teacher", "Taps", "build_distill_trainer", "load_gan"]
