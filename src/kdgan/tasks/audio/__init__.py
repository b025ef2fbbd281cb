"""Speech (issue #17, in progress): the embedded multi-voice corpus and user audio folders
(corpus.py) and HiFi-GAN's log-mel front-end (mel.py). The vocoder task, its network
families and audio metrics are not registered yet."""
