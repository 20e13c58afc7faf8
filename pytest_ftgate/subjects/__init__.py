"""Subjects: what --candidate, --baseline and --ftgate-judge name, resolved through a registry of kinds.

    path/to/adapter/        a PEFT adapter directory (adapter_config.json); base from its config
    path/to/model/, org/id  a full model directory, or a Hub id in the Hugging Face cache
    openai:MODEL            an OpenAI-compatible endpoint (--ftgate-openai-base-url or OPENAI_BASE_URL)
    path/to/outputs.jsonl   {"id": ..., "output": ...} per line, optional "suite"

To add a subject kind, write one module with a registered `Subject` subclass (its specs, options,
billing, and whether it can judge): ours are imported below, others come from the `ftgate.subjects`
entry point group.
"""

from __future__ import annotations

from .base import (BuildContext, Job, OnBatch, Role, Subject, SubjectOptions, flag_of, register_subject,
                   subject_kinds, subject_option_fields)
from . import outputs, endpoint  # noqa: E402,F401,I001  (each registers itself)
from . import hf  # noqa: E402,F401  (the catch-all for local models and Hub ids)
from .resolver import Resolver  # noqa: E402


def cost_model(kind: str) -> type[Subject]:
    """The registered class of a subject kind (its `serving_cost`), for the TCO."""
    return subject_kinds()[kind]


__all__ = ["BuildContext", "Job", "OnBatch", "Resolver", "Role", "Subject", "SubjectOptions", "cost_model", "flag_of",
           "register_subject", "subject_kinds", "subject_option_fields"]
