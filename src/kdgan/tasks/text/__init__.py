"""Text (#19): the sequence-to-sequence task (seq2seq.py: translation, style transfer, user
pairs), its Transformer generator (transformer.py) and token discriminator (discriminator.py),
their pruning init (prune.py), the subword tokenizer (tokenizer.py), sentence-pair data
(data.py; the embedded corpora are in kdgan.data.parallel_text) and text metrics (metrics.py);
importing the package registers them."""

from kdgan.tasks.text import seq2seq  # noqa: F401  (registration)
