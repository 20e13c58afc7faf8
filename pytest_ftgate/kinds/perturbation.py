"""`perturb:`, a feature any suite may declare beside its kind: its inputs perturbed by a seeded
hypothesis search (pytest_ftgate.scoring.perturb), each failing case shrunk to its smallest
breaking input. Declared once here: the key and how it parses, the `perturbation` criterion, the
search as the run's work, and what every report shows of it. Nothing else names it.

    perturb:
      strategies: [typos, case]     # default: all of them
      examples: 50                  # the suite's budget of perturbed inputs
      invariant: scorers            # or label_unchanged
      max_increase: 0.0             # how far the candidate's break rate may exceed the baseline's
      max_break_rate: 0.2           # optional: an absolute limit
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import GateRunError, IncompleteDataError
from ..scoring.perturb import PerturbResult, SubjectPerturbation, parse_perturb
from ..types import GateDecision, Interval, SuiteOutcome
from .base import (Criterion, DecisionContext, FeatureRun, FeatureSection, SuiteFeature, clip, pct, register_feature,
                   seconds)

KEY = "perturb"


# ---- the criterion -------------------------------------------------------------------------------
def _rate_text(s: SubjectPerturbation) -> str:
    iv = s.interval
    return f"{s.role} {s.broken}/{s.counted} broke = {pct(s.rate)} (95% Wilson {pct(iv.low)}–{pct(iv.high)})"


def decide_perturbation(ctx: DecisionContext) -> GateDecision:
    """The candidate may break no more often than the baseline (+ max_increase), nor above max_break_rate."""
    name, result = ctx.suite.name, ctx.features.get(KEY)
    if result is None:
        return GateDecision(name, "perturbation", "error", "the perturbation search did not run")
    errors = [f"{s.role}: {s.error}" for s in result.subjects.values() if s.error]
    if errors:
        return GateDecision(name, "perturbation", "error", "the perturbation search failed: " + "; ".join(errors))
    spec = result.spec
    base, cand = result.subjects["baseline"], result.subjects.get("candidate")
    figures: dict[str, Any] = {"invariant": spec.invariant, "strategies": ",".join(spec.strategies),
                               "planned": result.planned, "max_increase": spec.max_increase}
    if spec.max_break_rate is not None:
        figures["max_break_rate"] = spec.max_break_rate
    for s in (base, cand):
        if s is not None:
            iv = s.interval
            figures.update({f"{s.role}_broken": s.broken, f"{s.role}_n": s.counted, f"{s.role}_rate": s.rate,
                            f"{s.role}_wilson_low": iv.low, f"{s.role}_wilson_high": iv.high,
                            f"{s.role}_excluded": s.excluded})
    shown = cand if cand is not None else base
    text = "; ".join(_rate_text(s) for s in (base, cand) if s is not None) + f" (invariant {spec.invariant})"
    empty = [s for s in (base, cand) if s is not None and s.counted == 0]
    # Nothing measured is not a pass. A baseline that counted no example leaves the candidate's rate
    # nothing to be compared with: the criterion could not be evaluated (an error, not a verdict),
    # unless the suite asked for an absolute limit (max_break_rate), which then decides alone. A
    # candidate that counted none fails every case unperturbed: the suite's own criteria block it,
    # and this one says it checked nothing (the run is never a promotion).
    alone = cand is not None and empty == [base] and spec.max_break_rate is not None
    why = {s.role: ("its original outputs fail the scorers on every case, so no perturbation of them can break anything"
                    if spec.invariant == "scorers" else "no label could be read from its original outputs") for s in empty}
    if cand is None and empty:
        return GateDecision(name, "perturbation", "skipped", f"no perturbed example of the baseline counted: "
                            f"{why['baseline']}", figures)
    if base in empty and not alone:
        hint = "set perturb.max_break_rate to gate the candidate on its own, " if cand not in empty else ""
        return GateDecision(
            name, "perturbation", "error",
            f"the perturbation criterion could not be evaluated: no perturbed example of the baseline counted "
            f"({why['baseline']}); {text}. A rate compared with nothing is not a pass: {hint}fix the suite so its cases "
            "pass unperturbed (the prompt, the scorers), or drop `perturb:` from it", figures)
    if cand in empty:
        return GateDecision(name, "perturbation", "skipped",
                            f"checked nothing: no perturbed example of the candidate counted ({why['candidate']}); the "
                            "suite's own criteria decide on its unperturbed answers", figures)
    if alone:
        text += (f"; the baseline counted no example, so only the {pct(spec.max_break_rate)} limit (max_break_rate) "
                 "decides")
    breaches = []
    if spec.max_break_rate is not None and shown.rate > spec.max_break_rate + 1e-12:
        breaches.append(f"{text}: the {shown.role} breaks above the {pct(spec.max_break_rate)} limit")
    if cand is not None and not alone and cand.rate > base.rate + spec.max_increase + 1e-12:
        allowed = f" + {pct(spec.max_increase)} allowed" if spec.max_increase else ""
        breaches.append(f"{text}: the candidate breaks more often than the baseline{allowed}")
    if breaches:
        return GateDecision(name, "perturbation", "blocked", breaches[0], figures, breaches=tuple(breaches))
    return GateDecision(name, "perturbation", "passed", text, figures)


# ---- the run's work ------------------------------------------------------------------------------
def search(run: FeatureRun) -> PerturbResult:
    """The suite's perturbation search for each subject, its generations batched and cached like the others."""
    from ..scoring.perturb import Invariant, plan, run_subject
    from ..subjects.base import Job
    from ..types import Request

    s, spec = run.suite, run.spec
    drawn = plan(s.name, s.cases, spec, run.seed)
    invariant = Invariant(spec.invariant, s.scorers)
    rates = {}
    for role, subject in run.subjects.items():
        prompt = s.prompts[run.prompts[role]]

        def generate(probes: Any, subject: Any = subject, prompt: Any = prompt) -> list[str]:
            jobs = [Job(s.name, p.perturbed_case, Request(prompt.render(p.perturbed_case), s.params)) for p in probes]
            return [o.text for o in run.generate(subject, jobs)]

        originals = {r.case.id: r.output.text for r in run.results[role].results}
        try:
            rates[role] = run_subject(role, drawn, spec, invariant, originals, generate)
        except GateRunError as exc:  # this criterion errs; the suite's others stand
            hint = (" (an outputs file holds answers to the cases only: gate perturbations on a model or endpoint)"
                    if isinstance(exc, IncompleteDataError) else "")
            rates[role] = SubjectPerturbation(role, error=f"{exc}{hint}")
    return PerturbResult(spec, len(drawn.probes), rates)


