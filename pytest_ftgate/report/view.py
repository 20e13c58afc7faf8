"""What a report says, computed once from a GateRun: the renderers (terminal, Markdown, HTML, JSON)
receive only this view and only format it. A suite kind adds its own section (`SuiteKind.report`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..cost.tco import TCO, SubjectCost
from ..kinds import get_kind
from ..kinds.base import FeatureSection, clip, seconds  # noqa: F401  (clip, seconds: the renderers import them here)
from ..gating.runner import GateRun
from ..stats import per_class_prf
from ..types import CaseResult, Flip, GateDecision, Interval, SubjectInfo, SuiteOutcome

STATUS_MARK = {"passed": "PASS", "blocked": "BLOCK", "inconclusive": "INCONCLUSIVE", "skipped": "SKIP", "error": "ERROR"}
MIN_BOOTSTRAP_N = 20  # below it a bootstrap interval of a mean delta means little: none is shown
VERDICT_TEXT = {
    "promoted": "promoted",
    "blocked": "blocked",
    "error": "error: the gate could not run",
    "baseline-only": "baseline only (red phase): nothing to promote",
    "partial": "partial: not a promotion",
}


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def money(x: float | None) -> str:
    """Dollars with the precision that matters: cents and below are not rounded to $0.00."""
    if x is None:
        return "unknown"
    if x == 0:
        return "$0"
    if abs(x) < 0.01:
        return f"${x:.4f}"
    if abs(x) < 1:
        return f"${x:.3f}"
    return f"${x:,.2f}"


@dataclass(frozen=True)
class SuiteRow:
    """One suite in the summary table: the measure its gate decided on."""

    suite: str
    kind: str
    path: str
    measure: str
    baseline: float | None
    candidate: float | None
    delta: float | None
    interval: Interval | None
    lower_is_better: bool
    decision: str  # the worst status among its criteria
    n: int


@dataclass(frozen=True)
class FlipRow:
    suite: str
    case_id: str
    direction: str  # regression | fix
    input: str
    baseline: str
    candidate: str
    why: str


@dataclass(frozen=True)
class ClassTable:
    suite: str
    roles: tuple[str, ...]
    rows: tuple[tuple[str, int, tuple[tuple[float, float, float], ...]], ...]  # label, support, (p, r, f1) per role


@dataclass(frozen=True)
class CostView:
    tco: TCO
    rows: tuple[SubjectCost, ...]
    latency_label: str  # what the latency columns mean at the batch size used
    curve: dict[str, list[tuple[float, float]]]  # role -> (requests in millions, cumulative USD)
    noisy: str = ""  # why the cost figures are too noisy to decide on ('' when they are not)


@dataclass(frozen=True)
class CaseOutcome:
    """One case as one subject answered it."""

    output: str
    passed: bool | None
    value: float | None
    scores: tuple[dict[str, Any], ...]
    tokens_in: int | None
    tokens_out: int | None
    latency_s: float | None
    batch_size: int
    cached: bool


@dataclass(frozen=True)
class CaseRow:
    id: str
    input: str
    expected: Any
    tags: tuple[str, ...]
    baseline: CaseOutcome
    candidate: CaseOutcome | None


@dataclass(frozen=True)
class SubjectTotals:
    n: int
    passed: int
    mean_tokens_in: float | None
    mean_tokens_out: float | None


@dataclass(frozen=True)
class SuiteDetail:
    """Everything about one suite the reports show beside its row."""

    suite: str
    kind: str
    path: str
    suite_hash: str
    gate: dict[str, Any]
    decisions: tuple[GateDecision, ...]
    notes: tuple[str, ...]  # tokens per request, the kind's own lines, mean score delta
    flips: tuple[FlipRow, ...]
    baseline_failures: tuple[tuple[str, str, str], ...]  # red phase: (case id, output, why)
    baseline: SubjectTotals
    candidate: SubjectTotals | None
    cases: tuple[CaseRow, ...] = ()
    comparison: dict[str, Any] | None = None  # the paired figures: flip table, rates, intervals, McNemar
    per_class: dict[str, dict[str, dict[str, float]]] | None = None  # role -> label -> precision/recall/f1/support
    kind_data: Any = None  # what the suite's kind records about this run (its report section's data)
    sections: tuple[FeatureSection, ...] = ()  # what the suite's features add (a perturbation search)

    @property
    def n(self) -> int:
        return self.baseline.n


@dataclass(frozen=True)
class ReportView:
    verdict: str
    verdict_text: str
    baseline: SubjectInfo
    candidate: SubjectInfo | None
    suite_files: tuple[str, ...]
    rows: tuple[SuiteRow, ...]
    details: tuple[SuiteDetail, ...]
    classes: tuple[ClassTable, ...]
    cost: CostView | None
    not_run: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)  # provenance: when, where, versions, options
    notices: tuple[str, ...] = ()  # said at the top of every report (e.g. the same weights on both sides)
    unchecked: tuple[str, ...] = ()  # criteria that ran but checked nothing
    checks: tuple[GateDecision, ...] = ()  # decisions about the run as a whole (leakage)
    contract: dict[str, Any] | None = None  # the promotion contract's terms and breaches (a run with a candidate)
    latency: dict[str, list[float]] = field(default_factory=dict)  # role -> compute seconds per request
    trend: dict[str, list[Any]] = field(default_factory=dict)  # suite -> history.TrendPoint, oldest first, this run last

    @property
    def flips(self) -> list[FlipRow]:
        return [f for d in self.details for f in d.flips]


def build_view(run: GateRun, past: dict[str, list[Any]] | None = None) -> ReportView:
    """The view of a run; `past` is each suite's trend from the history store (this run is added last)."""
    verdict = run.verdict
    text = VERDICT_TEXT[verdict]
    if verdict == "partial":
        parts = []
        if run.not_run:
            parts.append(f"{len(run.not_run)} criteria not run: {', '.join(run.not_run[:8])}{' …' if len(run.not_run) > 8 else ''}")
        if run.unchecked:
            parts.append(f"{len(run.unchecked)} criteria checked nothing: {', '.join(run.unchecked[:8])}")
        parts += [f"promotion contract, {b}" for b in run.breaches]
        text += f" ({'; '.join(parts)})" if parts else ""
    if verdict == "error":
        failed = [f"{o.suite.name}::{d.criterion}" for o in run.outcomes for d in o.decisions if d.status == "error"]
        text += f" ({', '.join(failed[:8])}{' …' if len(failed) > 8 else ''})" if failed else ""
    if verdict in ("error", "blocked") and run.breaches:  # what else stands between this run and a promotion
        text += "; nor could it promote: " + "; ".join(f"promotion contract, {b}" for b in run.breaches)
    if verdict == "baseline-only" and run.blocked:  # red: the exit is 1, and the line says why
        blocking = [f"{o.suite.name}::{d.criterion}" for o in run.outcomes for d in o.decisions if d.blocks]
        text = (f"baseline only (red phase): the baseline fails {len(blocking)} "
                f"{'criterion' if len(blocking) == 1 else 'criteria'} "
                f"({', '.join(blocking[:8])}{' …' if len(blocking) > 8 else ''}), exit 1; nothing to promote")
    cost = _cost(run.tco) if run.tco is not None else None
    notices = list(run.notices)
    if "rerun_check" in run.info:
        r = run.info["rerun_check"]
        notices.append(f"rerun check: {r['cases']} greedy case(s) of {r['subject']} generated twice, uncached: "
                       f"{r['differing']} differed (the serving stack is deterministic on them)")
    return ReportView(
        verdict=verdict,
        verdict_text=text,
        baseline=run.baseline,
        candidate=run.candidate,
        suite_files=tuple(str(o.suite.path) for o in run.outcomes),
        rows=tuple(_row(o) for o in run.outcomes),
        details=tuple(_detail(o) for o in run.outcomes),
        classes=tuple(t for o in run.outcomes if (t := _classes(o)) is not None),
        cost=cost,
        not_run=run.not_run,
        info=run.info,
        notices=tuple(notices),
        unchecked=tuple(run.unchecked),
        checks=run.checks,
        contract=run.contract.to_json() if run.contract is not None else None,
        latency=_latency(run),
        trend=_trend(run, past or {}),
    )


