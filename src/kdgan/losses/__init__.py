from kdgan.losses.adversarial import ADVERSARIAL_LOSSES, DiscriminatorOutput, discriminator_loss, generator_loss
from kdgan.losses.penalties import gradient_penalty, r1_penalty
from kdgan.losses.terms import (AdversarialD, AdversarialG, GeneratorOutput, GradientPenalty, LossTerm, Objective, R1,
                                StepContext)

__all__ = [
    "ADVERSARIAL_LOSSES",
    "DiscriminatorOutput",
    "GeneratorOutput",
    "discriminator_loss",
    "generator_loss",
    "gradient_penalty",
    "r1_penalty",
    "AdversarialD",
    "AdversarialG",
    "GradientPenalty",
    "LossTerm",
    "Objective",
    "R1",
    "StepContext",
]
