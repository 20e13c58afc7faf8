"""`kind: format`: every output must have the required shape (JSON schema, labels, regex)."""

from __future__ import annotations

from .base import Criterion, GateKey, SuiteKind, decide_min_rate, fraction, rate_headline, register_kind

FORMAT = register_kind(SuiteKind(
    name="format",
    description="format compliance: the share of outputs with the required shape",
    gate_keys=(GateKey("min_pass_rate", fraction, "least share of cases that must pass", 0.95),),
    main_key="min_pass_rate",
    criteria=lambda gate, suite: (Criterion("pass_rate", lambda ctx: decide_min_rate(ctx, "pass_rate", ctx.gate["min_pass_rate"])),),
    headline=rate_headline("pass rate"),
))
