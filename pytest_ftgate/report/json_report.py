"""report.json: the machine-readable record of a gate run, with schema_version and provenance."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..types import CaseResult
from .view import ReportView, class_stats, mean_tokens

SCHEMA_VERSION = 2


def _case(r: CaseResult) -> dict[str, Any]:
    return {
        "output": r.output.text, "passed": r.passed, "value": r.value, "scores": [asdict(s) for s in r.scores],
        "tokens_in": r.output.tokens_in, "tokens_out": r.output.tokens_out, "latency_s": r.output.latency_s,
        "batch_size": r.output.batch_size, "cached": r.output.cached,
    }


def _tokens(results: tuple[CaseResult, ...]) -> dict[str, float | None]:
    t_in, t_out = mean_tokens(results)
    return {"mean_tokens_in": t_in, "mean_tokens_out": t_out}


def to_json(view: ReportView) -> dict[str, Any]:
    suites = []
    for row, detail in zip(view.rows, view.details):
        o = detail.outcome
        cand_by_id = {r.case.id: r for r in o.candidate.results} if o.candidate else {}
        entry: dict[str, Any] = {
            "name": o.suite.name, "kind": o.suite.kind, "path": str(o.suite.path), "suite_hash": o.suite.hash,
            "gate": o.gate,
            "summary": {"measure": row.measure, "baseline": row.baseline, "candidate": row.candidate, "delta": row.delta,
                        "interval": None if row.interval is None else [row.interval.low, row.interval.high],
                        "decision": row.decision},
            "baseline": {"n": o.baseline.n, "passed": o.baseline.n_passed, **_tokens(o.baseline.results)},
            "candidate": None if o.candidate is None else {"n": o.candidate.n, "passed": o.candidate.n_passed, **_tokens(o.candidate.results)},
            "decisions": [asdict(d) for d in o.decisions],
            "state": _state(o.state),
            "cases": [
                {"id": r.case.id, "input": r.case.messages[-1]["content"], "expected": r.case.expected, "tags": list(r.case.tags),
                 "baseline": _case(r), "candidate": _case(cand_by_id[r.case.id]) if r.case.id in cand_by_id else None}
                for r in o.baseline.results
            ],
        }
        if o.comparison is not None:
            c = o.comparison
            entry["comparison"] = {
                "n": c.n, "both_pass": c.both_pass, "both_fail": c.both_fail,
                "pass_to_fail": len(c.regressions), "fail_to_pass": len(c.fixes),
                "baseline_rate": c.baseline_rate, "candidate_rate": c.candidate_rate,
                "baseline_wilson": [c.baseline_interval.low, c.baseline_interval.high],
                "candidate_wilson": [c.candidate_interval.low, c.candidate_interval.high],
                "mcnemar_p": c.mcnemar_p, "mean_value_delta": c.mean_value_delta,
                "value_delta_interval": None if c.value_delta_interval is None else asdict(c.value_delta_interval),
            }
        if o.suite.labels:
            entry["per_class"] = class_stats(o)
        if detail.perturbation is not None:
            p = detail.perturbation
            entry["perturbation"] = {
                "invariant": p.invariant, "strategies": list(p.strategies), "planned": p.planned,
                "subjects": {r.role: {**asdict(r), "interval": [r.interval.low, r.interval.high]} for r in p.rates},
                "failures": [asdict(f) for f in p.failures],
            }
        suites.append(entry)
    tco = None
    if view.cost is not None:
        t = view.cost.tco
        p = t.pricing
        tco = {
            "pricing": {"file": str(p.path), "as_of": p.as_of, "source": p.source, "requests_per_day": p.requests_per_day,
                        "billing": p.billing, "serving": {"name": p.serving_name, "usd_per_hour": p.serving_usd_per_hour}},
            "quality": t.quality_label, "latency": view.cost.latency_label,
            "subjects": [asdict(s) for s in t.subjects],
            "break_even_days": t.break_even_days, "break_even": t.break_even_note,
            "evaluation": [asdict(e) for e in t.evaluation],
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "verdict": view.verdict,
        "verdict_text": view.verdict_text,
        "not_run": list(view.not_run),
        "suite_files": list(view.suite_files),
        "run": view.run.info,
        "tco": tco,
        "subjects": {"baseline": asdict(view.baseline), "candidate": None if view.candidate is None else asdict(view.candidate)},
        "suites": suites,
    }


def _state(state: Any) -> Any:
    """A kind's prepared state, as far as it says what it is (a golden set: its file and size)."""
    return state.to_json() if hasattr(state, "to_json") else None
