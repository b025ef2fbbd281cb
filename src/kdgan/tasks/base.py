"""What a task brings to the shared core (ESPnet's AbsTask, fairseq's tasks).

The loop, the distiller, `kdgan evaluate`, `kdgan compare`, `kdgan sample` and `kdgan export`
never name a modality: they call these methods. A task package subclasses `Task`, registers
it by name (`@TASKS.register("name")`, kdgan.registry) and, with its network families and
metrics, is all a new modality needs. kdgan's image tasks live in kdgan.tasks.image.

Shapes: `StepBatch.real` is whatever the discriminator sees as real, batch first; the
generator maps `*g_inputs` to a batch shaped like `real`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel
from torch import nn

from kdgan.data.sampling import StepBatch
from kdgan.schema import Strict


class Task:
    # -- chosen by the config, before any data is read (classmethods) ----------------------
    settings: ClassVar[type[Strict]]  # schema of the `task` section; has `name`
    data_settings: ClassVar[type[Strict]]  # schema of the `data` section
    default_generator: ClassVar[str]  # model.generator.arch when the config gives none
    default_discriminator: ClassVar[str]
    default_metrics: ClassVar[tuple[str, ...]] = ()  # `kdgan evaluate` without --metrics
    modality: ClassVar[str | None] = None  # the network families it can use (Family.modality); None: any
    # the generator families it can use, where its modality's are too many (a vocoder takes a
    # mel, an enhancer a waveform: both audio); None: every family of its modality
    generators: ClassVar[tuple[str, ...] | None] = None
    metric_names: ClassVar[tuple[str, ...]] = ()  # what --metrics may name for this task
    takes_reference: ClassVar[bool] = False  # translate() takes `references` (kdgan sample --reference)
    takes_text: ClassVar[bool] = False  # translate_text() takes sentences (kdgan sample --text)
    onnx_profile: ClassVar[bool] = True  # profiles time the ONNX export too (False: it has none)
    cycle_domains: ClassVar[bool] = False  # has unpaired_batch: train.cycle can translate between two domains

    @classmethod
    def check(cls, cfg) -> None:
        """Rules across sections (a family that cannot serve this task, ...): raise
        ValueError("field: what is wrong; what would be valid")."""

    @classmethod
    def from_config(cls, cfg) -> "Task":
        """The task with its data loaded; user-data problems raise UserError."""
        return cls(cfg)

    # -- what one training step consumes -------------------------------------------------
    num_classes: int = 0  # > 0: class-conditional (labels among the generator inputs)
    class_names: list[str] = []

    def __len__(self) -> int:
        """Training examples: the epoch sampler permutes range(len(task))."""
        raise NotImplementedError

    def batch(self, indices: torch.Tensor, noise: torch.Generator) -> StepBatch:
        """The examples at `indices`, with generator inputs drawn from `noise` (CPU)."""
        raise NotImplementedError

    def fixed_batch(self, n: int, seed: int) -> StepBatch:
        """The same n examples and inputs every time (sample grids, reports, exports)."""
        raise NotImplementedError

    def fixed_inputs(self, n: int, seed: int) -> tuple[torch.Tensor, ...]:
        return self.fixed_batch(n, seed).g_inputs

    def unpaired_batch(self, indices: torch.Tensor, noise: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """train.cycle (cycle_domains): as many examples of domain A (the generator's inputs)
        as of domain B, shaped alike, one domain's at `indices` (the epoch sampler's, over
        len(self)) and the other's drawn from `noise`, unrelated to them."""
        raise NotImplementedError

    def reverse_specs(self, cfg) -> tuple[BaseModel, BaseModel]:
        """train.cycle: the B -> A generator's and domain A judge's specs; by default the same
        families and sizes as network_specs'."""
        return self.network_specs(cfg)

    def cost_unit(self) -> tuple[str, float] | None:
        """What costs are quoted per when one sample is not the natural unit: (name, how many
        of them one of fixed_inputs' samples is), e.g. ("second of audio", 2.0)."""
        return None

    def objective_terms(self, cfg) -> tuple[list, list]:
        """The task's own loss terms (kdgan.losses.terms.LossTerm) for the generator's and the
        discriminator's objectives, beside the adversarial ones: e.g. a vocoder's mel L1."""
        return [], []

    def network_specs(self, cfg) -> tuple[BaseModel, BaseModel]:
        """The generator and discriminator specs the config's model section describes for this data."""
        raise NotImplementedError

    def discriminator_view(self, output: Any, noise: torch.Generator) -> torch.Tensor:
        """What the discriminator sees of a generator output. A generator with a discrete
        output (tokens) returns its logits too (kdgan.losses.terms.GeneratorOutput); its task
        declares the relaxation that lets gradients reach them here (e.g. Gumbel-softmax)."""
        return output.sample

    # -- what the run shows -------------------------------------------------------------
    def save_samples(self, path: Path, batch: StepBatch, outputs: list[torch.Tensor], names: list[str]) -> Path:
        """Render the outputs of the fixed batch (a reference's first, e.g. the teacher's)
        to `path` + the task's suffix; returns the file written (a PNG is also shown in
        TensorBoard)."""
        raise NotImplementedError

    def diversity(self, samples: torch.Tensor) -> float | None:
        """How different the fixed inputs' samples are from each other (near 0: mode
        collapse, flagged below guard.collapse_threshold): the mean L1 distance over pairs,
        per element. None where the signal means nothing for the task."""
        from kdgan.train.guards import diversity

        return diversity(samples)

    @classmethod
    def protocol(cls, evaluation: dict) -> str | None:
        """One sentence for `kdgan compare`: how an eval.json entry's numbers were made (None:
        the report's generic sentence)."""
        return None

    @classmethod
    def metric_notes(cls) -> dict[str, str]:
        """What each of the task's metrics means, printed under compare's table."""
        return {}

    @classmethod
    def report_columns(cls, evaluation: dict) -> list[tuple[str, str, str]]:
        """(key, header, format) of `kdgan compare`'s quality columns for an eval.json entry."""
        return [(m, m, "{:.4g}") for m in cls.metric_names if m in evaluation]

    def fidelity_features(self, cfg):
        """samples -> (B, D) features in which the sample grids also measure a student's
        distance to its teacher, or None (the distance in output space remains)."""
        return None

    def comparison_panel(self, names: list[str], batch: StepBatch, outputs: list[torch.Tensor]) -> bytes | None:
        """PNG bytes: several generators' outputs on the same fixed batch (`kdgan compare`);
        None where comparison_text shows them."""
        raise NotImplementedError

    def comparison_text(self, names: list[str], batch: StepBatch, outputs: list[torch.Tensor]
                        ) -> tuple[list[str], list[list[str]]] | None:
        """(headers, rows): several generators' outputs as text, a row per input, shown as a
        table by `kdgan compare` (a translation task's sentences); None for other tasks."""
        return None

    def comparison_media(self, names: list[str], batch: StepBatch, outputs: list[torch.Tensor]
                         ) -> list[tuple[str, str, bytes]]:
        """Files `kdgan compare` puts beside its panel, as (label, file name, bytes): a
        vocoder's WAVs, which the HTML report plays. None for images (the panel shows them)."""
        return []

    # -- evaluation, sampling, export ----------------------------------------------------
    def real_examples(self, n: int) -> torch.Tensor:
        """Up to n real examples, as the generator's samples are shaped (for evaluation)."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, generator: nn.Module, cfg, metrics: list[str], options: dict) -> dict:
        """`kdgan evaluate`'s quality numbers for `generator` (`options`: samples, seed, ...).

        This default scores `options["samples"]` samples of the fixed inputs against the real
        examples with each registered metric `metric(real, fake, seed) -> float`
        (kdgan.registry.METRICS), gives each metric's value for two halves of the real data
        (real_vs_real), and for a distilled run the mean L1 to its teacher's outputs on the
        same inputs (fidelity)."""
        from kdgan.loading import load_gan
        from kdgan.registry import METRICS

        n, seed = options["samples"], options["seed"]
        inputs = self.fixed_inputs(n, seed)
        fake = _generate(generator, inputs)
        real = self.real_examples(n)
        score = lambda a, b: {m: float(METRICS.get(m, "--metrics")(a, b, seed)) for m in metrics}  # noqa: E731
        result = {"fake_samples": len(fake), "real_samples": len(real), "seed": seed, **score(real, fake)}
        half = len(real) // 2
        perm = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))
        result["real_vs_real"] = {**score(real[perm[:half]], real[perm[half: 2 * half]]), "half_samples": half}
        if cfg.distill is not None and cfg.distill.teacher:
            teacher = load_gan(cfg.distill.teacher, cfg.distill.trust_pickle, field="distill.teacher").generator
            theirs = _generate(teacher, inputs)
            result["fidelity"] = {"l1": float((fake - theirs).abs().mean()), "samples": len(fake)}
        return result

    def checkpoint_evaluator(self, cfg):
        """`evaluate(generator, step, reference) -> dict` for log.eval_checkpoints, or None."""
        return None

    @classmethod
    def export_signature(cls, spec: BaseModel, generator: nn.Module):
        """The generator's inputs as exported files take them (kdgan.deploy.Signature); the
        default: a latent code z (spec.latent_dim) and, for spec.num_classes > 0, labels y."""
        from kdgan.deploy import default_signature

        return default_signature(spec, generator)

    @classmethod
    def export(cls, fmt: str, generator: nn.Module, spec: BaseModel, path: Path, info: dict) -> float | None:
        """`kdgan export --format FMT` where one traced graph cannot be the generator (a
        decoder's loop of data-dependent length): write `path` (and any companion files) and
        return the verified max error. None: the registered exporter (kdgan.registry.EXPORTERS)
        writes the generator as one graph."""
        return None

    @classmethod
    def exported_generator(cls, path: Path, fmt: str, spec: BaseModel) -> nn.Module | None:
        """What runs a file `export` wrote (e.g. a decoding loop over its graphs); None: the
        exported graph alone is the generator."""
        return None

    @classmethod
    def onnx_module(cls, generator: nn.Module) -> nn.Module | None:
        """For profiles: the generator exported as `export` writes it (to a temporary folder)
        and run by onnxruntime, where that is not one graph; None: the one-graph export."""
        return None

    @classmethod
    def translate(cls, generator: nn.Module, spec: BaseModel, inputs: Path, out: Path) -> list[Path] | None:
        """`kdgan sample --input`: the generator applied to the user's files (an image, a
        recording); None where the task's generator takes no such input."""
        return None

    @classmethod
    def translate_text(cls, generator: nn.Module, spec: BaseModel, sentences: list[str]) -> list[str]:
        """`kdgan sample --text` (takes_text): the generator's output for each sentence."""
        raise NotImplementedError

    @classmethod
    def sample_files(cls, generator: nn.Module, spec: BaseModel, num: int, seed: int, out: Path) -> list[Path] | None:
        """`kdgan sample -n NUM --seed SEED --out OUT` where the samples need the spec to be
        written (text: decoded with its tokenizer); None: write_samples writes them."""
        return None

    @classmethod
    def write_samples(cls, outputs: torch.Tensor, out: Path, scale: int = 1) -> list[Path]:
        """`kdgan sample`: outputs as files; `out` is a file of the task's kind or a folder."""
        raise NotImplementedError

    @classmethod
    def sample_suffix(cls) -> str:
        """The suffix of the one file `kdgan sample --out` writes all samples into (else a folder)."""
        return ".png"


def _generate(generator: nn.Module, inputs: tuple[torch.Tensor, ...], batch_size: int = 256) -> torch.Tensor:
    """The samples of generator(*inputs), in eval mode and in batches, on the CPU."""
    from kdgan.losses.terms import generator_output

    generator.eval()
    device = next(generator.parameters(), torch.empty(0)).device
    chunks = zip(*(t.split(batch_size) for t in inputs))
    return torch.cat([generator_output(generator(*(t.to(device) for t in c))).sample.float().cpu() for c in chunks])
