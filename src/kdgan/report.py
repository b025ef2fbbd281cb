"""`kdgan compare`: teacher vs students as a table, quality-over-steps plots and sample grids
from the same inputs, written as Markdown and as one self-contained HTML page.

The first run given is the reference (the teacher): ratios are relative to it.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from kdgan.errors import UserError
from kdgan.train.checkpoint import atomic_write_bytes
from kdgan.train.grid import image_grid

COLUMNS = [  # (key, header, format)
    ("fid", "FID", "{:.2f}"),
    ("kid", "KID", "{:.4f}"),
    ("is", "IS", "{:.2f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
]
IMAGE_TASK_COLUMNS = [("psnr", "PSNR dB", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"), ("fid", "patch FID", "{:.2f}"),
                      ("kid", "patch KID", "{:.4f}")]


def is_image_task(runs: list[dict]) -> bool:
    return runs[0]["latest"].get("task", "generation") != "generation"


def load_run(run: Path) -> dict:
    path = run / "eval.json"
    if not path.is_file():
        raise UserError(f"RUN: {run} has no eval.json; run `kdgan evaluate {run}` first")
    entries = json.loads(path.read_text())["evaluations"]
    return {"name": run.name, "path": run, "latest": entries[-1], "history": entries}


def _fmt(value, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def _ort64(profile: dict) -> float | None:
    """Median onnxruntime seconds at batch 64, when the profile has them."""
    ort = profile.get("onnxruntime_latency") or {}
    return ort.get("64", {}).get("median_s")


def table_rows(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    ref = runs[0]["latest"].get("profile", {})
    columns = IMAGE_TASK_COLUMNS if is_image_task(runs) else COLUMNS
    if any("lpips" in r["latest"] for r in runs):  # only when asked for (it needs the lpips weights)
        columns = [*columns[:2], ("lpips", "LPIPS", "{:.4f}"), *columns[2:]]
    headers = ["run", "step", "photos" if is_image_task(runs) else "samples"] + [h for _, h, _ in columns] + [
        "params", "MACs/sample", "MACs ratio", "CPU ms (b=1)", "CPU ms (b=64)", "speed-up (b=64)",
        "ONNX Runtime ms (b=64)", "ORT speed-up (b=64)"]
    gpu = any("gpu" in r["latest"].get("profile", {}) for r in runs)
    if gpu:
        headers += ["GPU ms (b=64)", "GPU speed-up (b=64)"]
    rows = []
    for r in runs:
        e, prof = r["latest"], r["latest"].get("profile", {})
        lat = prof.get("latency", {})
        b1, b64 = lat.get("1", {}).get("median_s"), lat.get("64", {}).get("median_s")
        ref64 = ref.get("latency", {}).get("64", {}).get("median_s")
        count = len(e["photos"]) if "photos" in e else e.get("fake_samples", "-")
        row = [r["name"], str(e["step"]), str(count)]
        for key, _, spec in columns:
            value = _fmt(e.get(key), spec)
            std = e.get(f"{key}_std")
            row.append(value + (f" ± {spec.format(std)}" if std is not None and key in ("kid", "is") else ""))
        row += [
            f"{prof['params']:,}" if "params" in prof else "-",
            f"{prof['macs_per_sample'] / 1e6:.2f}M" if "macs_per_sample" in prof else "-",
            f"{ref['macs_per_sample'] / prof['macs_per_sample']:.1f}x" if "macs_per_sample" in prof and ref else "-",
            _fmt(b1 and b1 * 1e3, "{:.2f}"),
            _fmt(b64 and b64 * 1e3, "{:.2f}"),
            f"{ref64 / b64:.1f}x" if b64 and ref64 else "-",
        ]
        ort, ref_ort = _ort64(prof), _ort64(ref)
        row += [_fmt(ort and ort * 1e3, "{:.2f}"), f"{ref_ort / ort:.1f}x" if ort and ref_ort else "-"]
        if gpu:
            g64, ref_g64 = _gpu64(prof), _gpu64(ref)
            row += [_fmt(g64 and g64 * 1e3, "{:.3f}"), f"{ref_g64 / g64:.1f}x" if g64 and ref_g64 else "-"]
        rows.append(row)
    return headers, rows


def _gpu64(profile: dict) -> float | None:
    """Median GPU seconds at batch 64, when the profile was taken on a machine with a GPU."""
    return profile.get("gpu", {}).get("latency", {}).get("64", {}).get("median_s")


def quality_plot(runs: list[dict]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("psnr", "ssim", "lpips", "fid", "kid") if any(k in e for r in runs for e in r["history"])]
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(5 * max(1, len(keys)), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for r in runs:
            pts = [(e["step"], e[key]) for e in r["history"] if key in e]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=r["name"])
        ax.set_xlabel("training step")
        ax.set_ylabel(key.upper() + (" (higher is better)" if key in ("psnr", "ssim") else " (lower is better)"))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return buf.getvalue()


@torch.no_grad()
def sample_panel(runs: list[dict], n: int, seed: int) -> bytes:
    """Each run's generator on the same inputs, one labelled grid per run, left to right;
    image-to-image runs get the input on the left and the ground truth on the right."""
    from kdgan.config import validate
    from kdgan.distill.teacher import load_teacher
    from kdgan.exported import exported_file, load_exported
    from kdgan.metrics.evaluate import exported_config, resolve_source
    from kdgan.train.build import load_task

    outputs, task, batch = [], None, None
    for r in runs:
        source = r["latest"]["checkpoint"]
        if exported_file(source) is not None:  # an evaluated ONNX / TorchScript file
            exported = load_exported(Path(source))
            train_config, generator = exported_config(exported), exported.generator
        else:
            loadable, train_config, _, _ = resolve_source(source)
            generator = load_teacher(loadable).generator.eval()
        if task is None:  # the first run's task and inputs serve all runs
            task = load_task(validate(train_config))
            batch = task.fixed_batch(n, seed)
        outputs.append(generator(*batch.g_inputs))
    names = [r["name"] for r in runs]
    if is_image_task(runs):
        columns = task.panels(batch, outputs)
        names = ["input", *names, "ground truth"][: len(columns)]
        nrow = 4
    else:
        columns, nrow = outputs, 8
    grids = []
    for name, images in zip(names, columns):
        grid = image_grid(images, nrow=nrow).convert("RGB")
        grid = grid.resize((grid.width * 2, grid.height * 2), Image.NEAREST)
        labelled = Image.new("RGB", (grid.width, grid.height + 18), (255, 255, 255))
        labelled.paste(grid, (0, 18))
        ImageDraw.Draw(labelled).text((4, 3), name, fill=(0, 0, 0))
        grids.append(labelled)
    gap = 10
    out = Image.new("RGB", (sum(g.width for g in grids) + gap * (len(grids) - 1), max(g.height for g in grids)),
                    (255, 255, 255))
    left = 0
    for g in grids:
        out.paste(g, (left, 0))
        left += g.width + gap
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


def write_report(runs_paths: list[Path], out: Path, samples: int = 32, seed: int = 0) -> Path:
    runs = [load_run(p) for p in runs_paths]
    headers, rows = table_rows(runs)
    plot, panel = quality_plot(runs), sample_panel(runs, samples, seed)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "quality.png", plot)
    atomic_write_bytes(out / "samples.png", panel)
    first = runs[0]["latest"]
    if is_image_task(runs):
        protocol = (f"Quality: task {first['task']}, {len(first['photos'])} held-out whole photos "
                    f"({', '.join(p['photo'] for p in first['photos'])}), tiled inference ({first.get('tile')} px); "
                    f"patch FID/KID in features `{first.get('features')}`. Ratios are relative to "
                    f"`{runs[0]['name']}`; latency is the median over repeated CPU runs at the training crop size "
                    f"({first.get('profile', {}).get('threads', '?')} threads).")
    else:
        protocol = (f"Quality: {first.get('fake_samples')} generated vs {first.get('real_samples')} real images, "
                    f"features `{first.get('features')}` (held-out accuracy {first.get('features_test_accuracy')}), "
                    f"sample seed {first.get('seed')}. Ratios are relative to `{runs[0]['name']}`; latency is the "
                    f"median over repeated CPU runs ({first.get('profile', {}).get('threads', '?')} threads).")
    md = ["# kdgan comparison", "", protocol, "",
          "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    md += ["| " + " | ".join(row) + " |" for row in rows]
    md += ["", "## Quality over training", "", "![quality](quality.png)", "",
           "## Samples from the same inputs", "", "![samples](samples.png)", ""]
    atomic_write_bytes(out / "report.md", "\n".join(md).encode())

    def img(data: bytes) -> str:
        return f'<img src="data:image/png;base64,{base64.b64encode(data).decode()}">'

    cells = lambda row, tag: "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in row)  # noqa: E731
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>kdgan comparison</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}</style></head>
<body><h1>kdgan comparison</h1><p>{html.escape(protocol)}</p>
<table><tr>{cells(headers, "th")}</tr>{"".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)}</table>
<h2>Quality over training</h2>{img(plot)}<h2>Samples from the same inputs</h2>{img(panel)}</body></html>"""
    atomic_write_bytes(out / "report.html", page.encode())
    return out
