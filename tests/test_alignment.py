"""DTW alignment for parallel voice conversion (#18): a known warp is recovered exactly."""

from __future__ import annotations

import torch

from kdgan.tasks.audio.align import warp_mapping


def test_dtw_recovers_a_known_uneven_warp_of_a_recording():
    """The target is a held-out sentence's log-mel re-timed: its first half twice as slow,
    its second half played at 1.5x (every third frame dropped). Every target frame maps back
    to the source frame it was made from."""
    from kdgan.tasks.audio.corpus import load_embedded_speech
    from kdgan.tasks.audio.mel import LogMel

    mel = LogMel()(load_embedded_speech().split("held_out")[0].audio[None])[0]
    half = mel.shape[1] // 2
    slow = torch.arange(half).repeat_interleave(2)
    fast = torch.tensor([i for i in range(half, mel.shape[1]) if (i - half) % 3 != 2])
    truth = torch.cat([slow, fast])
    got = warp_mapping(mel, mel[:, truth])
    assert torch.equal(got, truth)
