"""kdgan: compress GANs by knowledge distillation."""

from kdgan import fidelity_shim
from kdgan.errors import UserError

fidelity_shim.register()  # before anything imports torchmetrics (see the module)

__version__ = "0.1.0"
__all__ = ["UserError", "__version__"]