def _trend(run: GateRun, past: dict[str, list[Any]]) -> dict[str, list[Any]]:
    from ..stores.history import TrendPoint

    out = {}
    for o in run.outcomes:
        row = _row(o)
        value = row.candidate if row.candidate is not None else row.baseline
        now = TrendPoint(0, run.info.get("finished_at", ""), value, False, current=True, measure=row.measure)
        # the runs that measured what this one does: a red-phase "baseline passes" is not a "goldens regressed"
        same = [p for p in past.get(o.suite.name, []) if p.measure == row.measure]
        out[o.suite.name] = [*same, now]
    return out


def _row(o: SuiteOutcome) -> SuiteRow:
    head = get_kind(o.suite.kind).headline(o)
    statuses = [d.status for d in o.decisions]
    decision = next((s for s in ("error", "blocked", "inconclusive") if s in statuses),
                    "passed" if "passed" in statuses else "skipped")
    if o.could_not_run:  # no figure of a suite that could not run is shown as if it were measured
        return SuiteRow(o.suite.name, o.suite.kind, str(o.suite.path), head.measure, None, None, None, None,
                        head.lower_is_better, decision, o.baseline.n)
    return SuiteRow(o.suite.name, o.suite.kind, str(o.suite.path), head.measure, head.baseline, head.candidate,
                    head.delta, head.interval, head.lower_is_better, decision, o.baseline.n)


