"""report.json: the machine-readable record of a gate run, with schema_version and provenance.
It formats the view (pytest_ftgate.report.view) and computes nothing of its own."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .record import SCHEMA_VERSION

if TYPE_CHECKING:  # the reader below is used where the view's imports (the runner) would be a circle
    from .view import ReportView, SuiteDetail



def _suite(row: Any, d: SuiteDetail) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": d.suite, "kind": d.kind, "path": d.path, "suite_hash": d.suite_hash, "gate": d.gate,
        "summary": {"measure": row.measure, "baseline": row.baseline, "candidate": row.candidate, "delta": row.delta,
                    "interval": None if row.interval is None else [row.interval.low, row.interval.high],
                    "decision": row.decision},
        "baseline": asdict(d.baseline),
        "candidate": None if d.candidate is None else asdict(d.candidate),
        "decisions": [asdict(x) for x in d.decisions],
        "state": d.kind_data,
        "notes": list(d.notes),
        "cases": [{"id": c.id, "input": c.input, "expected": c.expected, "tags": list(c.tags),
                   "baseline": asdict(c.baseline), "candidate": None if c.candidate is None else asdict(c.candidate)}
                  for c in d.cases],
    }
    if d.comparison is not None:
        entry["comparison"] = d.comparison
    if d.per_class is not None:
        entry["per_class"] = d.per_class
    for section in d.sections:
        entry[section.key] = section.data
    return entry


def to_json(view: ReportView) -> dict[str, Any]:
    tco = None
    if view.cost is not None:
        t = view.cost.tco
        p = t.pricing
        tco = {
            "pricing": {"file": str(p.path), "as_of": p.as_of, "source": p.source, "requests_per_day": p.requests_per_day,
                        "billing": p.billing, "serving": {"name": p.serving_name, "usd_per_hour": p.serving_usd_per_hour}},
            "quality": t.quality_label, "latency": view.cost.latency_label,
            "subjects": [asdict(s) for s in t.subjects],
            "break_even_days": t.break_even_days, "break_even": t.break_even_note, "too_noisy": view.cost.noisy or None,
            "evaluation": [asdict(e) for e in t.evaluation],
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "verdict": view.verdict,
        "verdict_text": view.verdict_text,
        "notices": list(view.notices),
        "not_run": list(view.not_run),
        "unchecked": list(view.unchecked),
        "checks": [asdict(c) for c in view.checks],
        "contract": view.contract,
        "suite_files": list(view.suite_files),
        "run": view.info,
        "tco": tco,
        "subjects": {"baseline": asdict(view.baseline), "candidate": None if view.candidate is None else asdict(view.candidate)},
        "suites": [_suite(row, d) for row, d in zip(view.rows, view.details)],
    }
