"""What a subject is: something that turns chats into outputs, and knows what it costs to serve.

A subject kind is one module: a `Subject` subclass that says which specs it claims, how to build
one, its own options, how it is billed, and whether it can judge, registered with
`register_subject`. The resolver, the options table and the TCO ask the registry; nothing else
names a subject kind. Third-party kinds register through the `ftgate.subjects` entry point group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..settings.extensions import load_group
from ..settings.options import Option
if TYPE_CHECKING:  # the types are imported where used: loading the plugin (its options) stays light
    from ..types import Case, JudgeReply, Output, Request, SubjectInfo
    from ..cost.pricing import Pricing, ServingCost, Usage
    from ..stores.cache import Cache

Role = Literal["baseline", "candidate", "judge"]
OnBatch = Callable[[list[tuple[int, "Output"]]], None]
FLAGS: dict[str, str] = {"baseline": "--baseline", "candidate": "--candidate", "judge": "--ftgate-judge"}


def flag_of(role: str) -> str:
    """The option that named a subject of this role, for messages."""
    return FLAGS.get(role, f"--{role}")


@dataclass(frozen=True)
class Job:
    """A request with the case and suite it serves (outputs files are keyed by case id)."""

    suite: str
    case: Case
    request: Request
    sample: int = 0  # which sample of the case (a suite's generate.samples), 0 for the first or only one


class SubjectOptions:
    """The values of the subject kinds' own options, by field (`options.batch_size`).

    A value not given is its Option's default, as its kind declares it: one place for each default."""

    def __init__(self, values: Mapping[str, Any] | None = None, **more: Any):
        self._values = {**(values or {}), **more}
        unknown = sorted(set(self._values) - set(subject_option_fields()))
        if unknown:
            raise TypeError(f"unknown subject option(s) {', '.join(unknown)}; known: {', '.join(sorted(subject_option_fields()))}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._values:
            return self._values[name]
        option = subject_option_fields().get(name)
        if option is None:
            raise AttributeError(f"no subject option {name!r}")
        return option.default

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in subject_option_fields()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SubjectOptions) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return f"SubjectOptions({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"


@dataclass
class BuildContext:
    """Shared while the subjects of one run are built (candidate, baseline, judges): one model load per
    base, one cache, the subject kinds' option values."""

    options: SubjectOptions
    cache: Cache
    shared: dict[Any, Any] = field(default_factory=dict)


class Subject:
    """Base class: `run` produces outputs for jobs; `generate` is the friendly single-call API."""

    kind: ClassVar[str] = ""
    catch_all: ClassVar[bool] = False  # asked after every other kind (local models claim any path)
    options: ClassVar[tuple[Option, ...]] = ()  # this kind's own command-line options and ini keys
    can_judge: ClassVar[bool] = False  # whether `judge_reply` works (an LLM that can read a rubric)
    info: SubjectInfo
    cacheable: bool = True  # False: its outputs come from elsewhere (a file), nothing is generated or cached
    reuse: bool = True  # False: outputs are not taken from an earlier run's cache (an endpoint that cannot be identified)

    # ---- the kind's declaration ---------------------------------------------------------------
    @classmethod
    def claims(cls, spec: str) -> bool:
        """Whether a --candidate/--baseline/--ftgate-judge spec names a subject of this kind."""
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

    def close(self) -> None:
        """Release what the subject started (a server); the run that built it calls this when it ends."""

    def perplexity(self, jobs: Sequence[Job], targets: Sequence[str]) -> list[float | None]:
        """Perplexity of each target as the reply to its job's chat; None where not measurable."""
        return [None] * len(jobs)

    def judge_reply(self, messages: Sequence[dict[str, str]], *, schema: dict[str, Any], max_tokens: int,
                    where: str) -> JudgeReply:
        """One greedy reply to a judge prompt, with the top log-probabilities of its tokens where the
        kind has them, constrained by `schema` where it can be. Only for kinds with `can_judge`."""
        raise NotImplementedError(f"a {self.kind} subject cannot judge")

    def generate(self, prompt: str | Sequence[dict[str, str]], **params: Any) -> str:
        """Generate one answer, e.g. `candidate.generate("What is 2+2?", max_new_tokens=8)`."""
        from ..types import Case, GenerationParams, Request

        messages = ({"role": "user", "content": prompt},) if isinstance(prompt, str) else tuple(prompt)
        request = Request(messages, GenerationParams(**params))
        case = Case(id="adhoc", messages=messages)
        got: list[Output] = []
        self.run([Job("adhoc", case, request)], lambda batch: got.extend(o for _, o in batch))
        return got[0].text


_KINDS: dict[str, type[Subject]] = {}


def register_subject(cls: type[Subject]) -> type[Subject]:
    """Register a subject kind. Kinds are asked in registration order, catch-alls after all others."""
    if not cls.kind:
        raise TypeError(f"{cls.__name__} needs a `kind` name to be registered")
    _KINDS[cls.kind] = cls
    return cls


def subject_kinds() -> dict[str, type[Subject]]:
    """Every registered subject kind: ours, then those of installed `ftgate.subjects` entry points."""
    load_group("ftgate.subjects")
    return dict(_KINDS)


def subject_option_fields() -> dict[str, Option]:
    """The options every subject kind declares, by the field they set."""
    return {o.field: o for cls in subject_kinds().values() for o in cls.options}
