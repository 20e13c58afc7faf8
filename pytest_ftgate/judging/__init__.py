"""Judging: an LLM judge's protocol (prompts, replies, G-Eval, self-test) and its service."""
