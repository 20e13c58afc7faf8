"""Judges built from a spec (`openai:MODEL` or a local model), cached, with their usage counted.

`--ftgate-judge` takes the same forms as `--candidate`. An endpoint judge is asked for a reply
constrained by a JSON schema, in the first form the endpoint accepts (OpenAI's `json_schema`,
llama.cpp's `json_object` with a schema, or none), and for the top log-probabilities of each
token; a local judge's log-probabilities come from its own logits. Judge calls are cached like
generations, keyed by the judge's fingerprint, the messages and the parameters.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .cache import Cache, cache_key
from .errors import GenerationError, SubjectError
from .judge import JudgeReply, Message, ReplyToken, TokenChoice
from .types import Output, content_hash

FORMS = ("json_schema", "json_object+schema", "prompt")
TOP_LOGPROBS = 5


@dataclass
class JudgeUsage:
    """What the judge cost this run: an evaluation cost, kept apart from serving cost."""

    spec: str
    kind: str  # a subject kind: openai | hf
    name: str
    calls: int = 0
    cached: int = 0
    tokens_in: int = 0
    tokens_out: int = 0


def _response_format(form: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    if form == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema, "strict": True}}
    if form == "json_object+schema":
        return {"type": "json_object", "schema": schema}
    return None


def _tokens(choice: Any) -> tuple[ReplyToken, ...]:
    content = getattr(getattr(choice, "logprobs", None), "content", None) or []
    return tuple(
        ReplyToken(t.token, tuple(TokenChoice(c.token, c.logprob) for c in (t.top_logprobs or [])) or (TokenChoice(t.token, t.logprob),))
        for t in content
    )


class EndpointJudge:
    """An OpenAI-compatible endpoint as a judge."""

    kind = "openai"

    def __init__(self, model: str, base_url: str | None, *, concurrency: int = 8, timeout_s: float = 120.0, retries: int = 5):
        from .client import EndpointClient

        if not model:
            raise SubjectError("--ftgate-judge=openai: needs a model name, e.g. openai:gpt-4o-mini")
        self.model = model
        self.client = EndpointClient(base_url, concurrency=concurrency, timeout_s=timeout_s, max_retries=retries)
        self.probe = EndpointClient(base_url, concurrency=1, timeout_s=timeout_s, max_retries=0)
        self.name = f"openai:{model}"
        self.fingerprint = hashlib.sha256(f"judge\0{self.client.display_url}\0{model}".encode()).hexdigest()[:24]
        self.concurrency = concurrency
        self.form: str | None = None  # the first form the endpoint accepted, found on the first call
        self.logprobs = True
        self._lock = threading.Lock()

    def _ask(self, client: Any, messages: Sequence[Message], schema: dict[str, Any], max_tokens: int, where: str,
             form: str) -> Any:
        params: dict[str, Any] = {"temperature": 0.0, "max_tokens": max_tokens, "seed": 0}
        if self.logprobs:
            params.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        response_format = _response_format(form, schema)
        if response_format is not None:
            params["response_format"] = response_format
        return client.complete(self.model, list(messages), where=where, **params)

    def _settle_form(self, messages: Sequence[Message], schema: dict[str, Any], max_tokens: int, where: str) -> Any:
        """Find, once, the first reply form (and whether log-probabilities) the endpoint accepts."""
        errors = []
        for logprobs in (True, False):
            self.logprobs = logprobs
            for form in FORMS:
                try:
                    reply = self._ask(self.probe, messages, schema, max_tokens, where, form)
                except GenerationError as exc:
                    errors.append(f"{form}{'' if logprobs else ' without logprobs'}: {exc}")
                    continue
                self.form = form
                return reply
        raise GenerationError(f"judge {self.name} answered no request form: " + "; ".join(errors[-3:]))

    def complete(self, messages: Sequence[Message], *, schema: dict[str, Any], max_tokens: int, where: str) -> JudgeReply:
        if self.form is None:
            with self._lock:
                if self.form is None:
                    reply = self._settle_form(messages, schema, max_tokens, where)
                    return self._reply(reply)
        return self._reply(self._ask(self.client, messages, schema, max_tokens, where, self.form))

    def _reply(self, reply: Any) -> JudgeReply:
        if not reply.choices:
            raise GenerationError(f"judge {self.name} returned no choices")
        choice = reply.choices[0]
        usage = reply.usage
        return JudgeReply(choice.message.content or "", _tokens(choice), usage.prompt_tokens if usage else None,
                          usage.completion_tokens if usage else None, self.form or "prompt")


class LocalJudge:
    """A local model as a judge: greedy, prompt-constrained, log-probabilities from its logits."""

    kind = "hf"
    concurrency = 1

    def __init__(self, subject: Any):
        self.subject = subject
        self.name = subject.info.name
        self.fingerprint = "judge-" + subject.info.fingerprint

    def complete(self, messages: Sequence[Message], *, schema: dict[str, Any], max_tokens: int, where: str) -> JudgeReply:
        text, tokens, n_in, n_out = self.subject.complete_with_logprobs(list(messages), max_tokens, TOP_LOGPROBS)
        return JudgeReply(text, tuple(ReplyToken(t, tuple(TokenChoice(c, lp) for c, lp in top)) for t, top in tokens),
                          n_in, n_out, "prompt")


class CachedJudge:
    """A judge whose replies are cached (same key, same reply) and whose usage is counted."""

    def __init__(self, judge: Any, cache: Cache, spec: str):
        self.judge, self.cache = judge, cache
        self.name, self.fingerprint = judge.name, judge.fingerprint
        self.concurrency = getattr(judge, "concurrency", 1)
        self.usage = JudgeUsage(spec, judge.kind, judge.name)
        self._lock = threading.Lock()

    @property
    def form(self) -> str | None:
        return getattr(self.judge, "form", "prompt")

    def complete(self, messages: Sequence[Message], *, schema: dict[str, Any], max_tokens: int, where: str) -> JudgeReply:
        key = cache_key(self.fingerprint, content_hash({"messages": list(messages), "schema": schema, "max_tokens": max_tokens}, 32))
        hit = self.cache.get_many([key]).get(key)
        if hit is not None:
            with self._lock:
                self.usage.cached += 1
            return _decode(hit.text)
        reply = self.judge.complete(messages, schema=schema, max_tokens=max_tokens, where=where)
        self.cache.put_many(self.fingerprint, [(key, Output(_encode(reply), reply.tokens_in, reply.tokens_out))])
        with self._lock:
            self.usage.calls += 1
            self.usage.tokens_in += reply.tokens_in or 0
            self.usage.tokens_out += reply.tokens_out or 0
        return reply


def _encode(reply: JudgeReply) -> str:
    return json.dumps({"text": reply.text, "form": reply.form, "tokens_in": reply.tokens_in, "tokens_out": reply.tokens_out,
                       "tokens": [[t.token, [[c.token, c.logprob] for c in t.top]] for t in reply.tokens]})


def _decode(blob: str) -> JudgeReply:
    data = json.loads(blob)
    tokens = tuple(ReplyToken(t, tuple(TokenChoice(c, lp) for c, lp in top)) for t, top in data["tokens"])
    return JudgeReply(data["text"], tokens, data.get("tokens_in"), data.get("tokens_out"), data.get("form", "prompt"), cached=True)


def build_judge(spec: str, *, base_url: str | None, options: Any, cache: Cache) -> CachedJudge:
    """A judge from `openai:MODEL` or a local model directory / Hub id."""
    if spec.startswith("openai:"):
        url = base_url or os.environ.get("FTGATE_JUDGE_BASE_URL") or options.openai_base_url
        judge: Any = EndpointJudge(spec.removeprefix("openai:"), url, concurrency=options.openai_concurrency,
                                   timeout_s=options.openai_timeout_s, retries=options.openai_retries)
    else:
        from .subjects import BuildContext
        from .subjects.hf import HFSubject

        try:
            judge = LocalJudge(HFSubject.build(spec, "baseline", BuildContext(options, cache)))
        except SubjectError as exc:
            raise SubjectError(f"--ftgate-judge={spec}: {exc}") from None
    return CachedJudge(judge, cache, spec)
