"""ONNX export of a text-transformer (#19): two graphs and the greedy loop that drives them.

A translation is a loop of data-dependent length, which an exported graph of fixed operators
does not express, so the export is the two pieces every step needs, as deployed decoders
split it (FasterTransformer, ONNX Runtime's generation examples):

    PATH.encoder.onnx   src (B, S) -> memory_k, memory_v (L, B, H, S, d), memory_mask (B, 1, 1, S):
                        the source encoded once, with each decoder layer's cross-attention keys
                        and values of it computed once
    PATH                token (B, 1), position (1,), memory_k, memory_v, memory_mask, cache_k,
                        cache_v (L, B, H, max_len, d) -> log-probabilities (B, vocab) of the
                        next token and the caches with this position's keys and values written:
                        one decoder step; the caches have a fixed size, positions after
                        `position` masked, so every shape but batch and source length is static

OnnxTranslator runs greedy decoding over the two onnxruntime sessions and returns what
TextTransformer(src) returns, so `kdgan sample` and `kdgan evaluate` take the exported file
like the run. The export is verified step by step: the decoder graph is fed the tokens
PyTorch's cached greedy decoding chose, and its log-probabilities must match PyTorch's.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kdgan.tasks.text.tokenizer import BOS, EOS, PAD
from kdgan.tasks.text.transformer import TextTransformer

TOLERANCE = 1e-3  # log-probabilities; fp32 over a vocabulary of thousands


def encoder_path(path: Path) -> Path:
    return path.with_name(path.stem + ".encoder.onnx")


class EncoderGraph(nn.Module):
    def __init__(self, model: TextTransformer):
        super().__init__()
        self.model = model

    def forward(self, src: torch.Tensor):
        memory, mask = self.model.encode(src)
        keys, values = zip(*(block.cross_attn.keys_values(memory) for block in self.model.decoder))
        return torch.stack(keys), torch.stack(values), mask


def decoder_step(m, token, position, cache_k, cache_v, memory: tuple | None = None):
    """One cached decoder step as a graph: the fixed-size caches with this position's keys and
    values written, later positions masked; with `memory` (keys, values, mask per layer) the
    encoder-decoder's cross-attention too."""
    x = m.embed(token) * math.sqrt(m.spec.width) + m.codes.index_select(0, position)[None]
    visible = (torch.arange(m.spec.max_len, device=token.device) <= position).view(1, 1, 1, -1)  # the prefix so far
    new_k, new_v = [], []
    for i, block in enumerate(m.decoder):
        h = block.norm1(x)
        k, v = block.attn.keys_values(h)
        k, v = cache_k[i].index_copy(2, position, k), cache_v[i].index_copy(2, position, v)
        new_k.append(k)
        new_v.append(v)
        x = x + block.attn(h, k, v, mask=visible)
        if memory is not None:
            x = x + block.cross_attn(block.norm_cross(x), memory[0][i], memory[1][i], mask=memory[2])
        x = x + block.ffn(block.norm2(x))
    return m.project(x)[:, -1].log_softmax(-1), torch.stack(new_k), torch.stack(new_v)


class DecoderStepGraph(nn.Module):
    def __init__(self, model: TextTransformer):
        super().__init__()
        self.model = model

    def forward(self, token, position, memory_k, memory_v, memory_mask, cache_k, cache_v):
        return decoder_step(self.model, token, position, cache_k, cache_v, (memory_k, memory_v, memory_mask))


class LanguageModelStepGraph(nn.Module):
    """The decoder-only model's step (task lm): no source, no cross-attention."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, token, position, cache_k, cache_v):
        return decoder_step(self.model, token, position, cache_k, cache_v)


def cache_shape(spec, batch: int) -> tuple[int, ...]:
    layers = getattr(spec, "decoder_layers", None) or spec.layers  # encoder-decoder / decoder-only
    return layers, batch, spec.heads, spec.max_len, spec.width // spec.heads


def _onnx(module: nn.Module, inputs: tuple, names: list[str], outputs: list[str], dynamic: tuple):
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.onnx.export(module.eval(), inputs, dynamo=True, input_names=names, output_names=outputs,
                                 dynamic_shapes=dynamic, verbose=False).model_proto


def in_onnx_runtime(generator: nn.Module, export, runner) -> nn.Module:
    """The generator exported by `export(generator, path, metadata)` into a temporary folder
    and run by `runner(path, spec)` (OnnxTranslator, OnnxSampler): its sessions keep the
    graphs once the folder is gone."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generator.onnx"
        export(generator, path, {})
        return runner(path, generator.spec)


