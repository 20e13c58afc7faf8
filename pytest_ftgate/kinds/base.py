"""What a suite kind is: one declaration of its keys, defaults, criteria and report headline.

A kind module builds a `SuiteKind` and registers it (`register_kind`); nothing else in the
package names kinds. The decision helpers shared by several kinds live here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import IncompleteDataError
from ..settings.extensions import load_group
from ..stats import wilson_interval
from ..types import Comparison, GateDecision, Interval, Output, SubjectInfo, Suite, SuiteOutcome, SuiteResult

_NO_DEFAULT = object()


def fraction(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        return f"must be a fraction between 0 and 1 (0.05 for 5%), got {value!r}"
    return None


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, got {value!r}"


@dataclass(frozen=True)
class GateKey:
    """One key of a suite's `gate:` mapping: how to check its value, and its default if any."""

    name: str
    check: Callable[[Any], str | None]  # the problem with a value, or None
    help: str
    default: Any = _NO_DEFAULT

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT


@dataclass(frozen=True)
class SuiteKey:
    """A top-level suite key that only this kind accepts (e.g. a golden suite's `goldens:`)."""

    name: str
    parse: Callable[[Any, Path], Any]  # (value or None, suite file) -> parsed; ValueError says how to fix it
    help: str


@dataclass(frozen=True)
class DecisionContext:
    """What a criterion decides on: one suite, its effective gate, both subjects' results."""

    suite: Suite
    gate: dict[str, Any]
    baseline: SuiteResult
    candidate: SuiteResult | None
    comparison: Comparison | None
    state: Any = None  # what the kind's `prepare` returned (a golden set, ...)
    features: dict[str, Any] = field(default_factory=dict)  # each declared feature's result in this run, by its key
    pricing: Any = None  # cost.pricing.Pricing: what the serving budgets (cost.budgets) price requests at


@dataclass(frozen=True)
class ScoringContext:
    """What a kind that scores for itself gets: both subjects' outputs, in case order."""

    suite: Suite
    outputs: dict[str, list[Output]]  # role -> one output per case
    subjects: dict[str, SubjectInfo]  # role -> who produced them
    services: Any  # runner.Services: the run's config, cache and judges


@dataclass(frozen=True)
class Scored:
    baseline: SuiteResult
    candidate: SuiteResult | None
    state: Any = None  # shown in the reports (kinds give it a `to_json`)


@dataclass(frozen=True)
class ReportSection:
    """What a kind adds to the reports of one suite: lines beside its row, and data for report.json."""

    lines: tuple[str, ...] = ()
    data: Any = None


@dataclass(frozen=True)
class Criterion:
    """One gate criterion: one pytest item, one decision."""

    name: str
    decide: Callable[[DecisionContext], GateDecision]


@dataclass(frozen=True)
class Headline:
    """The suite's row in every report: the measure the gate decided on, for each subject."""

    measure: str  # e.g. "pass rate", "accuracy", "goldens regressed"
    baseline: float | None
    candidate: float | None
    interval: Interval | None  # of the value the row shows (the candidate's, else the baseline's)
    lower_is_better: bool = False

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.candidate is None:
            return None
        return self.candidate - self.baseline


@dataclass(frozen=True)
class SuiteKind:
    """A suite kind, declared once.

    gate_keys        the keys of `gate:` with their checks and defaults
    main_key         what a `TARGET:VALUE` threshold override sets
    criteria         the criteria that apply to a suite under an effective gate (one pytest item each)
    suite_keys       top-level keys only this kind accepts; case_keys, case keys only it accepts
    check            problems across keys, found when the suite loads: [(message, key path)]
    prepare          per-run state before deciding (e.g. read or freeze goldens)
    summary          per-run state from both subjects' results (e.g. rates per category), for the
                     criteria and the reports (its `notes()` lines and `to_json()`)
    score            scores both subjects itself (e.g. with a judge) instead of the suite's scorers
    preflight        checks what the suite needs besides the subjects (e.g. its judge) before anything
                     generates; raises an FtgateError that says what is missing
    allowed_unscored the share of unscored cases a suite tolerates (never passed); above it, an error
    headline         the suite's row in the reports
    report           the kind's own section of the suite's report: lines and JSON data
    quality          whether the suite's pass rate is the "quality" of the TCO table
    sampled          why the kind cannot reduce samples (generate.samples is refused with it); "" when it can
    """

    name: str
    description: str
    gate_keys: tuple[GateKey, ...]
    main_key: str | Callable[[Suite], str]  # a callable when it depends on the suite (e.g. a judge's mode)
    criteria: Callable[[dict[str, Any], Suite], tuple[Criterion, ...]]
    headline: Callable[[SuiteOutcome], Headline]
    suite_keys: tuple[SuiteKey, ...] = ()
    case_keys: tuple[str, ...] = ()
    check: Callable[[dict[str, Any]], list[tuple[str, tuple[Any, ...]]]] | None = None
    prepare: Callable[[Suite, SuiteResult, bool], Any] | None = None
    summary: Callable[[Suite, SuiteResult, SuiteResult | None], Any] | None = None
    score: Callable[[ScoringContext], Scored] | None = None
    preflight: Callable[[Suite, Any], None] | None = None
    report: Callable[[SuiteOutcome], ReportSection] | None = None
    allowed_unscored: Callable[[Suite], float] | None = None
    quality: bool = False
    requires_scorers: bool = True
    sampled: str = ""

    def defaults(self) -> dict[str, Any]:
        return {k.name: k.default for k in self.gate_keys if k.has_default}

    def main_key_of(self, suite: Suite) -> str:
        return self.main_key(suite) if callable(self.main_key) else self.main_key

    def gate_key(self, name: str) -> GateKey | None:
        return next((k for k in self.gate_keys if k.name == name), None)


