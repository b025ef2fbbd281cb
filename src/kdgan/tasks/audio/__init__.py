"""Speech: the embedded multi-voice corpus and user audio folders (corpus.py, pairs.py),
HiFi-GAN's log-mel front-end (mel.py), the vocoder task (#17: vocoder.py, nets.py, vocos.py)
the speech enhancement task (#18: enhancement.py, waveunet.py, mask_net.py, noise.py, baselines.py), voice
conversion and cloning (#18: conversion.py, cloning.py, convert_nets.py, align.py, speaker.py),
audio metrics (metrics.py), audio distillation terms (terms.py) and how clips are shown
(render.py); importing the package registers them."""

from kdgan.tasks.audio import cloning, conversion, enhancement, terms, vocoder  # noqa: F401  (registration)
