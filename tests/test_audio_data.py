"""The speech corpus, audio reading and the log-mel front-end (kdgan.tasks.audio)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from kdgan.errors import UserError
from kdgan.tasks.audio.corpus import load_audio_folder, load_embedded_speech, read_audio
from kdgan.tasks.audio.mel import LogMel, MelSettings


@pytest.fixture(scope="module")
def corpus():
    return load_embedded_speech()


def test_corpus_is_parallel_and_split_by_sentence_and_voice(corpus):
    assert len(corpus.voices) == 8 and len(corpus.sentences) == 45
    spoken = {(c.voice, c.sentence) for c in corpus.clips}
    assert spoken == {(v, s) for v in corpus.voices for s in range(45)}  # every voice, every sentence
    train, held, voice = (corpus.split(n) for n in ("train", "held_out", "held_out_voice"))
    assert {c.sentence for c in train}.isdisjoint({c.sentence for c in held})
    assert {c.sentence for c in held} == set(corpus.held_out_sentences) and len(corpus.held_out_sentences) == 6
    assert corpus.held_out_voice not in {c.voice for c in train + held}
    assert {c.voice for c in voice} == {corpus.held_out_voice} and len(voice) == 45
    assert len(train) + len(held) + len(voice) == len(corpus.clips)


def test_clips_are_speech_at_16_khz(corpus):
    for clip in corpus.clips:
        seconds = len(clip.audio) / 16000
        assert 0.8 < seconds < 8, (clip.name, seconds)
        assert clip.audio.dtype == torch.float32 and float(clip.audio.abs().max()) <= 1.0
        assert float(clip.audio.pow(2).mean().sqrt()) > 0.01  # not silence


def test_log_mel_matches_librosa():
    librosa = pytest.importorskip("librosa")
    s = MelSettings()
    t = np.arange(16000 * 2) / 16000
    rng = np.random.default_rng(0)
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(t.size))
    audio = audio.astype(np.float32)
    ours = LogMel(s)(torch.from_numpy(audio)[None])[0].numpy()
    pad = (s.n_fft - s.hop_length) // 2
    padded = np.pad(audio, pad, mode="reflect")
    mel = librosa.feature.melspectrogram(y=padded, sr=s.sample_rate, n_fft=s.n_fft, hop_length=s.hop_length,
                                         win_length=s.win_length, window="hann", center=False, power=1.0,
                                         n_mels=s.n_mels, fmin=s.fmin, fmax=s.fmax)
    want = np.log(np.maximum(mel, 1e-5))
    assert ours.shape == want.shape == (80, len(audio) // s.hop_length)
    assert np.abs(ours - want).max() < 1e-3


def test_read_audio_mixes_to_mono_and_resamples(tmp_path):
    t = np.arange(22050) / 22050
    left, right = np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "a.wav", np.stack([left, right], 1).astype(np.float32), 22050)
    audio = read_audio(tmp_path / "a.wav", "data.path")
    assert audio.shape == (16000,)  # one second at 16 kHz
    middle = audio[2000:14000].numpy()
    assert abs(np.abs(middle).max() - 0.75) < 0.01  # the mean of the two channels' amplitudes


@pytest.mark.parametrize("make,message", [
    (lambda p: (p / "bad.wav").write_bytes(b"RIFF\x00\x00garbage"), "cannot read"),
    (lambda p: (p / "notes.mp4").write_bytes(b"x"), None),  # not audio by suffix: skipped, so the folder is empty
    (lambda p: sf.write(p / "short.wav", np.zeros(100, np.float32) + 0.1, 16000), "shorter than one training segment"),
    (lambda p: sf.write(p / "quiet.wav", np.zeros(16000, np.float32), 16000), "silent throughout"),
])
def test_bad_audio_folders_are_one_line_naming_the_file(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(UserError) as err:
        load_audio_folder(tmp_path, "data.path", min_samples=8192)
    text = str(err.value)
    assert text.startswith("data.path: ") and "\n" not in text
    assert (message or "has no audio files") in text
    if message:
        assert str(tmp_path) in text


def test_an_unsupported_file_given_directly_is_named(tmp_path):
    (tmp_path / "clip.mp3").write_bytes(b"ID3")
    with pytest.raises(UserError, match="clip.mp3 is not a supported audio file; give .wav, .flac, .ogg"):
        read_audio(tmp_path / "clip.mp3", "--input")
