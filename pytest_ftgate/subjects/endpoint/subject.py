"""`openai:MODEL`: an OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp's server, `ft:` models).

Calls go through pytest_ftgate.subjects.endpoint.client.EndpointClient (bounded concurrency, one shared rate
limiter, retries with backoff that honour Retry-After, timeouts); token usage is recorded. A failed
request is a GenerationError naming the case, a refused key or unknown model an EndpointError that
stops the run: never a pass. Reports and the fingerprint see the URL without its credentials.

As a judge (`--ftgate-judge=openai:MODEL`), it is asked for a reply constrained by a JSON schema, in
the first form the endpoint accepts (OpenAI's `json_schema`, llama.cpp's `json_object` with a schema,
or none), and for the top log-probabilities of each token.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...errors import GenerationError, SubjectError
from ...settings.options import Option, count_arg, positive_int_arg, seconds_arg
from ..base import BuildContext, Job, OnBatch, Role, Subject, flag_of, register_subject
from .chat import answer_text, chat_params

if TYPE_CHECKING:  # imported where used: loading the plugin stays light
    from ...cost.pricing import Pricing, ServingCost, Usage
    from ...types import JudgeReply, Output, ReplyToken, SubjectInfo
    from .client import EndpointClient
    from .served import Served

PREFIX = "openai:"
FORMS = ("json_schema", "json_object+schema", "prompt")
TOP_LOGPROBS = 5


def _response_format(form: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    if form == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema, "strict": True}}
    if form == "json_object+schema":
        return {"type": "json_object", "schema": schema}
    return None


def _tokens(choice: Any) -> tuple[ReplyToken, ...]:
    from ...types import ReplyToken, TokenChoice

    content = getattr(getattr(choice, "logprobs", None), "content", None) or []
    return tuple(
        ReplyToken(t.token, tuple(TokenChoice(c.token, c.logprob) for c in (t.top_logprobs or [])) or (TokenChoice(t.token, t.logprob),))
        for t in content
    )


@register_subject
class OpenAISubject(Subject):
    kind = "openai"
    can_judge = True
    options = (
        Option("--ftgate-openai-base-url", "ftgate_openai_base_url", field="openai_base_url", metavar="URL",
               help="base URL of the OpenAI-compatible endpoint for openai: subjects (the key comes from $OPENAI_API_KEY; "
                    "neither is ever shown). Default: $OPENAI_BASE_URL, else https://api.openai.com/v1"),
        Option("--ftgate-openai-concurrency", "ftgate_openai_concurrency", field="openai_concurrency", metavar="N",
               type=positive_int_arg, default=8, ini="ftgate_openai_concurrency",
               ini_help="requests in flight at once to each OpenAI-compatible endpoint (--ftgate-openai-concurrency)",
               help="requests in flight at once to each OpenAI-compatible endpoint (candidate, baseline, judge). "
                    "Default: ini ftgate_openai_concurrency or {default}"),
        Option("--ftgate-openai-timeout", "ftgate_openai_timeout", field="openai_timeout_s", metavar="S", type=seconds_arg,
               default=120.0, help="seconds to wait for one endpoint reply before it counts as failed and is retried. Default: {default}"),
        Option("--ftgate-openai-retries", "ftgate_openai_retries", field="openai_retries", metavar="N", type=count_arg,
               default=5, help="retries of a request after a 429, 5xx, timeout or connection error, with backoff and "
                               "jitter (Retry-After honoured). Default: {default}"),
        Option("--ftgate-reuse-unidentified", "ftgate_reuse_unidentified", field="reuse_unidentified", action="store_true",
               default=False, ini="ftgate_reuse_unidentified",
               ini_help="reuse cached answers of endpoints that do not identify their model (--ftgate-reuse-unidentified)",
               help="reuse cached answers of an OpenAI-compatible endpoint whose server does not identify the model it "
                    "serves (llama-cpp-python's server, most proxies), taking the same URL and model name for the same "
                    "model in every run. Off by default: a redeployed server would pass for the model that was measured. "
                    "vLLM, llama.cpp's own server and OpenAI's pinned models identify theirs, and are reused"),
        Option("--ftgate-judge-base-url", "ftgate_judge_base_url", field="judge_base_url", metavar="URL",
               help="base URL of the judge's OpenAI-compatible endpoint. Default: $FTGATE_JUDGE_BASE_URL, else the "
                    "openai: subjects' endpoint (--ftgate-openai-base-url, $OPENAI_BASE_URL)"),
    )

    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec.startswith(PREFIX)

    @classmethod
    def build(cls, spec: str, role: Role, ctx: BuildContext) -> Subject:
        o = ctx.options
        url = o.openai_base_url
        if role == "judge":
            url = o.judge_base_url or os.environ.get("FTGATE_JUDGE_BASE_URL") or url
        subject = cls(spec.removeprefix(PREFIX), role, url, concurrency=o.openai_concurrency, timeout_s=o.openai_timeout_s,
                      retries=o.openai_retries)
        subject.identify(reuse_unidentified=bool(o.reuse_unidentified))
        return subject

    @classmethod
    def serving_cost(cls, info: SubjectInfo, usage: Usage, pricing: Pricing) -> ServingCost:
        # An unpriced endpoint (a self-hosted server, an `ft:` model) leaves its cost unknown and
        # says how to price it; the quality gates do not depend on prices.
        from ...cost.pricing import api_cost

        return api_cost(pricing, info.name, usage)

    def __init__(self, model: str, role: Role, base_url: str | None = None, *, concurrency: int = 8,
                 timeout_s: float = 120.0, retries: int = 5):
        if not model:
            raise SubjectError(f"{flag_of(role)}=openai: needs a model name, e.g. openai:gpt-4o-mini")
        try:
            import openai  # noqa: F401
        except ImportError:
            raise SubjectError("the openai: subject needs the openai package: pip install 'pytest-ftgate[judge]'") from None
        from .client import EndpointClient

        self.model = model
        self.concurrency = concurrency
        self.client = EndpointClient(base_url, concurrency=concurrency, timeout_s=timeout_s, max_retries=retries)
        from ...types import SubjectInfo

        url = self.client.display_url  # never the key, nor a user:pass@ in the URL
        fingerprint = hashlib.sha256(f"{url}\0{model}".encode()).hexdigest()[:24]
        self.info = SubjectInfo(role, self.kind, model, fingerprint, {"base_url": url, "model": model})
        self.served: Served | None = None  # what the server said it serves (see `identify`)
        # as a judge: one probe without retries finds the reply form the endpoint accepts, once
        self._probe = EndpointClient(base_url, concurrency=1, timeout_s=timeout_s, max_retries=0)
        self.form: str | None = None
        self._logprobs = True
        self._form_lock = threading.Lock()

    def identify(self, *, reuse_unidentified: bool = False) -> None:
        """Ask the server what it serves under this name (pytest_ftgate.subjects.endpoint.served). What
        identifies the model joins the fingerprint; an unidentified model's answers are not taken
        from an earlier run's cache unless `reuse_unidentified`."""
        from dataclasses import replace

        from .served import ask

        self.served = served = ask(self.client, self.model)
        info = self.info
        details = {**info.details, "served": served.to_json()}
        if served.identified:
            text = json.dumps(served.reported, sort_keys=True)
            fingerprint = hashlib.sha256(f"{self.client.display_url}\0{self.model}\0{text}".encode()).hexdigest()[:24]
            self.info = replace(info, fingerprint=fingerprint, details=details, generation=served.describe())
            return
        self.reuse = reuse_unidentified
        said = ("its answers are reused across runs by URL and name (--ftgate-reuse-unidentified)" if reuse_unidentified
                else "its answers are not reused across runs")
        self.info = replace(info, details=details, generation=f"{served.describe()}: {said}")

    def _one(self, job: Job) -> Output:
        from ...types import Output

        kwargs = chat_params(job.request)
        where = f"case {job.suite}/{job.case.id}"
        started = time.perf_counter()
        reply = self.client.complete(self.model, list(job.request.messages), where=where, **kwargs)
        elapsed = time.perf_counter() - started  # retries and waits included: what a user of it would wait
        if not reply.choices:
            raise GenerationError(f"{self.client.display_url} returned no choices for {where}")
        usage = reply.usage
        return Output(
            answer_text(reply.choices[0].message),
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

    # ---- as a judge -------------------------------------------------------------------------
    def judge_reply(self, messages: Sequence[dict[str, str]], *, schema: dict[str, Any], max_tokens: int,
                    where: str) -> JudgeReply:
        if self.form is None:
            with self._form_lock:
                if self.form is None:
                    return self._judge_reply(self._settle_form(messages, schema, max_tokens, where))
        return self._judge_reply(self._ask(self.client, messages, schema, max_tokens, where, self.form))

    def _ask(self, client: EndpointClient, messages: Sequence[dict[str, str]], schema: dict[str, Any],
             max_tokens: int, where: str, form: str) -> Any:
        params: dict[str, Any] = {"temperature": 0.0, "max_tokens": max_tokens, "seed": 0}
        if self._logprobs:
            params.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        response_format = _response_format(form, schema)
        if response_format is not None:
            params["response_format"] = response_format
        return client.complete(self.model, list(messages), where=where, **params)

    def _settle_form(self, messages: Sequence[dict[str, str]], schema: dict[str, Any], max_tokens: int, where: str) -> Any:
        """Find, once, the first reply form (and whether log-probabilities) the endpoint accepts."""
        errors = []
        for logprobs in (True, False):
            self._logprobs = logprobs
            for form in FORMS:
                try:
                    reply = self._ask(self._probe, messages, schema, max_tokens, where, form)
                except GenerationError as exc:
                    errors.append(f"{form}{'' if logprobs else ' without logprobs'}: {exc}")
                    continue
                self.form = form
                return reply
        raise GenerationError(f"judge {PREFIX}{self.model} answered no request form: " + "; ".join(errors[-3:]))

    def _judge_reply(self, reply: Any) -> JudgeReply:
        from ...types import JudgeReply

        if not reply.choices:
            raise GenerationError(f"judge {PREFIX}{self.model} returned no choices")
        choice = reply.choices[0]
        usage = reply.usage
        return JudgeReply(choice.message.content or "", _tokens(choice), usage.prompt_tokens if usage else None,
                          usage.completion_tokens if usage else None, self.form or "prompt")