def export_graphs(model: TextTransformer, path: Path, metadata: dict[str, str]) -> None:
    """PATH (the decoder step, with kdgan's metadata) and PATH.encoder.onnx."""
    import onnx

    model = model.eval()
    spec = model.spec
    batch, length = torch.export.Dim("batch", min=1), torch.export.Dim("source", min=2, max=spec.max_len)
    src = torch.randint(4, spec.vocab, (2, 5))
    with torch.no_grad():
        memory_k, memory_v, memory_mask = EncoderGraph(model)(src)
    encoder = _onnx(EncoderGraph(model), (src,), ["src"], ["memory_k", "memory_v", "memory_mask"],
                    ({0: batch, 1: length},))
    cache = torch.zeros(cache_shape(spec, 2))
    step_inputs = (torch.full((2, 1), BOS), torch.tensor([0]), memory_k, memory_v, memory_mask, cache, cache.clone())
    memory_axes = {1: batch, 3: length}
    step = _onnx(DecoderStepGraph(model), step_inputs,
                 ["token", "position", "memory_k", "memory_v", "memory_mask", "cache_k", "cache_v"],
                 ["log_probs", "next_cache_k", "next_cache_v"],
                 ({0: batch}, None, memory_axes, memory_axes, {0: batch, 3: length}, {1: batch}, {1: batch}))
    onnx.helper.set_model_props(step, metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(encoder, str(encoder_path(path)))
    onnx.save(step, str(path))


class OnnxTranslator(nn.Module):
    """Greedy decoding over the exported graphs: forward(src) -> (B, max_len) ids, BOS first,
    padded after EOS, as TextTransformer(src)."""

    def __init__(self, path: Path, spec):
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
        self.encoder = ort.InferenceSession(str(encoder_path(path)), options, providers=["CPUExecutionProvider"])
        self.step = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.spec = spec

    def run_step(self, token: np.ndarray, t: int, memory: tuple, cache: tuple) -> tuple:
        feed = {"token": token, "position": np.array([t], dtype=np.int64), "memory_k": memory[0],
                "memory_v": memory[1], "memory_mask": memory[2], "cache_k": cache[0], "cache_v": cache[1]}
        log_probs, k, v = self.step.run(None, feed)
        return log_probs, (k, v)

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        src = src.cpu().numpy().astype(np.int64)
        memory = tuple(self.encoder.run(None, {"src": src}))
        n, length = len(src), self.spec.max_len
        cache = tuple(np.zeros(cache_shape(self.spec, n), dtype=np.float32) for _ in range(2))
        out = np.full((n, length), PAD, dtype=np.int64)
        out[:, 0] = BOS
        done = np.zeros(n, dtype=bool)
        for t in range(length - 1):
            log_probs, cache = self.run_step(out[:, t: t + 1], t, memory, cache)
            nxt = np.where(done, PAD, log_probs.argmax(-1))
            out[:, t + 1] = nxt
            done |= nxt == EOS
            if done.all():
                break
        return torch.from_numpy(out)


@torch.no_grad()
def verify(model: TextTransformer, path: Path) -> float:
    """Max |log-probability difference| between the exported step and PyTorch's cached step
    along PyTorch's own greedy decoding, for random sources at batch 1 and 7 (not the traced
    2); the exported greedy decoding must also choose the same tokens."""
    model, translator = model.eval(), OnnxTranslator(path, model.spec)
    worst = 0.0
    for n, seed in ((1, 11), (7, 12)):
        gen = torch.Generator().manual_seed(seed)
        src = torch.randint(4, model.spec.vocab, (n, 9), generator=gen)
        src[-1, 6:] = PAD  # a shorter source in the batch
        want = model(src)
        memory, memory_mask = model.encode(src)
        caches = [{} for _ in model.decoder]
        exported = tuple(translator.encoder.run(None, {"src": src.numpy()}))
        cache = tuple(np.zeros(cache_shape(model.spec, n), dtype=np.float32) for _ in range(2))
        steps = int((want != PAD).sum(1).max()) - 1
        for t in range(steps):
            theirs = model.step(want[:, t: t + 1], t, memory, memory_mask, caches)
            ours, cache = translator.run_step(want[:, t: t + 1].numpy(), t, exported, cache)
            finite = torch.isfinite(theirs)
            worst = max(worst, float((torch.from_numpy(ours)[finite] - theirs[finite]).abs().max()))
        got = translator(src)
        if not torch.equal(got, want):
            raise RuntimeError("onnx export: greedy decoding through the exported graphs chose other tokens than "
                               "PyTorch")
    if worst > TOLERANCE:
        raise RuntimeError(f"onnx export differs from PyTorch by {worst:.3g} in log-probability (tolerance {TOLERANCE})")
    return worst


def export_language_model(model: nn.Module, path: Path, metadata: dict[str, str]) -> None:
    """PATH: the decoder-only model's cached step (task lm), with kdgan's metadata."""
    import onnx

    model = model.eval()
    cache = torch.zeros(cache_shape(model.spec, 2))
    batch = torch.export.Dim("batch", min=1)
    step = _onnx(LanguageModelStepGraph(model), (torch.full((2, 1), BOS), torch.tensor([0]), cache, cache.clone()),
                 ["token", "position", "cache_k", "cache_v"], ["log_probs", "next_cache_k", "next_cache_v"],
                 ({0: batch}, None, {1: batch}, {1: batch}))
    onnx.helper.set_model_props(step, metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(step, str(path))


class OnnxSampler(nn.Module):
    """Sampling from latent codes over the exported step: forward(z) -> (B, max_len) ids, as
    TextDecoder(z) (the same inverse-CDF rule at the spec's temperature, done in torch on the
    graph's log-probabilities)."""

    def __init__(self, path: Path, spec):
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
        self.step = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.spec = spec

    def run_step(self, token: np.ndarray, t: int, cache: tuple) -> tuple:
        feed = {"token": token, "position": np.array([t], dtype=np.int64), "cache_k": cache[0], "cache_v": cache[1]}
        log_probs, k, v = self.step.run(None, feed)
        return log_probs, (k, v)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        from kdgan.tasks.text.decoder import inverse_cdf

        z = z.cpu()
        n, length = z.shape[0], self.spec.max_len
        cache = tuple(np.zeros(cache_shape(self.spec, n), dtype=np.float32) for _ in range(2))
        out = torch.full((n, length), PAD, dtype=torch.long)
        out[:, 0] = BOS
        done = torch.zeros(n, dtype=torch.bool)
        for t in range(length - 1):
            log_probs, cache = self.run_step(out[:, t: t + 1].numpy(), t, cache)
            nxt = inverse_cdf(torch.from_numpy(log_probs), z[:, t: t + 1], self.spec.temperature)
            out[:, t + 1] = torch.where(done, torch.full_like(nxt, PAD), nxt)
            done |= out[:, t + 1] == EOS
            if bool(done.all()):
                break
        return out


@torch.no_grad()
def verify_language_model(model: nn.Module, path: Path) -> float:
    """Max |log-probability difference| between the exported step and PyTorch's cached step
    along PyTorch's own samples for random codes at batch 1 and 7; sampling through the
    exported step must also choose the same tokens."""
    model, sampler = model.eval(), OnnxSampler(path, model.spec)
    worst = 0.0
    for n, seed in ((1, 11), (7, 12)):
        z = torch.rand(n, model.spec.max_len, generator=torch.Generator().manual_seed(seed))
        want = model(z)
        caches = [{} for _ in model.decoder]
        cache = tuple(np.zeros(cache_shape(model.spec, n), dtype=np.float32) for _ in range(2))
        for t in range(int((want != PAD).sum(1).max()) - 1):
            theirs = model.step(want[:, t: t + 1], t, None, None, caches)
            ours, cache = sampler.run_step(want[:, t: t + 1].numpy(), t, cache)
            finite = torch.isfinite(theirs)
            worst = max(worst, float((torch.from_numpy(ours)[finite] - theirs[finite]).abs().max()))
        if not torch.equal(sampler(z), want):
            raise RuntimeError("onnx export: sampling through the exported step chose other tokens than PyTorch")
    if worst > TOLERANCE:
        raise RuntimeError(f"onnx export differs from PyTorch by {worst:.3g} in log-probability (tolerance {TOLERANCE})")
    return worst
