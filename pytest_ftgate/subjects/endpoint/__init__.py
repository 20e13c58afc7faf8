"""OpenAI-compatible endpoints: the subject kind, its hardened client, what the server says it serves."""

from . import subject  # noqa: F401  (registers the openai: kind)
