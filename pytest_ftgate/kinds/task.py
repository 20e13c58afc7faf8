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
    quality=True,
))
