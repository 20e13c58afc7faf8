"""Gate rules: thresholds from suite, ini and command line, and one decision per criterion.

Threshold language (ini `ftgate_fail`, option `--ftgate-fail`): `TARGET:VALUE`, where TARGET is
a suite kind or a suite name, and VALUE a percentage (`5%`) or a fraction (`0.05`). It sets the
kind's main threshold (golden: max_regression, format: min_pass_rate, task: min_accuracy, ...,
as each kind declares). Later sources win: suite < ini < command line. The criteria and how each
decides come from the suite's kind (pytest_ftgate.kinds), plus the criteria of each feature a suite
declares beside its kind (kinds.SuiteFeature).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ..cost.budgets import CRITERIA, budget_criteria
from ..errors import IncompleteDataError, OptionError
from ..kinds import get_feature, get_kind, kind_names
from ..kinds.base import Criterion, DecisionContext, check_complete, pct
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
    """The kind's own criteria under `gate`, then those of the features the suite declares, then its serving budgets."""
    return tuple(get_kind(suite.kind).criteria(gate, suite)) + cross_criteria(suite) + budget_criteria(gate)


def criteria(suite: Suite, gate: dict[str, Any]) -> list[str]:
    """The names of a suite's gate criteria under `gate`: one pytest item each."""
    return [c.name for c in suite_criteria(suite, gate)]


def decide(
    suite: Suite,
    gate: dict[str, Any],
    baseline: SuiteResult,
    candidate: SuiteResult | None,
    state: Any = None,
    features: dict[str, Any] | None = None,
    pricing: Any = None,
) -> tuple[list[GateDecision], Comparison | None]:
    """Decide every criterion of a suite. Errors become decisions with status `error`.

    `state` is what the kind's `prepare` returned for this run (e.g. the golden set);
    `features` each declared feature's result in this run (a perturbation search's rates), by its key."""
    kind = get_kind(suite.kind)
    chosen = suite_criteria(suite, gate)
    try:
        check_complete(suite.name, baseline, candidate, allowed=kind.allowed_unscored(suite) if kind.allowed_unscored else 0.0)
        cmp = paired_comparison(baseline, candidate) if candidate is not None else None
    except IncompleteDataError as exc:
        return [GateDecision(suite.name, c.name, "error", str(exc)) for c in chosen], None
    ctx = DecisionContext(suite, gate, baseline, candidate, cmp, state, dict(features or {}), pricing)
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
    if (decision.status != "passed" or n >= SMALL_SUITE or any(w.startswith("only ") for w in decision.warnings)
            or decision.criterion in CRITERIA.values()):  # a budget's spread is its own (cost.budgets)
        return decision
    from ..stats import wilson_interval

    iv = wilson_interval(n // 2, n) if n else None
    spread = f": a rate of 50% on {n} has a 95% interval of {pct(iv.low)}–{pct(iv.high)}" if iv else ""
    warning = f"only {n} case(s){spread}, so this pass says little; add cases (at least {SMALL_SUITE})"
    return replace(decision, warnings=(*decision.warnings, warning))


def cross_criteria(suite: Suite) -> tuple[Criterion, ...]:
    """The criteria any suite may add beside its kind's own: those of each feature it declares (kinds.SuiteFeature)."""
    return tuple(c for key in suite.features for c in get_feature(key).criteria)
