"""`ftgate compare REPORT_A REPORT_B`: the cases whose verdict differs between two gate reports, per
suite, without running a model. A case's verdict in a report is its candidate's (the baseline's in a
baseline-only run); cases only one report holds are counted apart."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .record import read_report


@dataclass(frozen=True)
class CaseFlip:
    case_id: str
    before: bool | None  # passed in A (None: unscored)
    after: bool | None
    output_before: str
    output_after: str


@dataclass
class SuiteDiff:
    suite: str
    shared: int = 0
    fixed: list[CaseFlip] = field(default_factory=list)  # failed in A, passes in B
    broken: list[CaseFlip] = field(default_factory=list)  # passed in A, fails in B
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)


def _verdicts(report: dict[str, Any]) -> dict[str, dict[str, tuple[bool | None, str]]]:
    role = "candidate" if report["subjects"].get("candidate") else "baseline"
    return {s["name"]: {c["id"]: (c[role]["passed"], c[role]["output"]) for c in s["cases"] if c.get(role)}
            for s in report["suites"]}


def compare_reports(a: Path, b: Path) -> list[SuiteDiff]:
    first, second = _verdicts(read_report(a)), _verdicts(read_report(b))
    diffs = []
    for name in sorted(set(first) | set(second)):
        x, y = first.get(name, {}), second.get(name, {})
        d = SuiteDiff(name, shared=len(set(x) & set(y)), only_a=sorted(set(x) - set(y)), only_b=sorted(set(y) - set(x)))
        for case_id in sorted(set(x) & set(y)):
            (was, out_a), (now, out_b) = x[case_id], y[case_id]
            if was is True and now is not True:
                d.broken.append(CaseFlip(case_id, was, now, out_a, out_b))
            elif was is not True and now is True:
                d.fixed.append(CaseFlip(case_id, was, now, out_a, out_b))
        diffs.append(d)
    return diffs


def diff_lines(diffs: list[SuiteDiff], a: Path, b: Path, width: int = 70) -> list[str]:
    lines = [f"A = {a}", f"B = {b}"]
    for d in diffs:
        lines.append(f"{d.suite}: {d.shared} case(s) in both; {len(d.broken)} pass->fail, {len(d.fixed)} fail->pass"
                     + (f"; only in A: {len(d.only_a)}" if d.only_a else "") + (f"; only in B: {len(d.only_b)}" if d.only_b else ""))
        for label, flips in (("PASS->FAIL", d.broken), ("FAIL->PASS", d.fixed)):
            for f in flips:
                lines.append(f"  [{label}] {f.case_id}")
                lines.append(f"      A: {' '.join(f.output_before.split())[:width]}")
                lines.append(f"      B: {' '.join(f.output_after.split())[:width]}")
    return lines


def diff_json(diffs: list[SuiteDiff]) -> list[dict[str, Any]]:
    return [asdict(d) for d in diffs]
