"""report.json: the machine-readable record of a gate run, with schema_version and provenance.
It formats the view (pytest_ftgate.report.view) and computes nothing of its own."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the reader below is used where the view's imports (the runner) would be a circle
    from .view import ReportView, SuiteDetail

SCHEMA_VERSION = 4  # 4: the promotion contract's terms; 3: notices, unchecked criteria, cost quartiles


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
    if d.perturbation is not None:
        p = d.perturbation
        entry["perturbation"] = {
            "invariant": p.invariant, "strategies": list(p.strategies), "planned": p.planned,
            "subjects": {r.role: {**asdict(r), "interval": [r.interval.low, r.interval.high]} for r in p.rates},
            "failures": [asdict(f) for f in p.failures],
        }
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


def read_report(path: Path) -> dict[str, Any]:
    """A report.json as `to_json` wrote it; every reader of reports (`ftgate promote`, `ftgate compare`, the
    blind human export) reads it here. OptionError says why not, and what to do."""
    from ..errors import OptionError
    from ..files.versioned import read_versioned

    try:
        return read_versioned(path, SCHEMA_VERSION, required=("verdict", "subjects", "suites"))
    except FileNotFoundError:
        raise OptionError(f"{path}: no such file; give the report.json a gate run wrote in its --ftgate-report-dir") from None
    except (OSError, ValueError) as exc:
        raise OptionError(f"{path}: not a readable report.json of a gate run ({exc}); gate again to write one") from None
