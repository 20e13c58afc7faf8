"""The dataclasses that cross module boundaries. No heavy imports here."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from collections.abc import Callable
from typing import Any, Literal

Message = dict[str, str]
RUN = "(run)"  # the `suite` of a gate decision about the run as a whole (leakage, the run's serving budgets)


def content_hash(obj: Any, length: int = 16) -> str:
    """A stable short hash of a JSON-serialisable value."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Case:
    """One eval case: the user's turn(s), an optional expected value, tags."""

    id: str
    messages: tuple[Message, ...]
    expected: Any = None
    tags: tuple[str, ...] = ()
    line: int | None = None  # where the case was defined, for error messages
    file: Path | None = field(default=None, compare=False)  # the suite file or its cases JSONL
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # keys only the suite's kind reads
    reduce: str | None = None  # how its samples reduce to one outcome (Sampling.REDUCERS); None: the suite's
    tools: tuple[dict[str, Any], ...] = ()  # OpenAI function schemas offered to the model for this case
    tool_choice: str | dict[str, Any] | None = None  # the API's tool_choice ("required", a named function); None: auto

    @property
    def content_hash(self) -> str:
        own = {k: v for k, v in (("reduce", self.reduce), ("tools", list(self.tools)), ("tool_choice", self.tool_choice))
               if v}  # absent: hashes as before
        return content_hash({"messages": list(self.messages), "expected": self.expected, **own})


@dataclass(frozen=True)
class GenerationParams:
    """Decoding parameters; greedy unless temperature > 0."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Sampling:
    """How many times each case is generated, and how its samples reduce to one outcome per case.

    mean       the share of samples that pass is the case's value; it passes at half or more
    majority   the answer most samples gave (after normalising whitespace and case) is the case's answer
    pass_at_k  passes when any sample passes (pass@k with k = samples)
    pass_all   passes when every sample passes (pass^k)
    """

    samples: int = 1
    reduce: str = "mean"

    REDUCERS = ("mean", "majority", "pass_at_k", "pass_all")

    def as_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "reduce": self.reduce} if self.samples > 1 else {}


@dataclass(frozen=True)
class Request:
    """One unit of generation work: a full chat for one subject with its decoding params (and the tools offered)."""

    messages: tuple[Message, ...]
    params: GenerationParams
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None

    @property
    def key(self) -> str:
        tools = {"tools": list(self.tools), "tool_choice": self.tool_choice} if self.tools else {}  # none: the key it had
        return content_hash({"messages": list(self.messages), "params": self.params.as_dict(), **tools}, 32)


@dataclass(frozen=True)
class Output:
    """What a subject produced for one request, with its measured cost."""

    text: str
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_s: float | None = None  # wall time of the call that produced it (a whole batch, locally)
    cached: bool = False
    batch_size: int = 1  # requests served by that call: latency_s / batch_size is this one's compute share


@dataclass(frozen=True)
class Score:
    """A scorer's verdict. passed=None means unscored (e.g. an unparsable judge reply)."""

    passed: bool | None
    value: float | None = None
    detail: str = ""
    scorer: str = ""
    label: str | None = None  # the predicted class, for classification scorers

    @classmethod
    def unscored(cls, detail: str, scorer: str = "") -> Score:
        return cls(passed=None, value=None, detail=detail, scorer=scorer)


@dataclass(frozen=True)
class CaseResult:
    """One case scored for one subject."""

    case: Case
    output: Output
    scores: tuple[Score, ...]
    samples: tuple[CaseResult, ...] = ()  # a sampled case: each sample scored; `output` and `scores` are reduced

    @property
    def outputs(self) -> tuple[Output, ...]:
        """Every answer generated for the case: its samples', or its one output."""
        return tuple(s.output for s in self.samples) if self.samples else (self.output,)

    @property
    def passed(self) -> bool | None:
        if not self.scores or any(s.passed is None for s in self.scores):
            return None  # nothing scored it: never a pass
        return all(s.passed for s in self.scores)

    @property
    def value(self) -> float | None:
        values = [s.value for s in self.scores if s.value is not None]
        return sum(values) / len(values) if values else None

    @property
    def failure_detail(self) -> str:
        return "; ".join(f"{s.scorer}: {s.detail}" for s in self.scores if s.passed is not True)


@dataclass(frozen=True)
class TrainingCost:
    """What training a candidate took, from its manifest: priced in the TCO."""

    gpu_hours: float
    wall_s: float


