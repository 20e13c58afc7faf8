"""Perturbations, shrunk by hypothesis: does a small change to a case's input break its output?

A suite's `perturb:` block names strategies (typos, case, ...), a budget of examples and an
invariant. Each strategy is a function `(text, draw) -> text` whose edits hypothesis can shrink
towards none, and none is a no-op. The search runs per case, in two passes with one seed:

1. plan: hypothesis draws the budget's perturbed inputs (no model involved), so the runner can
   generate them for each subject in one batched pass through the cache;
2. for each subject, every example is checked against the invariant, and the first break of a
   case is searched again with the same seed: hypothesis reaches it from the outputs already
   generated and shrinks it to the smallest perturbation that still breaks, asking the callback
   for single generations (cached too).

Hypothesis runs quiet, seeded, with no example database, no deadline and no health checks, and
without the features that would tie its choices to anything but the seed and the answers (see
`isolated_hypothesis`). A rerun therefore asks for the same inputs, all served by the cache.
hypothesis is imported only when a search runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from random import Random
from typing import Any

from ..stats import wilson_interval
from ..types import Case, Interval, content_hash
from .perturb_strategies import STRATEGIES, Draw, describe_change

INVARIANTS = ("scorers", "label_unchanged")


# ---- the `perturb:` block ----------------------------------------------------------------------

@dataclass(frozen=True)
class PerturbSpec:
    """A suite's `perturb:` block, validated."""

    strategies: tuple[str, ...] = tuple(STRATEGIES)
    examples: int = 50  # the suite's budget of perturbed inputs (at most this many distinct ones)
    invariant: str = "scorers"  # or label_unchanged
    max_break_rate: float | None = None  # the most a subject (the candidate, else the baseline) may break
    max_increase: float = 0.0  # how far the candidate's rate may exceed the baseline's
    shrink: int = 3  # failing cases shrunk per subject (others are shown as drawn)
    shrink_generations: int = 64  # new generations one shrink may ask for


SPEC_KEYS = tuple(PerturbSpec.__dataclass_fields__)


def _positive_int(value: Any, zero: bool = False) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= (0 if zero else 1)