_KINDS: dict[str, SuiteKind] = {}


def register_kind(kind: SuiteKind) -> SuiteKind:
    """Make a kind known to suites, the gate and the reports (call at import of its module)."""
    _KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> SuiteKind:
    if name not in _KINDS:
        load_group("ftgate.kinds")
    return _KINDS[name]


def kind_names() -> tuple[str, ...]:
    """Every registered kind: ours, then those of installed `ftgate.kinds` entry points."""
    load_group("ftgate.kinds")
    return tuple(_KINDS)


# ---- features: keys any suite may declare beside its kind ----------------------------------------
@dataclass(frozen=True)
class FeatureRun:
    """What a feature's work in a run gets: the suite and its parsed spec, each subject with the prompt key it
    answers with and its scored results, the run's seed, and `generate(subject, jobs) -> outputs`, which goes
    through the run's cache as every other generation does."""

    suite: Suite
    spec: Any
    subjects: dict[str, Any]  # role -> Subject
    prompts: dict[str, str]  # role -> the suite's prompt key it answers with
    results: dict[str, SuiteResult]  # role -> its scored results on the suite's own cases
    seed: int
    generate: Callable[[Any, list[Any]], list[Output]]


@dataclass(frozen=True)
class FeatureSection:
    """What a feature adds to one suite's reports, in each format: report.json data under `key`, terminal and
    Markdown lines, and an HTML template (under pytest_ftgate/templates) that reads `section.view`."""

    key: str
    data: dict[str, Any]
    terminal: Callable[[int, int], list[str]]  # (verbose, at most this many items unless verbose) -> lines
    markdown: Callable[[int], list[str]]  # (at most this many items) -> lines
    html_template: str
    view: Any = None


@dataclass(frozen=True)
class SuiteFeature:
    """A top-level key any suite may declare beside its kind, declared once as a SuiteKind is.

    key       the suite key (`perturb`)
    parse     (raw value, the suite's scorers or None when they did not all load) -> (spec, [(message, key path)])
    criteria  the criteria it adds to a suite that declares it (one pytest item each)
    run       its work in a run, before the suite is decided; the result reaches its criteria as
              `DecisionContext.features[key]` and the reports as `SuiteOutcome.features[key]`
    section   (the decided outcome, its result) -> what the reports show, or None
    sampled   why the feature cannot run on a sampled suite (generate.samples > 1); "" when it can
    """

    key: str
    parse: Callable[[Any, Sequence[Any] | None], tuple[Any, list[tuple[str, tuple[Any, ...]]]]]
    criteria: tuple[Criterion, ...]
    run: Callable[[FeatureRun], Any]
    section: Callable[[SuiteOutcome, Any], FeatureSection | None]
    sampled: str = ""


_FEATURES: dict[str, SuiteFeature] = {}


def register_feature(feature: SuiteFeature) -> SuiteFeature:
    _FEATURES[feature.key] = feature
    return feature


def get_feature(key: str) -> SuiteFeature:
    return _FEATURES[key]


def feature_keys() -> tuple[str, ...]:
    load_group("ftgate.kinds")
    return tuple(_FEATURES)


# ---- decisions shared by several kinds ---------------------------------------------------------

def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def seconds(x: float | None) -> str:
    """A duration as the reports show it: ms below a second."""
    if x is None:
        return "—"
    return f"{1000 * x:,.0f} ms" if x < 1 else f"{x:,.2f} s"


