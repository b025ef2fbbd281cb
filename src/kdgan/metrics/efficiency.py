"""Efficiency profile of a generator: parameters, MACs, real latency, peak memory.

MACs are counted by torch.utils.flop_counter (FLOPs / 2) for one sample. Latency is wall
time per batch after warm-up, median and interquartile range over repeats, in eval mode
under torch.inference_mode: what a deployment would see, not what the MACs promise.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
import weakref

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def macs_per_sample(generator: nn.Module, inputs: tuple[torch.Tensor, ...]) -> float:
    """Multiply-accumulates of one forward pass, divided by the batch size."""
    was = generator.training
    generator.eval()
    with FlopCounterMode(display=False) as counter:
        generator(*inputs)
    generator.train(was)
    return counter.get_total_flops() / 2 / inputs[0].shape[0]


@torch.inference_mode()
def latency(generator: nn.Module, inputs: tuple[torch.Tensor, ...], repeats: int = 30, warmup: int = 5) -> dict:
    """Seconds per batch: median, 25th and 75th percentile over `repeats` timed runs."""
    generator.eval()
    on_accelerator = inputs[0].device.type != "cpu"  # its kernels run asynchronously: wait for them
    for _ in range(warmup):
        generator(*inputs)
    times = []
    for _ in range(repeats):
        if on_accelerator:
            torch.accelerator.synchronize()
        start = time.perf_counter()
        generator(*inputs)
        if on_accelerator:
            torch.accelerator.synchronize()
        times.append(time.perf_counter() - start)
    q = statistics.quantiles(times, n=4)
    return {"median_s": statistics.median(times), "p25_s": q[0], "p75_s": q[2], "repeats": repeats}


@contextlib.contextmanager
def native_stderr_without(prefix: str):
    """Drop the lines starting with `prefix` that C++ code writes to file descriptor 2 (the
    profiler's tracing library prints `USDT: ... profiler_start/stop` at every session);
    every other line is written back."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().splitlines(keepends=True)
                    if not line.startswith(prefix.encode())]
            if kept:
                os.write(2, b"".join(kept))


@torch.inference_mode()
def peak_memory_bytes(generator: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    """Peak bytes allocated by one forward pass beyond the weights and inputs.

    Accelerators (CUDA, ...): the allocator's own peak counter. CPU: replay of the profiler's
    allocation and free events in time order (the CPU allocator keeps no peak counter)."""
    generator.eval()
    if inputs[0].device.type != "cpu":
        torch.accelerator.synchronize()
        torch.accelerator.reset_peak_memory_stats()
        base = torch.accelerator.memory_allocated()
        generator(*inputs)
        torch.accelerator.synchronize()
        return torch.accelerator.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    with native_stderr_without("USDT:"), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        generator(*inputs)
    # An op's own allocations are its self_cpu_memory_usage; frees arrive as "[memory]"
    # events with negative sizes.
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage != 0), key=lambda e: e.time_range.start)
    current = peak = 0
    for e in events:
        current += e.self_cpu_memory_usage
        peak = max(peak, current)
    return int(peak)


