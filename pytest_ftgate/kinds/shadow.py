"""`kind: shadow`: the candidate on real traffic, against what production answered.

    cases: shadow.jsonl      # logged inputs; `expected` is production's answer (ftgate logs import writes it)
    scorers: [{agrees: {field: label}}]   # same label, field or text as production
    gate: {min_agreement: 0.8}

The baseline is production's own outputs (`--baseline=DIR/production.jsonl`), which agree with
themselves: the red phase has nothing to measure. With a candidate, the agreement rate is the share
of logged requests it answers as production did; format validity and a judge's pairwise win rate
come from the format and judge suites `ftgate logs import` writes beside this one.
"""

from __future__ import annotations

from typing import Any

from ..types import GateDecision
from .base import Criterion, DecisionContext, GateKey, SuiteKind, decide_min_rate, fraction, rate_headline, register_kind


def decide_agreement(ctx: DecisionContext) -> GateDecision:
    if ctx.candidate is None:
        return GateDecision(ctx.suite.name, "agreement", "skipped",
                            "no --candidate: production's outputs agree with themselves; give a candidate to shadow it")
    return decide_min_rate(ctx, "agreement", ctx.gate.get("min_agreement"))


def criteria(gate: dict[str, Any], suite: Any = None) -> tuple[Criterion, ...]:
    return (Criterion("agreement", decide_agreement),)


SHADOW = register_kind(SuiteKind(
    name="shadow",
    description="a shadow run: the candidate on logged traffic, agreeing with what production answered",
    gate_keys=(GateKey("min_agreement", fraction, "least share of logged requests answered as production did", 0.8),),
    main_key="min_agreement",
    criteria=criteria,
    headline=rate_headline("agreement with production"),
))
