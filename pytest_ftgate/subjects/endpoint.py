"""`openai:MODEL`: an OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp's server, `ft:` models).

Bounded concurrency through a thread pool, the client's own retries with backoff and timeouts,
token usage recorded. A failed request is a GenerationError naming the case: never a pass.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

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
            import openai
        except ImportError:
            raise SubjectError("the openai: subject needs the openai package: pip install 'pytest-ftgate[judge]'") from None
        self.model = model
        self.base_url = options.openai_base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self.concurrency = options.openai_concurrency
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=os.environ.get("OPENAI_API_KEY", "not-needed-for-local-servers"),
            max_retries=3,
            timeout=options.timeout_s,
        )
        fingerprint = hashlib.sha256(f"{self.base_url}\0{model}".encode()).hexdigest()[:24]
        self.info = SubjectInfo(role, self.kind, model, fingerprint, {"base_url": self.base_url, "model": model})

    def _one(self, job: Job) -> Output:
        import openai

        p = job.request.params
        kwargs: dict[str, Any] = {"temperature": p.temperature, "max_tokens": p.max_new_tokens, "seed": p.seed}
        if not p.greedy:
            kwargs["top_p"] = p.top_p
        started = time.perf_counter()
        try:
            reply = self.client.chat.completions.create(model=self.model, messages=list(job.request.messages), **kwargs)
        except openai.APIError as exc:
            raise GenerationError(f"{self.base_url} failed on case {job.suite}/{job.case.id}: {exc}") from None
        elapsed = time.perf_counter() - started
        if not reply.choices:
            raise GenerationError(f"{self.base_url} returned no choices for case {job.suite}/{job.case.id}")
        usage = reply.usage
        return Output(
            reply.choices[0].message.content or "",
            usage.prompt_tokens if usage else None,
            usage.completion_tokens if usage else None,
            elapsed,
        )

    def run(self, jobs: Sequence[Job], on_batch: OnBatch, progress: Any = None) -> None:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self._one, job): i for i, job in enumerate(jobs)}
            try:
                for future in as_completed(futures):
                    on_batch([(futures[future], future.result())])
                    if progress is not None:
                        progress.update(1)
            except GenerationError:
                for f in futures:
                    f.cancel()
                raise
