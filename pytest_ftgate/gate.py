"""Gate rules: thresholds from suite, ini and command line, and one decision per criterion.

Threshold language (ini `ftgate_fail`, option `--ftgate-fail`): `TARGET:VALUE`, where TARGET is
a suite kind (golden, format, task, adversarial) or a suite name, and VALUE a percentage (`5%`)
or a fraction (`0.05`). It sets the kind's main threshold: golden -> max_regression, format and
adversarial -> min_pass_rate, task -> min_accuracy. Later sources win: suite < ini < command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .compare import compare
from .errors import IncompleteDataError
from .goldens import GoldenSet, split_goldens
from .stats import (
    exact_interval,
    exact_upper_bound,
    max_passing_regressions,
    min_n_to_resolve,
    wilson_interval,
)
from .suite import KINDS, Suite
from .types import Comparison, GateDecision, SuiteResult

MAIN_KEY = {"golden": "max_regression", "format": "min_pass_rate", "adversarial": "min_pass_rate", "task": "min_accuracy"}
DEFAULTS: dict[str, dict[str, Any]] = {
    "format": {"min_pass_rate": 0.95},
    "golden": {"max_regression": 0.05},
    "task": {},
    "adversarial": {},
}


@dataclass(frozen=True)
class Threshold:
    """One `TARGET:VALUE` override."""

    target: str
    value: float

    def applies_to(self, suite: Suite) -> bool:
        return self.target in (suite.kind, suite.name)

    def __str__(self) -> str:
        return f"{self.target}:{self.value:.4g}"


def parse_threshold(text: str) -> Threshold:
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
    return Threshold(target, number)


def parse_thresholds(items: list[str]) -> tuple[Threshold, ...]:
    return tuple(parse_threshold(part) for item in items for part in item.split(",") if part.strip())


def effective_gate(suite: Suite, *layers: tuple[Threshold, ...]) -> dict[str, Any]:
    """The suite's gate settings after defaults and each override layer (later layers win)."""
    gate = {**DEFAULTS[suite.kind], **suite.gate}
    for layer in layers:
        for t in layer:
            if t.applies_to(suite):
                gate[MAIN_KEY[suite.kind]] = t.value
    if suite.kind in ("task", "adversarial"):
        gate.setdefault("not_below_baseline", True)
    return gate


