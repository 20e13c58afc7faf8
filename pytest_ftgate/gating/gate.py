"""Gate rules: thresholds from suite, ini and command line, and one decision per criterion.

Threshold language (ini `ftgate_fail`, option `--ftgate-fail`): `TARGET:VALUE`, where TARGET is
a suite kind or a suite name, and VALUE a percentage (`5%`) or a fraction (`0.05`). It sets the
kind's main threshold (golden: max_regression, format: min_pass_rate, task: min_accuracy, ...,
as each kind declares). Later sources win: suite < ini < command line. The criteria and how each
decides come from the suite's kind (pytest_ftgate.kinds), plus the criteria any suite may add
beside them, whatever its kind: `perturbation` for a suite that declares `perturb:`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ..errors import IncompleteDataError, OptionError
from ..kinds import get_kind, kind_names
from ..kinds.base import Criterion, DecisionContext, check_complete, pct
from ..scoring.perturb import PerturbResult, SubjectPerturbation
from ..stats import paired_comparison
from ..types import Comparison, GateDecision, Suite, SuiteResult, Threshold


parse_threshold = Threshold.parse  # the public name of the one parser (pytest_ftgate.types.Threshold)


def check_targets(thresholds: Iterable[Threshold], suites: Iterable[Suite], source: str) -> None:
    """Refuse a threshold whose target is neither a kind nor a suite: it would silently gate nothing."""
    names = sorted({s.name for s in suites})
    for t in thresholds:
        if t.target not in kind_names() and t.target not in names:
            raise OptionError(
                f"{source} {t.target}:{t.value:.4g}: {t.target!r} is neither a suite nor a kind. "
                f"Suites here: {', '.join(names) or 'none'}; kinds: {', '.join(kind_names())}"
            )


def effective_gate(suite: Suite, *layers: tuple[Threshold, ...]) -> dict[str, Any]:
    """The suite's gate settings after defaults and each override layer (later layers win)."""
    kind = get_kind(suite.kind)
    gate = {**kind.defaults(), **suite.gate}
    for layer in layers:
        for t in layer:
            if t.applies_to(suite):
                gate[kind.main_key_of(suite)] = t.value
    return gate


def suite_criteria(suite: Suite, gate: dict[str, Any]) -> tuple[Criterion, ...]:
    """The kind's own criteria under `gate`, then those any suite may add (perturbation)."""
    return tuple(get_kind(suite.kind).criteria(gate, suite)) + cross_criteria(suite)


def criteria(suite: Suite, gate: dict[str, Any]) -> list[str]:
    """The names of a suite's gate criteria under `gate`: one pytest item each."""
    return [c.name for c in suite_criteria(suite, gate)]


def decide(
    suite: Suite,
    gate: dict[str, Any],
    baseline: SuiteResult,
    candidate: SuiteResult | None,
    state: Any = None,
    perturbation: PerturbResult | None = None,
) -> tuple[list[GateDecision], Comparison | None]:
    """Decide every criterion of a suite. Errors become decisions with status `error`.

    `state` is what the kind's `prepare` returned for this run (e.g. the golden set);
    `perturbation` the perturbation search's rates, for a suite that declares `perturb:`."""
    kind = get_kind(suite.kind)
    chosen = suite_criteria(suite, gate)
    try:
        check_complete(suite.name, baseline, candidate, allowed=kind.allowed_unscored(suite) if kind.allowed_unscored else 0.0)
        cmp = paired_comparison(baseline, candidate) if candidate is not None else None
    except IncompleteDataError as exc:
        return [GateDecision(suite.name, c.name, "error", str(exc)) for c in chosen], None
    ctx = DecisionContext(suite, gate, baseline, candidate, cmp, state, perturbation)
    decisions = []
    for criterion in chosen:
        try:
            decisions.append(criterion.decide(ctx))
        except IncompleteDataError as exc:
            decisions.append(GateDecision(suite.name, criterion.name, "error", str(exc)))
    return [_small_sample(d, baseline.n) for d in decisions], cmp


SMALL_SUITE = 20  # below it, a rate's 95% interval is wider than ±20 points: a pass says little


def _small_sample(decision: GateDecision, n: int) -> GateDecision:
    """A pass on few cases is said, for every kind (the golden kind says it its own way, against its threshold)."""
    if decision.status != "passed" or n >= SMALL_SUITE or any(w.startswith("only ") for w in decision.warnings):
        return decision
    from ..stats import wilson_interval

    iv = wilson_interval(n // 2, n) if n else None
    spread = f": a rate of 50% on {n} has a 95% interval of {pct(iv.low)}–{pct(iv.high)}" if iv else ""
    warning = f"only {n} case(s){spread}, so this pass says little; add cases (at least {SMALL_SUITE})"
    return replace(decision, warnings=(*decision.warnings, warning))


# ---- perturbation: a criterion any suite adds by declaring `perturb:` ---------------------------

def _rate_text(s: SubjectPerturbation) -> str:
    iv = s.interval
    return f"{s.role} {s.broken}/{s.counted} broke = {pct(s.rate)} (95% Wilson {pct(iv.low)}–{pct(iv.high)})"


def decide_perturbation(ctx: DecisionContext) -> GateDecision:
    """The candidate may break no more often than the baseline (+ max_increase), nor above max_break_rate."""
    name, result = ctx.suite.name, ctx.perturbation
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


PERTURBATION = Criterion("perturbation", decide_perturbation)


def cross_criteria(suite: Suite) -> tuple[Criterion, ...]:
    """The criteria any suite may add beside its kind's own: `perturbation` when it declares `perturb:`."""
    return (PERTURBATION,) if suite.perturb is not None else ()