@dataclass(frozen=True)
class SubjectInfo:
    """Provenance of a subject: goes into every report."""

    role: Literal["baseline", "candidate", "judge"]
    kind: str  # a registered subject kind: hf, openai, outputs, ...
    name: str
    fingerprint: str
    details: dict[str, Any] = field(default_factory=dict)
    training: TrainingCost | None = None
    # what model this is, whatever its tokenizer files or prompt: for a local base model the hash of
    # its weights; elsewhere the fingerprint. Goldens record it, so they are never used on another base.
    identity: str = ""
    spec: str = ""  # what names it again (--baseline=SPEC): an existing path made absolute, else as given
    generation: str = ""  # how it generates, where that can change its answers: "float32 on cpu, batch auto (...)"
    generation_key: str = ""  # what its outputs are cached under: the fingerprint and the dtype (default: fingerprint)

    @property
    def model_identity(self) -> str:
        return self.identity or self.fingerprint

    @property
    def cache_key(self) -> str:
        return self.generation_key or self.fingerprint


@dataclass(frozen=True)
class SuiteResult:
    """All cases of one suite scored for one subject."""

    suite: str
    subject: SubjectInfo
    results: tuple[CaseResult, ...]

    @property
    def n(self) -> int:
        return len(self.results)

    @property
    def n_passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def unscored(self) -> tuple[CaseResult, ...]:
        return tuple(r for r in self.results if r.passed is None)

    @property
    def pass_rate(self) -> float:
        return self.n_passed / self.n if self.n else 0.0


# ---- what a judge replied: its text, and the top log-probabilities of each token ------------------

@dataclass(frozen=True)
class TokenChoice:
    token: str
    logprob: float


@dataclass(frozen=True)
class ReplyToken:
    token: str
    top: tuple[TokenChoice, ...]  # the most likely tokens at this position, this one among them


@dataclass(frozen=True)
class JudgeReply:
    text: str
    tokens: tuple[ReplyToken, ...] = ()  # empty where the judge returns no log-probabilities
    tokens_in: int | None = None
    tokens_out: int | None = None
    form: str = "prompt"  # how the reply was constrained: json_schema, json_object+schema or prompt
    cached: bool = False


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    method: str


@dataclass(frozen=True)
class Flip:
    """A case whose verdict differs between baseline and candidate."""

    case: Case
    baseline: CaseResult
    candidate: CaseResult

    @property
    def direction(self) -> Literal["regression", "fix"]:
        return "regression" if self.baseline.passed else "fix"


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of two subjects over the same cases."""

    suite: str
    n: int
    both_pass: int
    both_fail: int
    regressions: tuple[Flip, ...]  # baseline pass -> candidate fail
    fixes: tuple[Flip, ...]  # baseline fail -> candidate pass
    baseline_rate: float
    candidate_rate: float
    baseline_interval: Interval
    candidate_interval: Interval
    mcnemar_p: float
    mean_value_delta: float | None = None
    value_delta_interval: Interval | None = None


@dataclass(frozen=True)
class GateDecision:
    """The verdict of one gate criterion of one suite."""

    suite: str
    criterion: str  # e.g. "golden_regressions"
    status: Literal["passed", "blocked", "inconclusive", "skipped", "error"]
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    breaches: tuple[str, ...] = ()

    @property
    def blocks(self) -> bool:
        return self.status in ("blocked", "error") or (
            self.status == "inconclusive" and self.figures.get("inconclusive_blocks", True)
        )


@dataclass(frozen=True)
class Prompt:
    """How a case becomes a chat: a system prompt and few-shot turns placed before the case."""

    system: str | None = None
    few_shot: tuple[tuple[str, str], ...] = ()

    def render(self, case: Case) -> tuple[Message, ...]:
        messages: list[Message] = []
        has_system = bool(case.messages) and case.messages[0]["role"] == "system"
        if self.system and not has_system:
            messages.append({"role": "system", "content": self.system})
        for user, assistant in self.few_shot:
            messages.append({"role": "user", "content": user})
            messages.append({"role": "assistant", "content": assistant})
        messages.extend(case.messages)
        return tuple(messages)


ScoreFn = Callable[[Case, str], Score]


@dataclass(frozen=True)
class Scorer:
    """A named, configured scorer. `labels` is set for classification scorers (per-class F1)."""

    name: str
    fn: ScoreFn
    labels: tuple[str, ...] | None = None
    # Model scorers are called with the subject's perplexity of `expected` instead of the output.
    needs_perplexity: bool = False
    # Every case must carry `expected` (checked when the suite loads, not when it runs).
    needs_expected: bool = False
    # Scorers that read their suite (a canary, the system prompt) are bound to it once it has loaded.
    bind: Callable[[SuiteContext], Scorer] | None = None
    # Whether a larger `value` is better (False for perplexity and a leaked word run): reports say which.
    higher_is_better: bool = True

    def __call__(self, case: Case, output: Any) -> Score:
        score = self.fn(case, output)
        return score if score.scorer else replace(score, scorer=self.name)  # a Score carries its scorer's name


@dataclass(frozen=True)
class SuiteContext:
    """What a scorer may read of its suite once it has loaded: the kind's own keys, the system prompts, the cases."""

    options: dict[str, Any]
    system_prompts: tuple[str, ...]
    cases: tuple[Case, ...]
    role_systems: dict[str, str] = field(default_factory=dict)  # each subject's own system prompt ("" for none)


