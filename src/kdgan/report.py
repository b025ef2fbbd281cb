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

from kdgan.errors import UserError
from kdgan.registry import METRICS, TASKS
from kdgan.train.checkpoint import atomic_write_bytes

COLUMNS = [  # (key, header, format)
    ("fid", "FID", "{:.2f}"),
    ("kid", "KID", "{:.2f}"),
    ("is", "IS", "{:.2f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("c2st", "C2ST accuracy", "{:.3f}"),
]
IMAGE_TASK_COLUMNS = [("psnr", "PSNR dB", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"), ("fid", "patch FID", "{:.2f}"),
                      ("kid", "patch KID", "{:.2f}")]
# unpaired glyph styles: translated held-out A against held-out B, and the character kept
GLYPH_STYLE_COLUMNS = [("fid", "FID", "{:.2f}"), ("kid", "KID", "{:.2f}"),
                       ("char_accuracy", "character accuracy", "{:.3f}")]
LOWER_IS_BETTER = ("fid", "kid", "lpips")

# What each number means, printed under the table: a reader should not need the docs.
METRIC_NOTES = {
    "fid": "FID: Fréchet distance between Gaussians fitted to real and generated features (0 = same "
           "statistics; it is biased upwards at small sample sizes, so compare runs at equal sample counts).",
    "kid": "KID: unbiased squared MMD with a cubic polynomial kernel, in the extractor's squared feature "
           "units (not multiplied by 1000), mean ± std over 100 subsets; its size depends on the feature space, "
           "so read it against the real-vs-real row.",
    "is": "IS: exp of the mean KL between the extractor's class posterior per sample and its average (high: "
          "confident and varied classes; at most the number of classes).",
    "precision": "Precision / recall (Kynkäänniemi et al.): the share of generated samples inside the union of "
                 "the real features' 3-nearest-neighbour balls, and the share of real ones inside the generated "
                 "balls. A classifier's features pack each class tightly, so those balls are small: low "
                 "precision with high recall means the samples cover the data but few land where a real image "
                 "does in that feature space.",
    "c2st": "C2ST accuracy [95% interval]: a small CNN trained on half of the real and generated samples to tell "
            "them apart, scored on the other half (Lopez-Paz & Oquab); 0.5 = indistinguishable, 1 = every sample "
            "gives itself away. It needs no feature network, so it reads the same on any data.",
}


def is_image_task(runs: list[dict]) -> bool:
    """Image-to-image evaluations score held-out photos, not generated samples."""
    return "photos" in runs[0]["latest"]


def task_of(runs: list[dict]):
    """The registered task class of the first (reference) run's evaluation."""
    return TASKS.get(runs[0]["latest"].get("task", "generation"), "task")


def fidelity_columns(runs: list[dict], columns: list[tuple]) -> list[tuple[str, str, str]]:
    """The fidelity-to-teacher columns: the task's own metrics where the task scores the
    student against the teacher's output with them (a vocoder's), else output L1 and FID."""
    entries = [r["latest"]["fidelity"] for r in runs if "fidelity" in r["latest"]]
    if not entries:
        return []
    if any(f.get("reference") == "teacher" for f in entries):
        return [(key, f"{header} to teacher", spec) for key, header, spec in columns
                if any(key in f for f in entries)]
    return [("l1", "L1 to teacher", "{:.4f}"), ("fid", "FID to teacher", "{:.2f}")]


def columns_of(runs: list[dict]) -> list[tuple[str, str, str]]:
    """(key, header, format) of the quality columns: the task's."""
    return task_of(runs).report_columns(runs[0]["latest"])


def load_run(run: Path) -> dict:
    path = run / "eval.json"
    if not path.is_file():
        raise UserError(f"RUN: {run} has no eval.json; run `kdgan evaluate {run}` first")
    entries = json.loads(path.read_text())["evaluations"]
    events = run / "events.jsonl"  # a distillation run's distance to its teacher at each sample grid
    fidelity = [e for e in map(json.loads, events.read_text().splitlines()) if "teacher_l1" in e] \
        if events.is_file() else []
    return {"name": run.name, "path": run, "latest": entries[-1], "history": entries, "fidelity": fidelity}


def _fmt(value, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def _ort64(profile: dict) -> float | None:
    """Median onnxruntime seconds at batch 64, when the profile has them."""
    ort = profile.get("onnxruntime_latency") or {}
    return ort.get("64", {}).get("median_s")


def table_rows(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    ref = runs[0]["latest"].get("profile", {})
    columns = columns_of(runs)
    if any("lpips" in r["latest"] for r in runs):  # only when asked for (it needs the lpips weights)
        columns = [*columns[:2], ("lpips", "LPIPS", "{:.4f}"), *columns[2:]]
    unit = ref.get("cost_unit")  # e.g. a vocoder's MACs per second of audio, not per clip
    per = unit["per_sample"] if unit else 1.0
    headers = ["run", "step", "photos" if is_image_task(runs) else "samples"] + [h for _, h, _ in columns] + [
        "params", f"MACs per {unit['name']}" if unit else "MACs/sample", "MACs ratio", "CPU ms (b=1)", "CPU ms (b=64)", "speed-up (b=64)",
        "ONNX Runtime ms (b=64)", "ORT speed-up (b=64)"]
    fidelity = fidelity_columns(runs, columns)
    headers += [h for _, h, _ in fidelity]
    gpu = any("gpu" in r["latest"].get("profile", {}) for r in runs)
    if gpu:
        headers += ["GPU ms (b=64)", "GPU speed-up (b=64)"]
    rows = []
    for r in runs:
        e, prof = r["latest"], r["latest"].get("profile", {})
        lat = prof.get("latency", {})
        b1, b64 = lat.get("1", {}).get("median_s"), lat.get("64", {}).get("median_s")
        ref64 = ref.get("latency", {}).get("64", {}).get("median_s")
        count = len(e["photos"]) if "photos" in e else e.get("fake_samples", e.get("clips", "-"))
        row = [r["name"], str(e["step"]), str(count)]
        for key, _, spec in columns:
            value = _fmt(e.get(key), spec)
            std = e.get(f"{key}_std")
            ci = e.get(f"{key}_ci95")
            row.append(value + (f" ± {spec.format(std)}" if std is not None and key in ("kid", "is") else "")
                       + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
        row += [
            f"{prof['params']:,}" if "params" in prof else "-",
            f"{prof['macs_per_sample'] / per / 1e6:.2f}M" if "macs_per_sample" in prof else "-",
            f"{ref['macs_per_sample'] / prof['macs_per_sample']:.1f}x" if "macs_per_sample" in prof and ref else "-",
            _fmt(b1 and b1 * 1e3, "{:.2f}"),
            _fmt(b64 and b64 * 1e3, "{:.2f}"),
            f"{ref64 / b64:.1f}x" if b64 and ref64 else "-",
        ]
        ort, ref_ort = _ort64(prof), _ort64(ref)
        row += [_fmt(ort and ort * 1e3, "{:.2f}"), f"{ref_ort / ort:.1f}x" if ort and ref_ort else "-"]
        row += [_fmt(e.get("fidelity", {}).get(key), spec) for key, _, spec in fidelity]
        if gpu:
            g64, ref_g64 = _gpu64(prof), _gpu64(ref)
            row += [_fmt(g64 and g64 * 1e3, "{:.3f}"), f"{ref_g64 / g64:.1f}x" if g64 and ref_g64 else "-"]
        rows.append(row)
    reference = runs[0]["latest"].get("real_vs_real")
    if reference:
        row = [f"real vs real (two halves of {reference['half_samples']:,})", "", str(reference["half_samples"])]
        for key, _, spec in columns:
            ci = reference.get(f"{key}_ci95")
            row.append(_fmt(reference.get(key), spec) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
        rows.append(row + [""] * (len(headers) - len(row)))
    for name, values in runs[0]["latest"].get("baselines", {}).items():  # e.g. a vocoder's Griffin-Lim
        row = [name, "", str(values.get("clips", ""))] + [_fmt(values.get(key), spec) for key, _, spec in columns]
        rows.append(row + [""] * (len(headers) - len(row)))
    return headers, rows


def _gpu64(profile: dict) -> float | None:
    """Median GPU seconds at batch 64, when the profile was taken on a machine with a GPU."""
    return profile.get("gpu", {}).get("latency", {}).get("64", {}).get("median_s")


def quality_plot(runs: list[dict]) -> bytes | None:
    """Quality over training steps, one panel per metric, for runs with at least 3 evaluated
    checkpoints (two points make any difference look like a trend); error bars where the
    metric has a spread; the other runs' latest values (a teacher's) as dotted lines and the
    real-vs-real value as a dashed one. None when no run has 3."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [r for r in runs if len(r["history"]) >= 3]
    keys = [k for k in ("psnr", "ssim", "lpips", "fid", "kid") if any(k in e for r in curves for e in r["history"])]
    followers = [r for r in runs if len(r["fidelity"]) >= 3]
    teacher_fid = [r for r in runs if sum("fidelity" in e for e in r["history"]) >= 3]  # eval_checkpoints
    if not keys and not followers and not teacher_fid:
        return None
    panels = len(keys) + bool(followers) + bool(teacher_fid)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.5), squeeze=False)
    if teacher_fid:  # the student's FID to its teacher's samples at each evaluated checkpoint
        ax = axes[0][len(keys)]
        for r in teacher_fid:
            points = [(e["step"], e["fidelity"]["fid"]) for e in r["history"] if "fidelity" in e]
            ax.plot(*zip(*points), marker="o", label=r["name"])
        ax.set_xlabel("training step")
        ax.set_ylabel("FID to the teacher's samples (lower: closer)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if followers:  # the student's distance to its teacher at each sample grid (events.jsonl)
        ax = axes[0][-1]
        for r in followers:
            ax.plot([e["step"] for e in r["fidelity"]], [e["teacher_l1"] for e in r["fidelity"]], marker="o",
                    label=r["name"])
        ax.set_xlabel("training step")
        ax.set_ylabel("L1 to the teacher (lower: closer)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax, key in zip(axes[0], keys):
        for r in curves:
            pts = [(e["step"], e[key], e.get(f"{key}_std") or 0.0) for e in r["history"] if key in e]
            if pts:
                steps, values, spread = zip(*pts)
                ax.errorbar(steps, values, yerr=spread if any(spread) else None, marker="o", capsize=3,
                            label=r["name"])
        for r in runs:  # runs without a curve (a teacher evaluated once): their latest value as a line
            if r not in curves and key in r["latest"]:
                ax.axhline(r["latest"][key], linestyle=":", color="black",
                           label=f"{r['name']} (step {r['latest']['step']})")
        reference = runs[0]["latest"].get("real_vs_real", {}).get(key)
        if reference is not None:
            ax.axhline(reference, color="grey", linestyle="--", label="real vs real")
        ax.set_xlabel("training step")
        ax.set_ylabel(key.upper() + (" (lower is better)" if key in LOWER_IS_BETTER else " (higher is better)"))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return buf.getvalue()


@torch.no_grad()
def sample_panel(runs: list[dict], n: int, seed: int) -> tuple[bytes | None, list[tuple[str, str, bytes]], tuple | None]:
    """Each run's generator on the same inputs, as the task renders a comparison (images:
    one labelled grid per run, left to right, image-to-image runs with input and ground truth;
    None for a task shown as text), the task's media files of the same outputs (a vocoder's
    WAVs: (label, file name, bytes)) and its text table ((headers, rows), or None)."""
    from kdgan.config import validate
    from kdgan.loading import load_gan
    from kdgan.exported import exported_file, load_exported
    from kdgan.losses.terms import generator_output
    from kdgan.metrics.evaluate import exported_config, resolve_source
    from kdgan.tasks import build_task

    outputs, task, batch = [], None, None
    for r in runs:
        source = r["latest"]["checkpoint"]
        beside = Path(r["path"]) / "checkpoints" / Path(source).name
        if not Path(source).exists() and beside.is_file():  # recorded relative to another working folder
            source = str(beside)
        if exported_file(source) is not None:  # an evaluated ONNX / TorchScript file
            exported = load_exported(Path(source))
            train_config, generator = exported_config(exported), exported.generator
        else:
            loadable, train_config, _, _ = resolve_source(source)
            generator = load_gan(loadable).generator.eval()
        if task is None:  # the first run's task and inputs serve all runs
            task = build_task(validate(train_config))
            batch = task.fixed_batch(n, seed)
        outputs.append(generator_output(generator(*batch.g_inputs)).sample)
    names = [r["name"] for r in runs]
    return (task.comparison_panel(names, batch, outputs), task.comparison_media(names, batch, outputs),
            task.comparison_text(names, batch, outputs))


def protocol_text(runs: list[dict]) -> str:
    first, ref = runs[0]["latest"], runs[0]["name"]
    threads = first.get("profile", {}).get("threads")
    latency = (f"; latency is the median over repeated CPU runs{' at the training crop size' if is_image_task(runs) else ''} "
               f"({threads} threads)" if threads else " (no efficiency profile: evaluated with --no-profile)")
    described = task_of(runs).protocol(first)
    if described:  # the task says how its numbers were made
        return f"{described} Ratios are relative to `{ref}`{latency}."
    if "features" not in first and not is_image_task(runs):  # a task scored by its own metrics
        return (f"Quality: task {first.get('task')}, {first.get('fake_samples')} generated vs "
                f"{first.get('real_samples')} real examples, sample seed {first.get('seed')}. Ratios are relative "
                f"to `{ref}`{latency}.")
    if is_image_task(runs):
        return (f"Quality: task {first['task']}, {len(first['photos'])} held-out whole photos "
                f"({', '.join(p['photo'] for p in first['photos'])}), tiled inference ({first.get('tile')} px); "
                f"patch FID/KID in features `{first.get('features')}`. Ratios are relative to `{ref}`{latency}.")
    accuracy = first.get("features_test_accuracy")
    accuracy = f" (held-out classification accuracy {accuracy:.3f})" if accuracy is not None else ""
    return (f"Quality: {first.get('fake_samples')} generated vs {first.get('real_samples')} real images in the "
            f"features of `{first.get('features')}`{accuracy}, sample seed {first.get('seed')}. Ratios are relative "
            f"to `{ref}`{latency}.")


def notes_text(runs: list[dict], plotted: bool) -> list[str]:
    """One paragraph per metric in the table, plus what the plot shows (or why it is absent)."""
    present = {k for r in runs for k in r["latest"]} | ({"precision"} if any("recall" in r["latest"] for r in runs) else set())
    notes = [text for key, text in {**METRIC_NOTES, **task_of(runs).metric_notes()}.items() if key in present]
    for name, metric in METRICS.entries().items():  # a task package's metrics explain themselves
        if name in present and metric.__doc__:
            notes.append(f"{name}: {' '.join(metric.__doc__.split())}")
    if any("real_vs_real" in r["latest"] for r in runs):
        notes.append("The real-vs-real row scores two random halves of the real data against each other: the value "
                     "each metric gives two samples of the same distribution, at half the data's size.")
    for r in runs:
        if r["latest"].get("features_warning"):
            notes.append(f"Warning, {r['name']}: {r['latest']['features_warning']}.")
    if any(r["latest"].get("fidelity", {}).get("reference") == "teacher" for r in runs):
        notes.append("Fidelity: the student's output scored with the metrics above against its own teacher's output "
                     "on the same inputs, instead of against the data (\"to teacher\" columns).")
    elif any("fidelity" in r["latest"] for r in runs):
        notes.append("Fidelity: the student against its own teacher on the same inputs: the mean L1 between their "
                     "outputs (in [-1, 1] units) and the FID between their sample sets. A distilled student should "
                     "be closer to its teacher than to the data; the plot shows the L1 at each sample grid of "
                     "training (events.jsonl).")
    if not plotted:
        notes.append("No quality-over-training plot: it needs at least 3 evaluated checkpoints of a run (evaluate "
                     "more checkpoints, or train with `log.eval_checkpoints: true`).")
    return notes


def _html_text(text: str) -> str:
    """Escaped text with Markdown's `code` spans as <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def write_report(runs_paths: list[Path], out: Path, samples: int = 32, seed: int = 0) -> Path:
    runs = [load_run(p) for p in runs_paths]
    headers, rows = table_rows(runs)
    plot, (panel, media, text) = quality_plot(runs), sample_panel(runs, samples, seed)
    out.mkdir(parents=True, exist_ok=True)
    if plot is not None:
        atomic_write_bytes(out / "quality.png", plot)
    else:
        (out / "quality.png").unlink(missing_ok=True)  # a stale curve from an earlier report would mislead
    if panel is not None:
        atomic_write_bytes(out / "samples.png", panel)
    for _, name, data in media:  # beside the report, so that report.md can link them
        atomic_write_bytes(out / name, data)
    protocol, notes = protocol_text(runs), notes_text(runs, plot is not None)
    md = ["# kdgan comparison", "", protocol, "",
          "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    md += ["| " + " | ".join(row) + " |" for row in rows]
    md += [""] + [line for note in notes for line in (note, "")]
    if plot is not None:
        md += ["## Quality over training", "", "![quality](quality.png)", ""]
    md += ["## Samples from the same inputs", ""]
    if panel is not None:
        md += ["![samples](samples.png)", ""]
    if text is not None:
        clean = lambda c: c.replace("|", "\\|")  # noqa: E731
        md += ["| " + " | ".join(text[0]) + " |", "|" + "---|" * len(text[0])]
        md += ["| " + " | ".join(clean(c) for c in row) + " |" for row in text[1]] + [""]
    if media:
        md += ["## Listen", ""] + [f"- [{label}]({name})" for label, name, _ in media] + [""]
    atomic_write_bytes(out / "report.md", "\n".join(md).encode())

    def img(data: bytes) -> str:
        return f'<img src="data:image/png;base64,{base64.b64encode(data).decode()}">'

    def players(items: list[tuple[str, str, bytes]]) -> str:
        """An audio player per clip, the WAV inside the page (it plays from the file alone)."""
        if not items:
            return ""
        rows = "".join(f'<tr><td>{html.escape(label)}</td><td><audio controls preload="metadata" '
                       f'src="data:audio/wav;base64,{base64.b64encode(data).decode()}"></audio></td></tr>'
                       for label, _, data in items)
        return f"<h2>Listen</h2><table>{rows}</table>"

    cells = lambda row, tag: "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in row)  # noqa: E731

    def sentences(table) -> str:
        """A text task's outputs, a row per input, left-aligned."""
        if table is None:
            return ""
        body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in table[1])
        return f'<table class="text"><tr>{cells(table[0], "th")}</tr>{body}</table>'

    curve = f"<h2>Quality over training</h2>{img(plot)}" if plot is not None else ""
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>kdgan comparison</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:90em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}
p.note{{color:#444;font-size:0.9em}}table.text td,table.text th{{text-align:left;vertical-align:top}}</style></head>
<body><h1>kdgan comparison</h1><p>{_html_text(protocol)}</p>
<table><tr>{cells(headers, "th")}</tr>{"".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)}</table>
{"".join(f'<p class="note">{_html_text(n)}</p>' for n in notes)}
{curve}<h2>Samples from the same inputs</h2>{img(panel) if panel is not None else ""}{sentences(text)}{players(media)}
</body></html>"""
    atomic_write_bytes(out / "report.html", page.encode())
    return out
