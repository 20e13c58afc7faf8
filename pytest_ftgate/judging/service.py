"""A judge for a run: a subject that can judge (resolved like the candidate and the baseline, so a judge
on the baseline's model shares its load), asked through the run's cache, its usage counted.

Judge calls are cached like generations, keyed by the judge's fingerprint, the messages, the reply
schema and the token budget; a cached reply is served without a call and counted apart.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..stores.cache import Cache, cache_key
from ..types import JudgeReply, Output, ReplyToken, TokenChoice, content_hash

Message = dict[str, str]


@dataclass
class JudgeUsage:
    """What the judge cost this run: an evaluation cost, kept apart from serving cost."""

    spec: str
    kind: str  # its subject kind
    name: str
    calls: int = 0
    cached: int = 0
    tokens_in: int = 0
    tokens_out: int = 0


class CachedJudge:
    """A judging subject whose replies are cached (same key, same reply) and whose usage is counted."""

    def __init__(self, subject: Any, cache: Cache, spec: str):
        self.subject, self.cache = subject, cache
        self.name = spec
        self.fingerprint = "judge-" + subject.info.cache_key
        self.concurrency = getattr(subject, "concurrency", 1)
        self.usage = JudgeUsage(spec, subject.kind, subject.info.name)
        self._lock = threading.Lock()
        self._asked: set[str] = set()  # the keys this run asked the judge itself

    @property
    def form(self) -> str | None:
        return getattr(self.subject, "form", "prompt")

    def complete(self, messages: Sequence[Message], *, schema: dict[str, Any], max_tokens: int, where: str) -> JudgeReply:
        key = cache_key(self.fingerprint, content_hash({"messages": list(messages), "schema": schema, "max_tokens": max_tokens}, 32))
        # an unidentified endpoint's verdicts are not taken from an earlier run's cache
        reuse = getattr(self.subject, "reuse", True)  # a judging subject need not be a Subject (Subject.reuse)
        hit = self.cache.get_many([key]).get(key) if reuse or key in self._asked else None
        if hit is not None:
            with self._lock:
                self.usage.cached += 1
            return decode(hit.text)
        reply = self.subject.judge_reply(messages, schema=schema, max_tokens=max_tokens, where=where)
        self.cache.put_many(self.fingerprint, [(key, Output(encode(reply), reply.tokens_in, reply.tokens_out))])
        self._asked.add(key)
        with self._lock:
            self.usage.calls += 1
            self.usage.tokens_in += reply.tokens_in or 0
            self.usage.tokens_out += reply.tokens_out or 0
        return reply


def encode(reply: JudgeReply) -> str:
    return json.dumps({"text": reply.text, "form": reply.form, "tokens_in": reply.tokens_in, "tokens_out": reply.tokens_out,
                       "tokens": [[t.token, [[c.token, c.logprob] for c in t.top]] for t in reply.tokens]})


def decode(blob: str) -> JudgeReply:
    data = json.loads(blob)
    tokens = tuple(ReplyToken(t, tuple(TokenChoice(c, lp) for c, lp in top)) for t, top in data["tokens"])
    return JudgeReply(data["text"], tokens, data.get("tokens_in"), data.get("tokens_out"), data.get("form", "prompt"), cached=True)