def _case_outcome(r: CaseResult) -> CaseOutcome:
    o = r.output
    return CaseOutcome(o.text, r.passed, r.value, tuple(asdict(s) for s in r.scores), o.tokens_in, o.tokens_out,
                       o.latency_s, o.batch_size, o.cached)


def _totals(results: tuple[CaseResult, ...], n: int, passed: int) -> SubjectTotals:
    t_in, t_out = mean_tokens(results)
    return SubjectTotals(n, passed, t_in, t_out)


def _comparison(o: SuiteOutcome) -> dict[str, Any] | None:
    c = o.comparison
    if c is None:
        return None
    return {
        "n": c.n, "both_pass": c.both_pass, "both_fail": c.both_fail,
        "pass_to_fail": len(c.regressions), "fail_to_pass": len(c.fixes),
        "baseline_rate": c.baseline_rate, "candidate_rate": c.candidate_rate,
        "baseline_wilson": [c.baseline_interval.low, c.baseline_interval.high],
        "candidate_wilson": [c.candidate_interval.low, c.candidate_interval.high],
        "mcnemar_p": c.mcnemar_p, "mean_value_delta": c.mean_value_delta,
        "value_delta_interval": None if c.value_delta_interval is None else asdict(c.value_delta_interval),
    }


def _detail(o: SuiteOutcome) -> SuiteDetail:
    flips: list[Flip] = list(o.comparison.regressions) + list(o.comparison.fixes) if o.comparison else []
    failing = ()
    if o.candidate is None:
        failing = tuple((r.case.id, r.output.text, r.failure_detail) for r in o.baseline.results if not r.passed)
    kind = get_kind(o.suite.kind)
    section = kind.report(o) if kind.report is not None else None
    cand_by_id = {r.case.id: r for r in o.candidate.results} if o.candidate else {}
    cases = tuple(
        CaseRow(r.case.id, r.case.messages[-1]["content"], r.case.expected, tuple(r.case.tags), _case_outcome(r),
                _case_outcome(cand_by_id[r.case.id]) if r.case.id in cand_by_id else None)
        for r in o.baseline.results
    )
    return SuiteDetail(
        suite=o.suite.name,
        kind=o.suite.kind,
        path=str(o.suite.path),
        suite_hash=o.suite.hash,
        gate=dict(o.gate),
        decisions=o.decisions,
        notes=tuple(_notes(o, section.lines if section is not None else ())),
        flips=tuple(
            FlipRow(o.suite.name, f.case.id, f.direction, f.case.messages[-1]["content"], f.baseline.output.text,
                    f.candidate.output.text, f.candidate.failure_detail or f.baseline.failure_detail)
            for f in flips
        ),
        baseline_failures=failing,
        baseline=_totals(o.baseline.results, o.baseline.n, o.baseline.n_passed),
        candidate=None if o.candidate is None else _totals(o.candidate.results, o.candidate.n, o.candidate.n_passed),
        cases=cases,
        comparison=_comparison(o),
        per_class=class_stats(o) if o.suite.labels else None,
        kind_data=section.data if section is not None else None,
        sections=_sections(o),
    )


def _sections(o: SuiteOutcome) -> tuple[FeatureSection, ...]:
    """How a sampled suite's samples agreed (kinds.sampling), then what each feature the suite declared shows of its
    result (kinds.SuiteFeature.section)."""
    from ..kinds import get_feature

    from ..kinds.sampling import section as samples_section

    found = (samples_section(o), *(get_feature(key).section(o, result) for key, result in o.features.items()))
    return tuple(s for s in found if s is not None)


