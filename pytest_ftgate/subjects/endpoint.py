"""`openai:MODEL`: an OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp's server, `ft:` models).

Calls go through pytest_ftgate.client.EndpointClient (bounded concurrency, one shared rate
limiter, retries with backoff that honour Retry-After, timeouts); token usage is recorded. A failed
request is a GenerationError naming the case, a refused key or unknown model an EndpointError that
stops the run: never a pass. Reports and the fingerprint see the URL without its credentials.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

from ..client import EndpointClient
from ..errors import GenerationError, SubjectError
from ..pricing import Pricing, ServingCost, Usage, api_cost
from ..types import Output, SubjectInfo
from .base import BuildContext, Job, OnBatch, Role, Subject, SubjectOptions, register_subject

PREFIX = "openai:"


@register_subject
class OpenAISubject(Subject):
    kind = "openai"

    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec.startswith(PREFIX)

    @classmethod
    def build(cls, spec: str, role: Role, ctx: BuildContext) -> Subject:
        return cls(spec.removeprefix(PREFIX), role, ctx.options)

    @classmethod
    def serving_cost(cls, info: SubjectInfo, usage: Usage, pricing: Pricing) -> ServingCost:
        # An unpriced endpoint (a self-hosted server, an `ft:` model) leaves its cost unknown and
        # says how to price it; the quality gates do not depend on prices.
        return api_cost(pricing, info.name, usage)

    def __init__(self, model: str, role: Role, options: SubjectOptions):
        if not model:
            raise SubjectError(f"--{role}=openai: needs a model name, e.g. openai:gpt-4o-mini")
        try:
            import openai  # noqa: F401
        except ImportError:
            raise SubjectError("the openai: subject needs the openai package: pip install 'pytest-ftgate[judge]'") from None
        self.model = model
        self.client = EndpointClient(options.openai_base_url, concurrency=options.openai_concurrency,
                                     timeout_s=options.openai_timeout_s, max_retries=options.openai_retries)
        url = self.client.display_url  # never the key, nor a user:pass@ in the URL
        fingerprint = hashlib.sha256(f"{url}\0{model}".encode()).hexdigest()[:24]
        self.info = SubjectInfo(role, self.kind, model, fingerprint, {"base_url": url, "model": model})

    def _one(self, job: Job) -> Output:
        p = job.request.params
        kwargs: dict[str, Any] = {"temperature": p.temperature, "max_tokens": p.max_new_tokens, "seed": p.seed}
        if not p.greedy:
            kwargs["top_p"] = p.top_p
        where = f"case {job.suite}/{job.case.id}"
        started = time.perf_counter()
        reply = self.client.complete(self.model, list(job.request.messages), where=where, **kwargs)
        elapsed = time.perf_counter() - started  # retries and waits included: what a user of it would wait
        if not reply.choices:
            raise GenerationError(f"{self.client.display_url} returned no choices for {where}")
        usage = reply.usage
        return Output(
            reply.choices[0].message.content or "",
            usage.prompt_tokens if usage else None,
            usage.completion_tokens if usage else None,
            elapsed,
        )

    def run(self, jobs: Sequence[Job], on_batch: OnBatch, progress: Any = None) -> None:
        def done(i: int, out: Output) -> None:
            on_batch([(i, out)])
            if progress is not None:
                progress.update(1)

        self.client.map(self._one, jobs, done)