def onnxruntime_runner(generator: nn.Module, make_inputs, onnx_module=None):
    """`run(batch_size) -> callable` for the generator exported to ONNX and run by onnxruntime's
    CPU provider with torch's thread count; None when onnx/onnxruntime are not installed.
    `onnx_module(generator)`: a task's own export, as a module running it, or None for the
    one-graph export (Task.onnx_module)."""
    module = onnx_module(generator) if onnx_module is not None else None
    if module is not None:

        def run_module(batch: int):
            inputs = make_inputs(batch)
            return lambda: module(*inputs)

        return run_module
    try:
        import onnxruntime as ort

        from kdgan.deploy import onnx_model
    except ImportError:
        return None
    inputs = make_inputs(2)
    names = [f"input_{i}" for i in range(len(inputs))]
    model = _exported(generator, inputs, names, onnx_model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def run(batch: int):
        feed = {n: t.numpy() for n, t in zip(names, make_inputs(batch))}
        return lambda: session.run(None, feed)

    return run


_EXPORTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _exported(generator: nn.Module, inputs: tuple[torch.Tensor, ...], names: list[str], export):
    """The generator's ONNX ModelProto, exported once while its weights stay the same: a
    benchmark times one network at several thread counts and batch sizes, and each export
    costs seconds. A parameter or buffer changed in place (an optimiser step) or replaced
    changes the key, so a stale graph is never reused."""
    state = tuple((t.data_ptr(), t._version) for t in (*generator.parameters(), *generator.buffers()))
    key = (state, tuple((t.dtype, t.dim(), *t.shape[1:]) for t in inputs), tuple(names))
    kept = _EXPORTS.get(generator)
    if kept is None or kept[0] != key:
        kept = _EXPORTS[generator] = (key, export(generator.eval(), inputs, names))
    return kept[1]


def _timed(call, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def onnxruntime_latency(generator: nn.Module, make_inputs, batch_sizes=(1, 64), repeats: int = 30,
                        warmup: int = 5, onnx_module=None) -> dict | None:
    """Latency of the same generator exported to ONNX and run by onnxruntime: what a deployment
    of the exported file sees (BatchNorm folded, no Python dispatch per op)."""
    run = onnxruntime_runner(generator, make_inputs, onnx_module)
    if run is None:
        return None
    out = {}
    for b in batch_sizes:
        times = _timed(run(b), repeats, warmup)
        q = statistics.quantiles(times, n=4)
        out[str(b)] = {"median_s": statistics.median(times), "p25_s": q[0], "p75_s": q[2], "repeats": repeats}
    return out


def side_by_side_speedup(teacher: nn.Module, student: nn.Module, make_inputs, batch: int = 64, rounds: int = 9,
                         repeats: int = 10, onnx: bool = True, pause_s: float = 0.1, onnx_module=None) -> dict:
    """Teacher time / student time at one batch size on CPU, in PyTorch eager and (with `onnx`)
    in onnxruntime, measured alternately: each round times both models back to back, so machine
    drift hits them alike, and the speed-up is the median of the per-round ratios (with the
    smallest and largest round). Timing each model in its own block, minutes apart, on a shared
    machine moved the ratio by a third between runs. A pause after each block lets the
    runtime's worker threads stop spinning: onnxruntime's, still busy-waiting after the
    teacher's block, slowed the student's next block by up to 2.5x. `onnx_module`: as for
    onnxruntime_runner."""
    inputs = make_inputs(batch)
    with torch.inference_mode():
        calls = {"pytorch": (lambda: teacher.eval()(*inputs), lambda: student.eval()(*inputs))}
        if onnx:
            t_run = onnxruntime_runner(teacher, make_inputs, onnx_module)
            s_run = onnxruntime_runner(student, make_inputs, onnx_module)
            if t_run is not None and s_run is not None:
                calls["onnxruntime"] = (t_run(batch), s_run(batch))
        out = {}
        for runtime, (t_call, s_call) in calls.items():
            ratios, t_medians, s_medians = [], [], []
            for _ in range(rounds):
                t_medians.append(statistics.median(_timed(t_call, repeats, warmup=2)))
                time.sleep(pause_s)
                s_medians.append(statistics.median(_timed(s_call, repeats, warmup=2)))
                time.sleep(pause_s)
                ratios.append(t_medians[-1] / s_medians[-1])
            out[runtime] = {"speedup": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
                            "rounds": rounds, "batch": batch, "teacher_median_s": statistics.median(t_medians),
                            "student_median_s": statistics.median(s_medians)}
    return out


def profile_generator(generator: nn.Module, make_inputs, batch_sizes=(1, 64), repeats: int = 30,
                      device: torch.device = torch.device("cpu"), onnx: bool = True, onnx_module=None) -> dict:
    """`make_inputs(n)` -> the generator's inputs for a batch of n (on CPU). With `onnx`, also
    the latency of the exported ONNX file under onnxruntime (CPU), when it is installed. A CPU
    profile also gets the latency and peak memory on this machine's accelerator (`gpu`: CUDA,
    ...) when it has one."""
    generator = generator.to(device).eval()
    one = tuple(t.to(device) for t in make_inputs(1))
    out = {"params": count_params(generator), "macs_per_sample": macs_per_sample(generator, one),
           "device": str(device), "threads": torch.get_num_threads(), "latency": {}, "peak_memory_bytes": {}}
    for b in batch_sizes:
        inputs = tuple(t.to(device) for t in make_inputs(b))
        out["latency"][str(b)] = latency(generator, inputs, repeats)
        out["peak_memory_bytes"][str(b)] = peak_memory_bytes(generator, inputs)
    if onnx and device.type == "cpu":
        try:
            out["onnxruntime_latency"] = onnxruntime_latency(generator, make_inputs, batch_sizes, repeats,
                                                             onnx_module=onnx_module)
        except Exception as err:  # an op without an ONNX mapping: report it, keep the PyTorch numbers
            out["onnxruntime_latency"] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
    accelerator = torch.accelerator.current_accelerator(check_available=True)
    if device.type == "cpu" and accelerator is not None:
        gpu = profile_generator(generator, make_inputs, batch_sizes, repeats, accelerator, onnx=False)
        out["gpu"] = {"device": str(accelerator), "latency": gpu["latency"],
                      "peak_memory_bytes": gpu["peak_memory_bytes"]}
        generator.to(device)
    return out


def exported_profile(exported, make_inputs, batch_sizes=(1, 64), repeats: int = 30) -> dict:
    """Latency of an exported file as its runtime runs it (kdgan.exported.Exported): ONNX
    files under onnxruntime's CPU provider, TorchScript under torch. Parameters and MACs are
    the PyTorch generator's: profile the run it came from for those."""
    key = "onnxruntime_latency" if exported.format == "onnx" else "latency"
    return {"device": "cpu", "threads": torch.get_num_threads(), "exported": exported.format,
            key: {str(b): latency(exported.generator, make_inputs(b), repeats) for b in batch_sizes}}