def clip(text: str, width: int) -> str:
    """Text on one line, at most `width` characters."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def rate_figures(k: int, n: int) -> dict[str, Any]:
    w = wilson_interval(k, n)
    return {"k": k, "n": n, "rate": k / n if n else 0.0, "wilson": [w.low, w.high]}


def check_complete(suite_name: str, *results: SuiteResult | None, allowed: float = 0.0) -> None:
    """Unscored cases make a gate lie: raise before deciding anything on them (beyond `allowed`)."""
    for r in results:
        if r is not None and r.unscored and len(r.unscored) > allowed * r.n:
            ids = ", ".join(x.case.id for x in r.unscored[:5])
            raise IncompleteDataError(
                f"suite {suite_name}: {len(r.unscored)} of {r.n} case(s) of the {r.subject.role} could not be scored "
                f"({ids}){f', more than the {100 * allowed:.0f}% allowed' if allowed else ''}; a gate on incomplete "
                "data would lie. See the report for each reason."
            )


def baseline_only(ctx: DecisionContext, criterion: str, note: str = "") -> GateDecision:
    b = ctx.baseline
    return GateDecision(
        ctx.suite.name, criterion, "skipped",
        f"no --candidate: the baseline passes {b.n_passed}/{b.n}{note}", rate_figures(b.n_passed, b.n),
    )


def decide_min_rate(ctx: DecisionContext, criterion: str, threshold: float | None) -> GateDecision:
    """The candidate's (or, in the red phase, the baseline's) pass rate must reach `threshold`."""
    result = ctx.candidate if ctx.candidate is not None else ctx.baseline
    k, n = result.n_passed, result.n
    figures = rate_figures(k, n)
    figures["subject"] = result.subject.role
    low, high = figures["wilson"]
    rate_text = f"{result.subject.role} {k}/{n} = {pct(k / n)} (95% Wilson {pct(low)}–{pct(high)})"
    if threshold is None:  # nothing to decide on: shown, never a pass (the red phase has nothing to promote anyway)
        return GateDecision(ctx.suite.name, criterion, "skipped", f"{rate_text}; no threshold set, so nothing checked",
                            figures)
    figures["threshold"] = threshold
    if k / n >= threshold:
        return GateDecision(ctx.suite.name, criterion, "passed", f"{rate_text} >= {pct(threshold)}", figures)
    reason = f"{rate_text} < required {pct(threshold)}"
    return GateDecision(ctx.suite.name, criterion, "blocked", reason, figures, breaches=(reason,))


def decide_vs_baseline(ctx: DecisionContext) -> GateDecision:
    """Candidate rate minus baseline rate must be at least min_gain (0: not below the baseline)."""
    cmp = ctx.comparison
    if cmp is None:
        return baseline_only(ctx, "vs_baseline")
    min_gain = float(ctx.gate.get("min_gain", 0.0))
    figures = {
        "baseline_rate": cmp.baseline_rate,
        "candidate_rate": cmp.candidate_rate,
        "baseline_wilson": [cmp.baseline_interval.low, cmp.baseline_interval.high],
        "candidate_wilson": [cmp.candidate_interval.low, cmp.candidate_interval.high],
        "regressions": len(cmp.regressions),
        "fixes": len(cmp.fixes),
        "mcnemar_p": cmp.mcnemar_p,
        "n": cmp.n,
        "min_gain": min_gain,
    }
    text = (
        f"candidate {pct(cmp.candidate_rate)} vs baseline {pct(cmp.baseline_rate)} "
        f"({len(cmp.fixes)} fixed, {len(cmp.regressions)} regressed, McNemar p={cmp.mcnemar_p:.3g})"
    )
    if cmp.both_pass == 0 and not cmp.fixes and not cmp.regressions and min_gain <= 0:
        # neither subject passed a case: "not below" holds for a candidate that fails everything
        floor = next((k for k in ("min_accuracy", "min_pass_rate") if k in ctx.gate), None)
        if floor is None:
            return GateDecision(ctx.suite.name, "vs_baseline", "skipped",
                                f"nothing compared: neither subject passed any of the {cmp.n} cases ({text}). Set a "
                                "floor (gate.min_accuracy or min_pass_rate) to require the candidate to pass some", figures)
        text = f"nothing compared: neither subject passed any of the {cmp.n} cases; {floor} decides ({text})"
    gain = cmp.candidate_rate - cmp.baseline_rate
    if gain >= min_gain - 1e-12:
        return GateDecision(ctx.suite.name, "vs_baseline", "passed", text, figures)
    reason = (f"{text}: below the baseline" if min_gain <= 0
              else f"{text}: gain {100 * gain:+.1f}pp < required {100 * min_gain:+.1f}pp")
    return GateDecision(ctx.suite.name, "vs_baseline", "blocked", reason, figures, breaches=(reason,))


def rate_headline(measure: str) -> Callable[[SuiteOutcome], Headline]:
    """A row showing each subject's pass rate (named `measure`), with the shown rate's Wilson interval."""

    def headline(outcome: SuiteOutcome) -> Headline:
        base, cand = outcome.baseline, outcome.candidate
        shown = cand if cand is not None else base
        return Headline(measure, base.pass_rate, cand.pass_rate if cand is not None else None,
                        wilson_interval(shown.n_passed, shown.n))

    return headline
