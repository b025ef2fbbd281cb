"""Text (#19): the sequence-to-sequence task (seq2seq.py: translation, style transfer, user
pairs) and unconditional text (lm.py, decoder.py), what they share (tokens.py), their
Transformer generators (transformer.py) and token discriminator (discriminator.py),
their pruning init (prune.py), the subword tokenizer (tokenizer.py), sentence-pair data
(data.py; the embedded corpora are in kdgan.data.parallel_text) and text metrics (metrics.py);
importing the package registers them."""

from kdgan.tasks.text import lm, seq2seq  # noqa: F401  (registration)
