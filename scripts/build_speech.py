"""Build kdgan's embedded speech corpus: several synthetic voices speaking the same short
sentences of the King James Bible, at 16 kHz, stored as FLAC inside the package.

    python scripts/build_speech.py            # writes src/kdgan/data/speech/

Needs Debian's `flite`, `espeak-ng`, `sword-text-kjv` and `libsword-utils` (for `mod2imp`);
as root it installs the missing ones with apt-get --no-install-recommends, otherwise it
prints the command. The shipped package needs none of them: it reads the FLAC files.

What is made (see SOURCES.md beside the data for the licences):
  * sentences: KJV verses of 5-9 words (letters and plain punctuation only), NUM_SENTENCES
    of them spread evenly over the whole text in canonical order;
  * voices: flite's kal16, awb, rms and slt (16 kHz) and espeak-ng's en-us, en-gb,
    en-gb-scotland and en-029 (22,050 Hz, resampled to 16 kHz with soxr's VHQ filter);
    every voice speaks every sentence, so the corpus is parallel;
  * each clip trimmed of leading and trailing silence (librosa.effects.trim, 40 dB below
    its peak), kept with 50 ms of margin, and stored as int16;
  * the split: every 7th sentence (index 3 mod 7) is held out for every voice, and the voice
    `slt` is held out entirely (a vocoder is judged on an unseen speaker too).
One FLAC per voice holds its clips back to back; corpus.json gives each clip's sentence and
sample range. The same tools give byte-identical FLAC files.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
NUM_SENTENCES = 45
HELD_OUT_VOICE = "slt"
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029")
PACKAGES = {"flite": "flite", "espeak-ng": "espeak-ng", "mod2imp": "libsword-utils"}
KJV_MODULE = "engKJV2006eb"  # what sword-text-kjv installs


def ensure_tools() -> None:
    missing = [pkg for tool, pkg in PACKAGES.items() if shutil.which(tool) is None]
    if not (Path("/usr/share/sword/mods.d") / f"{KJV_MODULE}.conf").is_file():
        missing.append("sword-text-kjv")
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if os.geteuid() != 0:
        raise SystemExit(f"build_speech: needs {', '.join(missing)}; run: sudo {' '.join(command)}")
    subprocess.run(command, check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def kjv_verses() -> list[tuple[str, str]]:
    """(reference, text) for every verse, in canonical order, pilcrows removed."""
    raw = subprocess.run(["mod2imp", KJV_MODULE, "-s"], capture_output=True, text=True, check=True).stdout
    verses, ref = [], None
    for line in raw.splitlines():
        if line.startswith("$$$"):
            ref = line[3:].strip()
            continue
        text = " ".join(line.replace("\u00b6", " ").split())
        if ref and text and not ref.endswith(":0"):
            verses.append((ref, text))
            ref = None
    return verses


def pick_sentences(verses: list[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    plain = re.compile(r"^[A-Za-z][A-Za-z ,;:.'?!-]*[.?!]$")
    fits = [(r, t) for r, t in verses if 5 <= len(t.split()) <= 9 and plain.match(t)]
    picks = np.linspace(0, len(fits) - 1, n).round().astype(int)
    return [fits[i] for i in picks]


def speak(voice: str, text: str, work: Path) -> np.ndarray:
    """One clip at 16 kHz as float32 in [-1, 1]."""
    import soundfile as sf
    import soxr

    wav = work / "clip.wav"
    if voice in FLITE_VOICES:
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True)
    else:
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
    audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    audio = audio.mean(1)
    if rate != RATE:
        audio = soxr.resample(audio, rate, RATE, quality="VHQ")
    return audio.astype(np.float32)


def trimmed(audio: np.ndarray, margin_s: float = 0.05) -> np.ndarray:
    import librosa

    _, (start, end) = librosa.effects.trim(audio, top_db=40)
    pad = int(margin_s * RATE)
    return audio[max(0, start - pad): min(len(audio), end + pad)]


def build(out: Path) -> dict:
    import soundfile as sf

    ensure_tools()
    sentences = pick_sentences(kjv_verses(), NUM_SENTENCES)
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    with tempfile.TemporaryDirectory() as tmp:
        for voice in (*FLITE_VOICES, *ESPEAK_VOICES):
            pieces, start = [], 0
            for i, (_, text) in enumerate(sentences):
                audio = trimmed(speak(voice, text, Path(tmp)))
                pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)
                pieces.append(pcm)
                clips.append({"voice": voice, "sentence": i, "start": start, "end": start + len(pcm)})
                start += len(pcm)
            sf.write(out / f"{voice}.flac", np.concatenate(pieces), RATE, subtype="PCM_16", format="FLAC")
    held_out = [i for i in range(len(sentences)) if i % 7 == 3]
    corpus = {
        "sample_rate": RATE,
        "voices": {v: ("flite" if v in FLITE_VOICES else "espeak-ng") for v in (*FLITE_VOICES, *ESPEAK_VOICES)},
        "sentences": [{"reference": r, "text": t} for r, t in sentences],
        "held_out_sentences": held_out,
        "held_out_voice": HELD_OUT_VOICE,
        "clips": clips,
        "debian_packages": {pkg: package_version(pkg) for pkg in ("flite", "espeak-ng", "sword-text-kjv")},
    }
    (out / "corpus.json").write_text(json.dumps(corpus, indent=1))
    return corpus


def package_version(package: str) -> str:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "kdgan" / "data" / "speech")
    args = parser.parse_args()
    corpus = build(args.out)
    seconds = sum(c["end"] - c["start"] for c in corpus["clips"]) / RATE
    size = sum(p.stat().st_size for p in args.out.glob("*.flac"))
    print(f"wrote {args.out}: {len(corpus['voices'])} voices x {len(corpus['sentences'])} sentences, "
          f"{seconds / 60:.1f} min of audio, {size / 1e6:.1f} MB of FLAC")


if __name__ == "__main__":
    main()
