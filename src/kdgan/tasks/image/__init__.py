"""kdgan's image tasks: generation from latent codes, and image-to-image translation
(super-resolution, inpainting, edges -> photo, paired and unpaired A -> B), with the image
network families they train (registered on import, see kdgan.registry)."""

from kdgan.registry import TASKS
from kdgan.tasks.image import families  # noqa: F401  (registers the image networks)
from kdgan.tasks.image.task import ImageTask

for _name in ("generation", "super_resolution", "inpainting", "edges", "paired", "unpaired"):
    TASKS.register(_name, ImageTask)
