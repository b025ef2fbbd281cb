"""torch-fidelity without torchvision.

torch-fidelity's package `__init__` imports its CLIP and DINOv2 extractors, which import
torchvision; torchvision's wheels cannot load beside a CPU-only torch. Its Inception-v3 module
needs only torch. When torch-fidelity is installed and torchvision is not, this registers an
empty `torch_fidelity` package (its real folder as `__path__`, its `__init__` not run), so that
`torch_fidelity.feature_extractor_inceptionv3` imports, for kdgan's `--features inception` and
for torchmetrics, which imports that module whenever torch-fidelity is installed (and would
otherwise fail on import). The package's top-level API is then absent, as it is anyway
without torchvision.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def register() -> None:
    if "torch_fidelity" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return
    spec = importlib.util.find_spec("torch_fidelity")
    if spec is None or not spec.submodule_search_locations:
        return
    package = types.ModuleType("torch_fidelity")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules["torch_fidelity"] = package
