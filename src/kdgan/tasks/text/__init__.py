"""Text (issue #19), in progress: the subword tokenizer. The sequence-to-sequence task, its
networks, distillation terms and metrics are still to come; the embedded corpora are in
kdgan.data.parallel_text."""