# ---- what the reports show -------------------------------------------------------------------------
@dataclass(frozen=True)
class PerturbRate:
    """One subject's perturbation rate over a suite."""

    role: str
    broken: int
    counted: int
    rate: float
    interval: Interval
    excluded: int  # examples of cases whose original output the invariant does not hold for
    unscored: int
    seconds: float
    error: str | None


@dataclass(frozen=True)
class PerturbFailure:
    """A case a perturbation broke: the original beside the smallest breaking input found, both outputs."""

    suite: str
    role: str
    case_id: str
    strategy: str
    change: str  # e.g. "'br' -> 'rb' at 10"
    original: str
    minimal: str
    original_output: str
    output: str
    why: str
    shrunk: bool  # False: shown as drawn (beyond the `shrink` budget, or the search did not meet it again)
    generations: int  # new generations the shrink asked for
    seconds: float


@dataclass(frozen=True)
class PerturbView:
    suite: str
    invariant: str
    strategies: tuple[str, ...]
    planned: int  # distinct perturbed inputs drawn for the suite
    rates: tuple[PerturbRate, ...]
    failures: tuple[PerturbFailure, ...]


def section(outcome: SuiteOutcome, result: PerturbResult | None) -> FeatureSection | None:
    if result is None:
        return None
    suite = outcome.suite.name
    rates = tuple(PerturbRate(s.role, s.broken, s.counted, s.rate, s.interval, s.excluded, s.unscored, s.seconds, s.error)
                  for s in result.subjects.values())
    failures = tuple(
        PerturbFailure(suite, s.role, f.case_id, f.strategy, f.change, f.original_input, f.minimal_input,
                       f.original_output, f.output, f.detail, f.shrunk, f.generations, f.seconds)
        for s in result.subjects.values() for f in s.failures)
    view = PerturbView(suite, result.spec.invariant, result.spec.strategies, result.planned, rates, failures)
    data = {"invariant": view.invariant, "strategies": list(view.strategies), "planned": view.planned,
            "subjects": {r.role: {**asdict(r), "interval": [r.interval.low, r.interval.high]} for r in rates},
            "failures": [asdict(f) for f in failures]}
    return FeatureSection("perturbation", data, lambda verbose, most: terminal_lines(view, verbose, most),
                          lambda most: markdown_lines(view, most), "perturbation.html.j2", view)