def _fraction(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def parse_perturb(raw: Any, scorers: Sequence[Any] | None) -> tuple[PerturbSpec | None, list[tuple[str, tuple[Any, ...]]]]:
    """The spec of a `perturb:` block, and every problem with it as (message, key path under perturb).

    `scorers` are the suite's (None when they did not load: their own errors say why)."""
    problems: list[tuple[str, tuple[Any, ...]]] = []
    example = "e.g. `perturb: {strategies: [typos, case], examples: 50, invariant: scorers}`"
    if not isinstance(raw, dict):
        return None, [(f"perturb must be a mapping, {example}", ())]
    for key in sorted(set(raw) - set(SPEC_KEYS), key=str):
        problems.append((f"unknown perturb key {key!r}; allowed: {', '.join(SPEC_KEYS)}", (key,)))
    names = raw.get("strategies", list(STRATEGIES))
    if not isinstance(names, list) or not names:
        problems.append((f"perturb strategies must be a non-empty list of: {', '.join(STRATEGIES)}", ("strategies",)))
        names = []
    for i, name in enumerate(names):
        if not isinstance(name, str) or name not in STRATEGIES:
            problems.append((f"unknown perturbation strategy {name!r}; known: {', '.join(STRATEGIES)}", ("strategies", i)))
    checks = {
        "examples": (_positive_int, "a positive integer (the suite's budget of perturbed inputs, e.g. 50)"),
        "max_break_rate": (_fraction, "a fraction between 0 and 1 (0.1 = 10% of the examples may break)"),
        "max_increase": (_fraction, "a fraction between 0 and 1 (0.05 = five points above the baseline's rate)"),
        "shrink": (lambda v: _positive_int(v, zero=True), "an integer >= 0 (failing cases shrunk per subject)"),
        "shrink_generations": (_positive_int, "a positive integer (generations one shrink may ask for)"),
    }
    for key, (ok, what) in checks.items():
        if key in raw and not ok(raw[key]):
            problems.append((f"perturb {key} must be {what}, got {raw[key]!r}", (key,)))
    invariant = raw.get("invariant", "scorers")
    if invariant not in INVARIANTS:
        problems.append((f"perturb invariant must be one of {', '.join(INVARIANTS)}, got {invariant!r}", ("invariant",)))
    elif scorers is None:
        pass
    elif invariant == "label_unchanged" and not any(s.labels for s in scorers):
        problems.append((("perturb invariant label_unchanged compares predicted labels, and no scorer of this suite "
                          "predicts one: add a `label` or `choice` scorer, or use `invariant: scorers`"), ("invariant",)))
    elif not any(not s.needs_perplexity for s in scorers):
        problems.append((("perturb invariant scorers checks the suite's `scorers:` on each perturbed output, and "
                          "this suite has none that read the output: add one, e.g. `scorers: [json_valid]`"), ("invariant",)))
    if importlib.util.find_spec("hypothesis") is None:
        problems.append(("perturb needs the hypothesis package: pip install 'pytest-ftgate[perturb]'", ()))
    if problems:
        return None, problems
    given = {k: raw[k] for k in SPEC_KEYS if k in raw}
    given["strategies"] = tuple(dict.fromkeys(names))
    return PerturbSpec(**given), []


# ---- invariants ----------------------------------------------------------------------------------

class Invariant:
    """What a perturbed output must keep: the suite's scorers passing, or the original's label."""

    def __init__(self, name: str, scorers: Sequence[Any]):
        self.name = name
        self.scorers = tuple(s for s in scorers if not s.needs_perplexity)  # they score `expected`, not the output

    def reference(self, case: Case, output: str) -> Any:
        """What the original output gives the perturbed ones to keep; None: the case is not counted
        (its original already fails the scorers, or no label could be read from it)."""
        scores = [s(case, output) for s in self.scorers]
        if self.name == "label_unchanged":
            return next((s.label for s in scores if s.label is not None), None)
        return True if all(s.passed for s in scores) else None

    def broken(self, case: Case, reference: Any, output: str) -> tuple[bool | None, str]:
        """(whether the output breaks the invariant, why); None when a scorer could not score it."""
        scores = [s(case, output) for s in self.scorers]
        if self.name == "label_unchanged":
            label = next((s.label for s in scores if s.label is not None), None)
            return label != reference, "" if label == reference else f"label {reference!r} became {label!r}"
        if any(s.passed is None for s in scores):
            return None, "; ".join(s.detail for s in scores if s.passed is None)
        return not all(s.passed for s in scores), "; ".join(f"{s.scorer}: {s.detail}" for s in scores if not s.passed)


# ---- the search ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    """One perturbed input of a case: the case's last user turn rewritten by a strategy."""

    case: Case
    strategy: str
    text: str

    @property
    def original(self) -> str:
        return self.case.messages[-1]["content"]

    @property
    def perturbed_case(self) -> Case:
        messages = (*self.case.messages[:-1], {**self.case.messages[-1], "content": self.text})
        return replace(self.case, id=f"{self.case.id}~{content_hash(self.text, 10)}", messages=messages)


@dataclass(frozen=True)
class Plan:
    """The perturbed inputs of one suite, drawn before any model runs, and how they were drawn."""

    probes: tuple[Probe, ...]
    budget: dict[str, int]  # case id -> examples hypothesis drew for it
    seeds: dict[str, int]  # case id -> its search's seed


Generate = Callable[[Sequence[Probe]], list[str]]  # perturbed inputs -> outputs (one batched call)


@dataclass(frozen=True)
class Failure:
    """A case whose perturbation broke the invariant: shrunk to the smallest break hypothesis found."""

    case_id: str
    strategy: str
    original_input: str
    drawn_input: str  # the break as first drawn
    minimal_input: str
    original_output: str
    output: str  # for the minimal input
    detail: str
    shrunk: bool  # whether a shrink ran (only the first `shrink` failing cases of a subject are shrunk)
    generations: int = 0  # new generations the shrink asked for
    seconds: float = 0.0

    @property
    def change(self) -> str:
        return describe_change(self.original_input, self.minimal_input)


@dataclass(frozen=True)
class SubjectPerturbation:
    """One subject's perturbation rate over a suite: broken / counted examples."""

    role: str
    counted: int = 0
    broken: int = 0
    excluded: int = 0  # examples of cases whose original output the invariant does not hold for
    unscored: int = 0
    failures: tuple[Failure, ...] = ()
    seconds: float = 0.0
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.broken / self.counted if self.counted else 0.0

    @property
    def interval(self) -> Interval:
        return wilson_interval(self.broken, self.counted)


@dataclass(frozen=True)
class PerturbResult:
    spec: PerturbSpec
    planned: int  # distinct perturbed inputs drawn
    subjects: dict[str, SubjectPerturbation] = field(default_factory=dict)  # role -> its rate


@contextlib.contextmanager
def isolated_hypothesis() -> Iterator[None]:
    """Make hypothesis's choices depend on the seed and the answers alone.

    Two of its features would not: it mixes constants of the local source files into its choices
    (so the examples would depend on what happens to be imported; it also caches them under
    `.hypothesis/`), and it stops shrinking after five minutes (so a slow model would shrink less
    than the same model served from the cache). Our own budget, `shrink_generations`, bounds the
    shrink instead: past it, every new input counts as not breaking, and answers come at once."""
    try:
        from hypothesis.internal.conjecture import engine, providers
        from hypothesis.internal.constants_ast import Constants

        saved = providers._get_local_constants, engine.MAX_SHRINKING_SECONDS
    except (ImportError, AttributeError):  # a hypothesis without these features
        yield
        return
    providers._get_local_constants, engine.MAX_SHRINKING_SECONDS = Constants, 10**9
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants, engine.MAX_SHRINKING_SECONDS = saved
        providers.CONSTANTS_CACHE.cache.clear()


def search(case_: Case, names: Sequence[str], examples: int, seed: int, condition: Callable[[Probe], bool],
           shrink: bool = True) -> Probe | None:
    """hypothesis.find over the perturbations of a case's input (the last user turn) by the named
    strategies: the smallest that meets `condition` within `examples` drawn ones, or None.

    Seeded, quiet, no database, no deadline, no health checks; no-op perturbations are not drawn."""
    import hypothesis.strategies as st
    from hypothesis import HealthCheck, Phase, Verbosity, find, settings
    from hypothesis.errors import NoSuchExample, Unsatisfiable

    text = case_.messages[-1]["content"]

    @st.composite
    def perturbation(draw: Draw) -> Probe:
        name = draw(st.sampled_from(tuple(names)))
        return Probe(case_, name, STRATEGIES[name](text, draw))

    options = settings(database=None, deadline=None, derandomize=False, max_examples=examples, print_blob=False,
                       phases=(Phase.generate, Phase.shrink) if shrink else (Phase.generate,),
                       suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)
    with isolated_hypothesis():
        try:
            return find(perturbation().filter(lambda p: p.text != text), condition, settings=options, random=Random(seed))
        except (NoSuchExample, Unsatisfiable):  # none met it, or the strategies cannot change this input
            return None


def _budget(cases: Sequence[Case], examples: int, seed: int) -> dict[str, int]:
    """The suite's budget spread over its cases, the remainder to a seeded choice of them."""
    share, extra = divmod(examples, len(cases))
    lucky = set(Random(seed).sample(range(len(cases)), extra))
    return {c.id: share + (i in lucky) for i, c in enumerate(cases)}


def plan(suite_name: str, cases: Sequence[Case], spec: PerturbSpec, seed: int = 0) -> Plan:
    """Draw every perturbed input of a suite, deterministically for (seed, suite, case)."""
    budget = {k: v for k, v in _budget(cases, spec.examples, seed).items() if v}
    seeds = {c.id: int(content_hash([seed, suite_name, c.id]), 16) for c in cases}
    probes: list[Probe] = []
    for c in cases:
        if c.id not in budget:
            continue
        drawn: dict[str, Probe] = {}

        def record(p: Probe, drawn: dict[str, Probe] = drawn) -> bool:
            drawn.setdefault(p.text, p)
            return False

        search(c, spec.strategies, budget[c.id], seeds[c.id], record, shrink=False)
        probes.extend(drawn.values())
    return Plan(tuple(probes), budget, seeds)


def run_subject(role: str, plan_: Plan, spec: PerturbSpec, invariant: Invariant, originals: dict[str, str],
                generate: Generate) -> SubjectPerturbation:
    """Check one subject on a plan: generate its probes in one call, count breaks, shrink the first ones.

    Probes of a case whose original output the invariant does not hold for are not generated:
    they could not count."""
    started = time.monotonic()
    references = {c.id: invariant.reference(c, originals[c.id]) for c in {p.case.id: p.case for p in plan_.probes}.values()}
    todo = [p for p in plan_.probes if references[p.case.id] is not None]
    outputs = {(p.case.id, p.text): out for p, out in zip(todo, generate(todo) if todo else [])}
    counted = broken = unscored = 0
    first: dict[str, tuple[Probe, str]] = {}
    for p in todo:
        verdict, detail = invariant.broken(p.case, references[p.case.id], outputs[p.case.id, p.text])
        if verdict is None:
            unscored += 1
            continue
        counted += 1
        if verdict:
            broken += 1
            first.setdefault(p.case.id, (p, detail))
    excluded = len(plan_.probes) - len(todo)
    failures = []
    for i, (probe, detail) in enumerate(first.values()):
        original = originals[probe.case.id]
        failure = Failure(probe.case.id, probe.strategy, probe.original, probe.text, probe.text, original,
                          outputs[probe.case.id, probe.text], detail, shrunk=False)
        if i < spec.shrink:
            known = {text: out for (case_id, text), out in outputs.items() if case_id == probe.case.id}
            failure = _shrink(failure, probe, plan_, spec, invariant, references[probe.case.id], known, generate)
        failures.append(failure)
    return SubjectPerturbation(role, counted, broken, excluded, unscored, tuple(failures), time.monotonic() - started)


class _Stop(BaseException):
    """Carries a generation fault out of hypothesis, which treats every Exception as a failing example."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def _shrink(failure: Failure, probe: Probe, plan_: Plan, spec: PerturbSpec, invariant: Invariant, reference: Any,
            known: dict[str, str], generate: Generate) -> Failure:
    """Search the case again with its seed: hypothesis meets the same break first, then shrinks it.

    New inputs are generated one at a time, at most `shrink_generations` of them; past that, an
    unseen input counts as not breaking, which ends the shrink where it stands."""
    started = time.monotonic()
    asked: list[str] = []

    def breaks(p: Probe) -> bool:
        if p.text not in known:
            if len(asked) >= spec.shrink_generations:
                return False
            asked.append(p.text)
            try:
                known[p.text] = generate([p])[0]
            except Exception as exc:  # noqa: BLE001  hypothesis would take any fault for a break and shrink it
                raise _Stop(exc) from None
        return bool(invariant.broken(p.case, reference, known[p.text])[0])

    case_id = probe.case.id
    try:
        found = search(probe.case, spec.strategies, plan_.budget[case_id], plan_.seeds[case_id], breaks)
    except _Stop as stop:
        raise stop.error from None
    if found is None:  # the search did not meet the break again (it should): show it as drawn
        return replace(failure, generations=len(asked), seconds=time.monotonic() - started)
    detail = invariant.broken(found.case, reference, known[found.text])[1]
    return replace(failure, strategy=found.strategy, minimal_input=found.text, output=known[found.text], detail=detail,
                   shrunk=True, generations=len(asked), seconds=time.monotonic() - started)
