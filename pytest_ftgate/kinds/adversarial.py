"""`kind: adversarial`: attacks and perturbations the candidate must resist."""

from __future__ import annotations

from .base import GateKey, SuiteKind, boolean, fraction, rate_headline, register_kind
from .task import rate_and_baseline_criteria

ADVERSARIAL = register_kind(SuiteKind(
    name="adversarial",
    description="adversarial cases: the share resisted, above a floor and not below the baseline",
    gate_keys=(
        GateKey("min_pass_rate", fraction, "least share of cases resisted"),
        GateKey("not_below_baseline", boolean, "the candidate may not resist less than the baseline", True),
    ),
    main_key="min_pass_rate",
    criteria=rate_and_baseline_criteria("pass_rate", "min_pass_rate"),
    headline=rate_headline("resisted"),
))
