"""Subjects: what --candidate and --baseline name, resolved through a registry of subject kinds.

    path/to/adapter/        a PEFT adapter directory (adapter_config.json); base from its config
    path/to/model/, org/id  a full model directory, or a Hub id in the Hugging Face cache
    openai:MODEL            an OpenAI-compatible endpoint (--ftgate-openai-base-url or OPENAI_BASE_URL)
    path/to/outputs.jsonl   {"id": ..., "output": ...} per line, optional "suite"

To add a subject kind, write one module with a registered `Subject` subclass and import it below.
"""

from __future__ import annotations

from ..cache import Cache
from ..errors import SubjectError
from .base import BuildContext, Job, OnBatch, Role, Subject, SubjectOptions, register_subject, subject_kinds
from . import outputs, endpoint  # noqa: E402,F401  (each registers itself)
from . import hf  # noqa: E402,F401  (the catch-all for local models and Hub ids)


def build_subject(spec: str, role: Role, ctx: BuildContext) -> Subject:
    for cls in sorted(subject_kinds().values(), key=lambda c: c.catch_all):
        if cls.claims(spec):
            return cls.build(spec, role, ctx)
    raise SubjectError(f"--{role}={spec}: no subject kind understands it")  # pragma: no cover - hf claims all


def resolve_subjects(
    candidate: str | None, baseline: str | None, options: SubjectOptions, cache: Cache
) -> tuple[Subject, Subject | None]:
    """Build (baseline, candidate). Without --baseline, the candidate's implied baseline (an adapter's base)."""
    ctx = BuildContext(options, cache)
    cand = build_subject(candidate, "candidate", ctx) if candidate else None
    if baseline:
        return build_subject(baseline, "baseline", ctx), cand
    if cand is None:
        raise SubjectError("nothing to evaluate: pass --baseline (red phase) and/or --candidate")
    implied = cand.implied_baseline()
    if implied is None:
        raise SubjectError(
            f"--candidate={candidate} is not a PEFT adapter, so there is no base model to compare "
            "against: pass --baseline (a model directory, openai:MODEL or an outputs .jsonl)"
        )
    return implied, cand


def cost_model(kind: str) -> type[Subject]:
    """The registered class of a subject kind (its `serving_cost`), for the TCO."""
    return subject_kinds()[kind]


__all__ = ["BuildContext", "Job", "OnBatch", "Role", "Subject", "SubjectOptions", "build_subject", "cost_model",
           "register_subject", "resolve_subjects"]