def criteria(suite: Suite, gate: dict[str, Any]) -> list[str]:
    """The gate criteria of a suite: one pytest item each."""
    if suite.kind == "golden":
        return ["regressions"]
    if suite.kind == "format":
        return ["pass_rate"]
    names = []
    if "min_accuracy" in gate or "min_pass_rate" in gate:
        names.append("accuracy" if suite.kind == "task" else "pass_rate")
    if gate.get("not_below_baseline") or "min_gain" in gate:
        names.append("vs_baseline")
    return names or ["accuracy" if suite.kind == "task" else "pass_rate"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _rate_figures(k: int, n: int) -> dict[str, Any]:
    w = wilson_interval(k, n)
    return {"k": k, "n": n, "rate": k / n if n else 0.0, "wilson": [w.low, w.high]}


def _check_complete(suite: Suite, *results: SuiteResult | None) -> None:
    for r in results:
        if r is not None and r.unscored:
            ids = ", ".join(x.case.id for x in r.unscored[:5])
            raise IncompleteDataError(
                f"suite {suite.name}: {len(r.unscored)} case(s) of the {r.subject.role} could not be scored "
                f"({ids}); a gate on incomplete data would lie. See the report for each reason."
            )


def decide_min_rate(suite: Suite, criterion: str, result: SuiteResult, threshold: float | None) -> GateDecision:
    k, n = result.n_passed, result.n
    figures = _rate_figures(k, n)
    figures["subject"] = result.subject.role
    rate_text = f"{result.subject.role} {k}/{n} = {_pct(k / n)} (95% Wilson {_pct(figures['wilson'][0])}–{_pct(figures['wilson'][1])})"
    if threshold is None:
        return GateDecision(suite.name, criterion, "passed", f"{rate_text}; no threshold set", figures)
    figures["threshold"] = threshold
    if k / n >= threshold:
        return GateDecision(suite.name, criterion, "passed", f"{rate_text} >= {_pct(threshold)}", figures)
    reason = f"{rate_text} < required {_pct(threshold)}"
    return GateDecision(suite.name, criterion, "blocked", reason, figures, breaches=(reason,))


def decide_vs_baseline(suite: Suite, cmp: Comparison, min_gain: float = 0.0) -> GateDecision:
    """Candidate rate minus baseline rate must be at least min_gain (0: not below the baseline)."""
    figures = {
        "baseline_rate": cmp.baseline_rate,
        "candidate_rate": cmp.candidate_rate,
        "baseline_wilson": [cmp.baseline_interval.low, cmp.baseline_interval.high],
        "candidate_wilson": [cmp.candidate_interval.low, cmp.candidate_interval.high],
        "regressions": len(cmp.regressions),
        "fixes": len(cmp.fixes),
        "mcnemar_p": cmp.mcnemar_p,
        "n": cmp.n,
    }
    text = (
        f"candidate {_pct(cmp.candidate_rate)} vs baseline {_pct(cmp.baseline_rate)} "
        f"({len(cmp.fixes)} fixed, {len(cmp.regressions)} regressed, McNemar p={cmp.mcnemar_p:.3g})"
    )
    figures["min_gain"] = min_gain
    gain = cmp.candidate_rate - cmp.baseline_rate
    if gain >= min_gain - 1e-12:
        return GateDecision(suite.name, "vs_baseline", "passed", text, figures)
    reason = f"{text}: below the baseline" if min_gain <= 0 else f"{text}: gain {100 * gain:+.1f}pp < required {100 * min_gain:+.1f}pp"
    return GateDecision(suite.name, "vs_baseline", "blocked", reason, figures, breaches=(reason,))


def decide_goldens(
    suite: Suite,
    gate: dict[str, Any],
    baseline: SuiteResult,
    candidate: SuiteResult,
    golden: GoldenSet,
) -> GateDecision:
    """The golden rule: block when the candidate fails more than max_regression of the goldens."""
    threshold = float(gate["max_regression"])
    split = split_goldens(golden, baseline)
    cand = {r.case.id: r for r in candidate.results}
    unscored = [i for i in split.counted if cand[i].passed is None]
    if unscored:
        raise IncompleteDataError(
            f"suite {suite.name}: {len(unscored)} golden case(s) of the candidate could not be scored "
            f"({', '.join(unscored[:5])}); the regression rate would be computed on incomplete data"
        )
    failed = [i for i in split.counted if cand[i].passed is False]
    k, n = len(failed), len(split.counted)
    if n == 0:
        return GateDecision(
            suite.name, "regressions", "error",
            f"no countable goldens ({len(split.stale)} stale); refreeze with --ftgate-update-goldens",
            {"stale": split.stale},
        )
    rate = k / n
    w, e = wilson_interval(k, n), exact_interval(k, n)
    confidence = gate.get("confidence")
    figures: dict[str, Any] = {
        "k": k, "n": n, "rate": rate, "threshold": threshold,
        "wilson": [w.low, w.high], "clopper_pearson": [e.low, e.high],
        "max_passing_regressions": max_passing_regressions(n, threshold),
        "stale": split.stale, "regressed_ids": failed,
    }
    warnings = []
    needed = min_n_to_resolve(threshold)
    if n < needed:
        warnings.append(
            f"only {n} goldens: too few to tell a {_pct(threshold)} regression rate from 0% "
            f"(needs {needed} at 95% confidence); add goldens"
        )
    if split.stale:
        warnings.append(f"{len(split.stale)} stale golden(s) not counted (see the report)")
    text = (
        f"{k}/{n} goldens regressed = {_pct(rate)} (95% Wilson {_pct(w.low)}–{_pct(w.high)}, "
        f"exact {_pct(e.low)}–{_pct(e.high)}); at most {figures['max_passing_regressions']} may regress "
        f"at {_pct(threshold)}"
    )
    if confidence is None:
        status = "passed" if rate <= threshold else "blocked"
    else:
        upper = exact_upper_bound(k, n, float(confidence))
        figures["upper_bound"] = upper
        figures["confidence"] = confidence
        figures["inconclusive_blocks"] = gate.get("inconclusive", "block") == "block"
        text += f"; one-sided {_pct(float(confidence))} upper bound {_pct(upper)}"
        status = "passed" if upper <= threshold else "blocked" if rate > threshold else "inconclusive"
    breaches = (f"{text}: above the {_pct(threshold)} limit",) if status == "blocked" else ()
    return GateDecision(suite.name, "regressions", status, text, figures, tuple(warnings), breaches)


def decide(
    suite: Suite,
    gate: dict[str, Any],
    baseline: SuiteResult,
    candidate: SuiteResult | None,
    golden: GoldenSet | None,
) -> tuple[list[GateDecision], Comparison | None]:
    """Decide every criterion of a suite. Errors become decisions with status `error`."""
    names = criteria(suite, gate)
    try:
        _check_complete(suite, baseline, candidate)
        cmp = compare(baseline, candidate) if candidate is not None else None
    except IncompleteDataError as exc:
        return [GateDecision(suite.name, c, "error", str(exc)) for c in names], None
    decisions = []
    for name in names:
        try:
            decisions.append(_decide_one(suite, gate, name, baseline, candidate, cmp, golden))
        except IncompleteDataError as exc:
            decisions.append(GateDecision(suite.name, name, "error", str(exc)))
    return decisions, cmp


def _decide_one(suite, gate, name, baseline, candidate, cmp, golden) -> GateDecision:
    if name == "regressions":
        if candidate is None:
            state = "frozen" if golden else "not frozen yet: run with --ftgate-update-goldens"
            return GateDecision(
                suite.name, name, "skipped",
                f"no --candidate: the baseline passes {baseline.n_passed}/{baseline.n}; goldens {state}",
                _rate_figures(baseline.n_passed, baseline.n),
            )
        if golden is None:
            return GateDecision(
                suite.name, name, "error",
                f"no golden file at {suite.goldens_path}. Freeze the cases the baseline passes with "
                "`pytest --baseline ... --ftgate-update-goldens` and commit the file",
            )
        return decide_goldens(suite, gate, baseline, candidate, golden)
    if name == "vs_baseline":
        if cmp is None:
            return GateDecision(
                suite.name, name, "skipped",
                f"no --candidate: the baseline passes {baseline.n_passed}/{baseline.n}",
                _rate_figures(baseline.n_passed, baseline.n),
            )
        return decide_vs_baseline(suite, cmp, float(gate.get("min_gain", 0.0)))
    subject = candidate if candidate is not None else baseline
    return decide_min_rate(suite, name, subject, gate.get(MAIN_KEY[suite.kind]))


assert set(MAIN_KEY) == set(KINDS)
