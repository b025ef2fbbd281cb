"""Does shifting the source's pitch before conversion make the cloned voice's pitch right?
(README, "Voice cloning": measured once, not adopted.)

The shipped clone_teacher converts kal16's held-out sentences into the unseen voice slt from
its 3 reference clips, as `kdgan evaluate` does, once as recorded and once with each source
recording first pitch-shifted (librosa's phase-vocoder `pitch_shift`) by the ratio of the
reference clips' median F0 to the source's (pYIN). Both are vocoded by vocoder_teacher and
scored by the cloning task's own scorer: MCD, speaker similarity, F0 RMSE and correlation.

    python benchmarks/clone_pitch_shift.py      # about 3 minutes on 1 thread

Writes benchmarks/results/clone_pitch_shift.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import librosa
import numpy as np
import torch

from kdgan.config import load_config
from kdgan.loading import load_gan
from kdgan.tasks import build_task
from kdgan.tasks.audio.corpus import SAMPLE_RATE

ROOT = Path(__file__).resolve().parents[1]
METRICS = ["mcd", "similarity", "f0_rmse", "f0_corr"]


def median_f0(recordings: list[torch.Tensor]) -> float:
    tracks = [librosa.pyin(r.numpy().astype(np.float32), fmin=60, fmax=500, sr=SAMPLE_RATE, frame_length=1024,
                           hop_length=256)[0] for r in recordings]
    return float(np.nanmedian(np.concatenate(tracks)))


def main() -> None:
    torch.set_num_threads(1)
    task = build_task(load_config(ROOT / "configs" / "clone_teacher.yaml"))
    generator = load_gan("clone_teacher").generator.eval()
    voice = task.target
    references = [task.audio[(voice, s)] for s in task.reference_sentences(voice, -1)]
    pairs = task._pairs(task.source, voice)
    source_f0, target_f0 = median_f0([p["source_audio"] for p in pairs]), median_f0(references)
    semitones = float(12 * np.log2(target_f0 / source_f0))
    speaker = task.voice_embedding(voice)[None]
    centroids = {"similarity": task.voice_centroid(voice), "source_similarity": task.voice_centroid(task.source)}
    result = {"source": task.source, "target": voice, "clips": len(pairs), "source_median_f0": source_f0,
              "reference_median_f0": target_f0, "shift_semitones": semitones}
    for name, shift in (("as_recorded", 0.0), ("pitch_shifted_first", semitones)):
        outputs = []
        with torch.no_grad():
            for pair in pairs:
                audio = pair["source_audio"]
                if shift:
                    audio = torch.from_numpy(librosa.effects.pitch_shift(
                        audio.numpy().astype(np.float32), sr=SAMPLE_RATE, n_steps=shift)).float()
                outputs.append(task.vocode(generator(task.mel(audio[None]), speaker)).reshape(-1))
        result[name] = task._scores(outputs, pairs, METRICS, centroids)
        print(name, {k: round(v, 3) for k, v in result[name].items()}, flush=True)
    result["unconverted_source"] = task._scores([p["source_audio"] for p in pairs], pairs, METRICS, centroids)
    out = ROOT / "benchmarks" / "results" / "clone_pitch_shift.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
