"""What a subject is: something that turns chats into outputs, and knows what it costs to serve.

A subject kind is one module: a `Subject` subclass that says which specs it claims, how to build
one, and how it is billed, registered with `register_subject`. The resolver and the TCO ask the
registry; nothing else names a subject kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..config import SubjectOptions
from ..types import Case, GenerationParams, Output, Request, SubjectInfo

if TYPE_CHECKING:
    from ..cache import Cache
    from ..pricing import Pricing, ServingCost, Usage

Role = Literal["baseline", "candidate"]
OnBatch = Callable[[list[tuple[int, Output]]], None]


@dataclass(frozen=True)
class Job:
    """A request with the case and suite it serves (outputs files are keyed by case id)."""

    suite: str
    case: Case
    request: Request


@dataclass
class BuildContext:
    """Shared while the subjects of one run are built: one model load per base, one cache."""

    options: SubjectOptions
    cache: Cache
    shared: dict[Any, Any] = field(default_factory=dict)


class Subject:
    """Base class: `run` produces outputs for jobs; `generate` is the friendly single-call API."""

    kind: ClassVar[str] = ""
    catch_all: ClassVar[bool] = False  # asked after every other kind (local models claim any path)
    info: SubjectInfo
    cacheable: bool = True

    # ---- the kind's declaration ---------------------------------------------------------------
    @classmethod
    def claims(cls, spec: str) -> bool:
        """Whether a --candidate/--baseline spec names a subject of this kind."""
        raise NotImplementedError

    @classmethod
    def build(cls, spec: str, role: Role, ctx: BuildContext) -> Subject:
        raise NotImplementedError

    @classmethod
    def serving_cost(cls, info: SubjectInfo, usage: Usage, pricing: Pricing) -> ServingCost:
        """What serving this subject costs per request and per month at `pricing`."""
        raise NotImplementedError

    # ---- an instance ------------------------------------------------------------------------
    def implied_baseline(self) -> Subject | None:
        """The baseline this subject implies when none is given (an adapter's base), if any."""
        return None

    def run(self, jobs: Sequence[Job], on_batch: OnBatch, progress: Any = None) -> None:
        raise NotImplementedError

    def perplexity(self, jobs: Sequence[Job], targets: Sequence[str]) -> list[float | None]:
        """Perplexity of each target as the reply to its job's chat; None where not measurable."""
        return [None] * len(jobs)

    def generate(self, prompt: str | Sequence[dict[str, str]], **params: Any) -> str:
        """Generate one answer, e.g. `candidate.generate("What is 2+2?", max_new_tokens=8)`."""
        messages = ({"role": "user", "content": prompt},) if isinstance(prompt, str) else tuple(prompt)
        request = Request(messages, GenerationParams(**params))
        case = Case(id="adhoc", messages=messages)
        got: list[Output] = []
        self.run([Job("adhoc", case, request)], lambda batch: got.extend(o for _, o in batch))
        return got[0].text


_KINDS: dict[str, type[Subject]] = {}


def register_subject(cls: type[Subject]) -> type[Subject]:
    """Register a subject kind. Kinds are asked in registration order, catch-alls after all others."""
    _KINDS[cls.kind] = cls
    return cls


def subject_kinds() -> dict[str, type[Subject]]:
    return dict(_KINDS)
