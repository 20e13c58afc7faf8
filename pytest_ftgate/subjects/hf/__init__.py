"""Local models through transformers: the subject kind, its engine, weights and tokenizer files, Hub ids."""

from . import subject  # noqa: F401  (registers the hf kind: local models and Hub ids, the catch-all)
