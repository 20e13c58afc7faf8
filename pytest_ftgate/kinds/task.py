"""`kind: task`: what the candidate is trained for, measured against a floor and the baseline."""

from __future__ import annotations

from typing import Any

from .base import (
    Criterion,
    GateKey,
    SuiteKind,
    boolean,
    decide_min_rate,
    decide_vs_baseline,
    fraction,
    rate_headline,
    register_kind,
)


def gain(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1 <= value <= 1:
        return f"must be a fraction between -1 and 1 (0.05 = five points above the baseline), got {value!r}"
    return None


def gates_something(rate_key: str):
    """A `check`: a gate with no floor and no comparison (not_below_baseline: false, no min_gain) would gate nothing."""

    def check(data: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
        gate = data.get("gate") if isinstance(data.get("gate"), dict) else {}
        if gate.get("not_below_baseline", True) is False and rate_key not in gate and "min_gain" not in gate:
            return [(f"this gate checks nothing: with not_below_baseline: false it needs {rate_key} (a floor) or "
                     "min_gain (a margin over the baseline)", ("gate", "not_below_baseline"))]
        return []

    return check


def rate_and_baseline_criteria(rate_name: str, rate_key: str):
    """`rate_name` when the gate sets a floor; `vs_baseline` when it compares; the floor alone otherwise."""
    floor = Criterion(rate_name, lambda ctx: decide_min_rate(ctx, rate_name, ctx.gate.get(rate_key)))
    versus = Criterion("vs_baseline", decide_vs_baseline)

    def criteria(gate: dict[str, Any], suite: Any = None) -> tuple[Criterion, ...]:
        chosen = []
        if rate_key in gate:
            chosen.append(floor)
        if gate.get("not_below_baseline") or "min_gain" in gate:
            chosen.append(versus)
        return tuple(chosen) or (floor,)

    return criteria


TASK = register_kind(SuiteKind(
    name="task",
    description="the task itself: accuracy above a floor and not below the baseline",
    gate_keys=(
        GateKey("min_accuracy", fraction, "least accuracy of the candidate"),
        GateKey("not_below_baseline", boolean, "the candidate's accuracy may not fall below the baseline's", True),
        GateKey("min_gain", gain, "least gain over the baseline, in accuracy points (0.05 = five)"),
    ),
    main_key="min_accuracy",
    criteria=rate_and_baseline_criteria("accuracy", "min_accuracy"),
    headline=rate_headline("accuracy"),
    check=gates_something("min_accuracy"),
    quality=True,
))
