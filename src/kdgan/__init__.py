"""kdgan: compress GANs by knowledge distillation."""

from kdgan.errors import UserError

__version__ = "0.1.0"
__all__ = ["UserError", "__version__"]
