"""Speech (issue #17, in progress): the embedded multi-voice corpus and user audio folders
(corpus.py), HiFi-GAN's log-mel front-end (mel.py), the vocoder task with its network
families (vocoder.py, nets.py), audio metrics (metrics.py) and audio distillation terms
(terms.py); importing the package registers them."""

from kdgan.tasks.audio import terms, vocoder  # noqa: F401  (registration)