def mean_tokens(results: tuple[CaseResult, ...]) -> tuple[float | None, float | None]:
    ins = [r.output.tokens_in for r in results if r.output.tokens_in is not None]
    outs = [r.output.tokens_out for r in results if r.output.tokens_out is not None]
    return (sum(ins) / len(ins) if ins else None, sum(outs) / len(outs) if outs else None)


def _notes(o: SuiteOutcome, kind_lines: tuple[str, ...]) -> list[str]:
    """Tokens each subject really sends, the kind's own lines, and the paired delta of a continuous score."""
    out, parts = [], []
    for role, res in (("baseline", o.baseline), ("candidate", o.candidate)):
        if res is not None:
            t_in, t_out = mean_tokens(res.results)
            if t_in is not None:
                parts.append(f"{role} {t_in:.0f} in / {t_out or 0:.0f} out")
    if parts:
        out.append("tokens per request: " + ", ".join(parts))
    out.extend(kind_lines)
    c = o.comparison
    valued = {s.scorer for r in o.baseline.results for s in r.scores if s.value is not None}
    continuous = any(s.value not in (None, 0.0, 1.0) for r in o.baseline.results for s in r.scores)
    # A mean over scorers on different scales (a 0/1 canary and a word count) means nothing: only one scorer's
    if c is not None and continuous and len(valued) == 1 and c.mean_value_delta is not None:
        scorer = next(iter(valued))
        lower = any(x.name == scorer and not x.higher_is_better for x in o.suite.scorers)
        better = " (lower is better)" if lower else ""
        if c.n >= MIN_BOOTSTRAP_N and c.value_delta_interval is not None:
            iv = c.value_delta_interval
            out.append(f"mean {scorer} delta {c.mean_value_delta:+.3f}{better} (95% paired {iv.method} {iv.low:+.3f} to "
                       f"{iv.high:+.3f})")
        else:
            out.append(f"mean {scorer} delta {c.mean_value_delta:+.3f}{better} (n={c.n}: too few cases for an interval)")
    return out


def _label(r: CaseResult) -> str | None:
    return next((s.label for s in r.scores if s.label is not None), None)


def class_stats(o: SuiteOutcome) -> dict[str, dict[str, dict[str, float]]]:
    labels = o.suite.labels or ()
    return {
        role: per_class_prf(labels, [str(r.case.expected) for r in res.results], [_label(r) for r in res.results])
        for role, res in (("baseline", o.baseline), ("candidate", o.candidate)) if res is not None
    }


def _classes(o: SuiteOutcome) -> ClassTable | None:
    if not o.suite.labels:
        return None
    stats = class_stats(o)
    rows = tuple(
        (label, int(stats["baseline"][label]["support"]),
         tuple((m[label]["precision"], m[label]["recall"], m[label]["f1"]) for m in stats.values()))
        for label in o.suite.labels
    )
    return ClassTable(o.suite.name, tuple(stats), rows)


def _cost(tco: TCO) -> CostView:
    batches = {s.batch_size for s in tco.subjects if s.batch_size}
    if batches:
        b = ", ".join(str(x) for x in sorted(batches))
        latency = (f"latency = wall time of the batch a request was in (batch size {b}); compute = that time / "
                   f"the batch size; costs assume serving at batch size {b}")
    else:
        latency = "latency = wall time of each request"
    per_day = tco.pricing.requests_per_day
    horizon = 365 if tco.break_even_days is None else max(30, min(3650, int(tco.break_even_days * 2) + 1))
    curve = {role: [(d * per_day / 1e6, cost) for d, cost in enumerate(values)] for role, values in tco.curve(horizon).items()}
    noisy = tco.break_even_note.partition("; ")[2] if "too noisy" in tco.break_even_note else ""
    return CostView(tco, tco.subjects, latency, curve, noisy)


def _latency(run: GateRun) -> dict[str, list[float]]:
    series: dict[str, list[float]] = {}
    for role in ("baseline", "candidate"):
        values = [out.latency_s / max(1, out.batch_size)
                  for o in run.outcomes if getattr(o, role) is not None
                  for r in getattr(o, role).results for out in r.outputs if out.latency_s is not None]
        if values:
            series[role] = values
    return series


def interval_text(row: SuiteRow) -> str:
    return "—" if row.interval is None else f"{pct(row.interval.low)}–{pct(row.interval.high)}"


def delta_text(row: SuiteRow) -> str:
    return "—" if row.delta is None else f"{100 * row.delta:+.1f}pp"