@dataclass(frozen=True)
class Suite:
    """A validated suite: cases, per-subject prompts, decoding params, scorers, gate settings."""

    name: str
    kind: str  # a registered kind: pytest_ftgate.kinds.get_kind(kind)
    path: Path
    cases: tuple[Case, ...]
    prompts: dict[str, Prompt]  # "baseline" and "candidate"
    params: GenerationParams
    scorers: tuple[Scorer, ...]
    gate: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)  # the kind's own suite keys, parsed
    description: str = ""
    features: dict[str, Any] = field(default_factory=dict)  # keys any suite may declare (kinds.SuiteFeature) -> parsed spec
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict, repr=False, compare=False)
    scorer_specs: tuple[Any, ...] = ()  # the `scorers:` entries as written, arguments and all
    sampling: Sampling = Sampling()  # generate.samples and generate.reduce

    @property
    def definition(self) -> dict[str, str]:
        """Hashes of what decides a pass besides the cases: the scorers with their arguments, each subject's
        prompt, the decoding parameters. Golden files and the promotion contract bind them."""
        return {
            "scorers": content_hash(list(self.scorer_specs) or [s.name for s in self.scorers]),
            "prompts": content_hash({k: [v.system, list(v.few_shot)] for k, v in sorted(self.prompts.items())
                                     if k in ("baseline", "candidate")}),
            "generate": content_hash({**self.params.as_dict(), **self.sampling.as_dict()}),
        }

    @property
    def hash(self) -> str:
        """What the suite is: its cases, what decides a pass, and its features' specs (a perturb: block)."""
        features = {"features": content_hash({k: repr(v) for k, v in sorted(self.features.items())})} if self.features else {}
        return content_hash({"cases": [[c.id, c.content_hash] for c in self.cases], **self.definition, **features})

    @property
    def labels(self) -> tuple[str, ...] | None:
        for s in self.scorers:
            if s.labels:
                return s.labels
        return None


@dataclass(frozen=True)
class SuiteOutcome:
    """One suite of a gate run, decided: what the reports and a kind's `headline` and `report` read."""

    suite: Suite
    gate: dict[str, Any]
    baseline: SuiteResult
    candidate: SuiteResult | None
    comparison: Comparison | None
    decisions: tuple[GateDecision, ...]
    state: Any = None  # what the suite's kind prepared (e.g. its golden set)
    features: dict[str, Any] = field(default_factory=dict)  # each declared feature's result in this run, by its key

    @property
    def could_not_run(self) -> bool:
        """Every criterion ended in an error (a judge refused, outputs missing): its rates measure nothing."""
        return bool(self.decisions) and all(d.status == "error" for d in self.decisions)


@dataclass(frozen=True)
class Threshold:
    """One `TARGET:VALUE` override of a kind's or a suite's main threshold (--ftgate-fail, ini ftgate_fail)."""

    target: str
    value: float

    def applies_to(self, suite: Suite) -> bool:
        return self.target in (suite.kind, suite.name)

    def __str__(self) -> str:
        return f"{self.target}:{self.value:.4g}"

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """Parse `golden:5%` or `routing:0.9`; ValueError says how to write it."""
        target, sep, value = text.strip().partition(":")
        if not sep or not target or not value:
            raise ValueError(f"{text!r} is not TARGET:VALUE; write e.g. golden:5% or format:0.95")
        try:
            number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
        except ValueError:
            raise ValueError(f"{text!r}: {value!r} is not a number or percentage (5%, 0.05)") from None
        if not 0 <= number <= 1:
            raise ValueError(f"{text!r}: the threshold must be between 0% and 100%")
        return cls(target, number)

    @classmethod
    def parse_list(cls, text: str) -> tuple[Threshold, ...]:
        """Parse a comma list, `golden:1%,format:90%`: how --ftgate-fail and the ini key ftgate_fail are read."""
        parts = [part for part in text.split(",") if part.strip()]
        if not parts:
            raise ValueError(f"{text!r} names no threshold; write e.g. golden:5% or golden:1%,format:90%")
        return tuple(cls.parse(part) for part in parts)