def terminal_lines(p: PerturbView, verbose: int = 0, max_failures: int = 10) -> list[str]:
    """Each subject's break rate, then each failing case: the original beside the smallest break found."""
    lines = [f"perturbations in {p.suite} ({p.planned} inputs by {', '.join(p.strategies)}; invariant {p.invariant}):"]
    for r in p.rates:
        if r.error:
            lines.append(f"  {r.role:<9} ERROR {r.error}")
            continue
        lines.append(f"  {r.role:<9} {r.broken}/{r.counted} broke = {pct(r.rate)} (95% Wilson {pct(r.interval.low)}–"
                     f"{pct(r.interval.high)}); {r.excluded} not counted (the original does not hold), {seconds(r.seconds)}")
    shown = p.failures if verbose > 0 else p.failures[:max_failures]
    for f in shown:
        how = f"shrunk with {f.generations} new generations" if f.shrunk else "as drawn, not shrunk"
        lines.append(f"  [{f.role}] {f.case_id}: {f.strategy} {clip(f.change, 70)} ({how})")
        lines.append(f"      original: {clip(f.original, 90)}")
        lines.append(f"      minimal:  {clip(f.minimal, 90)}")
        lines.append(f"      output (original): {clip(f.original_output, 80)}")
        lines.append(f"      output (minimal):  {clip(f.output, 80)}")
        if f.why:
            lines.append(f"      why: {clip(f.why, 90)}")
    if len(shown) < len(p.failures):
        lines.append(f"  … {len(p.failures) - len(shown)} more (use -v, or see report.md)")
    return lines


def markdown_lines(p: PerturbView, max_failures: int = 50) -> list[str]:
    def cell(text: str) -> str:
        return clip(text, 120).replace("|", "\\|")

    out = ["", f"**Perturbations in {p.suite}**: {p.planned} inputs by {', '.join(p.strategies)}; invariant `{p.invariant}`",
           "", "| subject | broke | rate | 95% CI (Wilson) | not counted | time |", "|---|---:|---:|---|---:|---:|"]
    for r in p.rates:
        if r.error:
            out.append(f"| {r.role} | error: {r.error} | | | | |")
        else:
            out.append(f"| {r.role} | {r.broken}/{r.counted} | {pct(r.rate)} | {pct(r.interval.low)}–{pct(r.interval.high)} | "
                       f"{r.excluded} | {seconds(r.seconds)} |")
    if p.failures:
        header = "| case | subject | strategy: change | original | smallest breaking input | output (original) | output (perturbed) |"
        out += ["", f"<details><summary>{len(p.failures)} case(s) broken by a perturbation in {p.suite}</summary>", "",
                header, "|---|---|---|---|---|---|---|"]
        for f in p.failures[:max_failures]:
            how = f"shrunk, {f.generations} generations" if f.shrunk else "not shrunk"
            out.append(f"| `{f.case_id}` | {f.role} | {f.strategy}: `{cell(f.change)}` ({how}) | {cell(f.original)} | "
                       f"{cell(f.minimal)} | {cell(f.original_output)} | {cell(f.output)} |")
        out += ["", "</details>"]
    return out


register_feature(SuiteFeature(key=KEY, parse=parse_perturb, criteria=(Criterion("perturbation", decide_perturbation),),
                              run=search, section=section,
                              sampled="a perturbation is judged on one answer to each input, and a sampled suite's "
                                      "verdicts are reductions of several: perturb a suite that generates once"))
