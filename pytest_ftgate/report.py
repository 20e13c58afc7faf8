"""Reports of a gate run: terminal lines, report.json, report.md (PR comment / step summary)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .runner import GateRun, SuiteOutcome
from .stats import per_class_prf
from .types import CaseResult, Flip, SubjectInfo

SCHEMA_VERSION = 1
STATUS_MARK = {"passed": "PASS", "blocked": "BLOCK", "inconclusive": "INCONCLUSIVE", "skipped": "SKIP", "error": "ERROR"}


def verdict(run: GateRun) -> str:
    if any(d.status == "error" for d in run.decisions):
        return "error"
    if run.candidate is None:
        return "baseline-only"
    return "blocked" if run.blocked else "promoted"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def suite_row(o: SuiteOutcome) -> dict[str, Any]:
    base, cand, cmp = o.baseline, o.candidate, o.comparison
    if cmp is not None:
        interval = cmp.candidate_interval
    else:
        from .stats import wilson_interval

        interval = wilson_interval(base.n_passed, base.n)
    statuses = [d.status for d in o.decisions]
    decision = next((s for s in ("error", "blocked", "inconclusive") if s in statuses), "passed" if "passed" in statuses else "skipped")
    return {
        "suite": o.suite.name,
        "kind": o.suite.kind,
        "baseline": base.pass_rate,
        "candidate": cand.pass_rate if cand else None,
        "delta": (cand.pass_rate - base.pass_rate) if cand else None,
        "interval": [interval.low, interval.high],
        "decision": decision,
    }


def terminal_lines(run: GateRun, verbose: int = 0, max_flips: int = 10) -> list[str]:
    lines = [f"baseline:  {run.baseline.name} [{run.baseline.kind} {run.baseline.fingerprint[:12]}]"]
    if run.candidate:
        lines.append(f"candidate: {run.candidate.name} [{run.candidate.kind} {run.candidate.fingerprint[:12]}]")
    header = f"{'suite':<24} {'kind':<11} {'baseline':>9} {'candidate':>9} {'delta':>8} {'95% CI':>15}  decision"
    lines += [header, "-" * len(header)]
    for o in run.outcomes:
        r = suite_row(o)
        delta = "—" if r["delta"] is None else f"{100 * r['delta']:+.1f}pp"
        ci = f"{_pct(r['interval'][0])}–{_pct(r['interval'][1])}"
        lines.append(
            f"{_clip(r['suite'], 24):<24} {r['kind']:<11} {_pct(r['baseline']):>9} {_pct(r['candidate']):>9} "
            f"{delta:>8} {ci:>15}  {STATUS_MARK[r['decision']]}"
        )
    for o in run.outcomes:
        for d in o.decisions:
            lines.append(f"  {o.suite.name}::{d.criterion}: {STATUS_MARK[d.status]} {d.summary}")
            lines.extend(f"    warning: {w}" for w in d.warnings)
        lines.extend(f"    {x}" for x in _extra_lines(o))
    for o in run.outcomes:
        flips = _flips(o)
        if flips:
            shown = flips if verbose > 0 else flips[:max_flips]
            lines.append(f"flipped cases in {o.suite.name} ({len(flips)}):")
            for f in shown:
                arrow = "PASS->FAIL" if f.direction == "regression" else "FAIL->PASS"
                lines.append(f"  [{arrow}] {f.case.id}: {_clip(f.case.messages[-1]['content'], 60)}")
                lines.append(f"      baseline:  {_clip(f.baseline.output.text, 90)}")
                lines.append(f"      candidate: {_clip(f.candidate.output.text, 90)}")
                why = f.candidate.failure_detail or f.baseline.failure_detail
                if why:
                    lines.append(f"      why: {_clip(why, 90)}")
            if len(shown) < len(flips):
                lines.append(f"  … {len(flips) - len(shown)} more (use -v, or see report.md)")
        elif o.candidate is None:
            failing = [r for r in o.baseline.results if not r.passed]
            if failing:
                lines.append(f"baseline fails {len(failing)}/{o.baseline.n} in {o.suite.name}:")
                for r in failing if verbose > 0 else failing[:max_flips]:
                    lines.append(f"  {r.case.id}: {_clip(r.output.text, 70)} ({_clip(r.failure_detail, 60)})")
    if run.tco is not None:
        from .tco import tco_lines

        lines.extend(tco_lines(run.tco))
    lines.append(f"verdict: {verdict(run).upper()}")
    return lines


def _extra_lines(o: SuiteOutcome) -> list[str]:
    """Tokens each subject really sends, and the paired score delta for continuous scorers."""
    out = []
    parts = []
    for role, res in (("baseline", o.baseline), ("candidate", o.candidate)):
        if res is not None:
            t = _tokens(res.results)
            if t["mean_tokens_in"] is not None:
                parts.append(f"{role} {t['mean_tokens_in']:.0f} in / {t['mean_tokens_out'] or 0:.0f} out")
    if parts:
        out.append("tokens per request: " + ", ".join(parts))
    c = o.comparison
    continuous = any(
        s.value not in (None, 0.0, 1.0) for r in o.baseline.results for s in r.scores
    )
    if c is not None and continuous and c.mean_value_delta is not None and c.value_delta_interval is not None:
        iv = c.value_delta_interval
        out.append(f"mean score delta {c.mean_value_delta:+.3f} (95% paired {iv.method} {iv.low:+.3f} to {iv.high:+.3f})")
    return out


def _flips(o: SuiteOutcome) -> list[Flip]:
    if o.comparison is None:
        return []
    return list(o.comparison.regressions) + list(o.comparison.fixes)


def _case_json(r: CaseResult) -> dict[str, Any]:
    return {
        "output": r.output.text,
        "passed": r.passed,
        "value": r.value,
        "scores": [asdict(s) for s in r.scores],
        "tokens_in": r.output.tokens_in,
        "tokens_out": r.output.tokens_out,
        "latency_s": r.output.latency_s,
        "cached": r.output.cached,
    }


def _subject_json(s: SubjectInfo | None) -> dict[str, Any] | None:
    return None if s is None else asdict(s)


def _tokens(results: tuple[CaseResult, ...]) -> dict[str, float | None]:
    ins = [r.output.tokens_in for r in results if r.output.tokens_in is not None]
    outs = [r.output.tokens_out for r in results if r.output.tokens_out is not None]
    return {
        "mean_tokens_in": sum(ins) / len(ins) if ins else None,
        "mean_tokens_out": sum(outs) / len(outs) if outs else None,
    }


def to_json(run: GateRun) -> dict[str, Any]:
    suites = []
    for o in run.outcomes:
        cand_by_id = {r.case.id: r for r in o.candidate.results} if o.candidate else {}
        entry: dict[str, Any] = {
            "name": o.suite.name,
            "kind": o.suite.kind,
            "path": str(o.suite.path),
            "suite_hash": o.suite.hash,
            "gate": o.gate,
            "summary": suite_row(o),
            "baseline": {"n": o.baseline.n, "passed": o.baseline.n_passed, **_tokens(o.baseline.results)},
            "candidate": None if o.candidate is None else {"n": o.candidate.n, "passed": o.candidate.n_passed, **_tokens(o.candidate.results)},
            "decisions": [asdict(d) for d in o.decisions],
            "goldens": None if o.goldens is None else {"path": str(o.goldens.path), "n": len(o.goldens.hashes), "written": o.goldens_written},
            "cases": [
                {
                    "id": r.case.id,
                    "input": r.case.messages[-1]["content"],
                    "expected": r.case.expected,
                    "tags": list(r.case.tags),
                    "baseline": _case_json(r),
                    "candidate": _case_json(cand_by_id[r.case.id]) if r.case.id in cand_by_id else None,
                }
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
                "mcnemar_p": c.mcnemar_p,
                "mean_value_delta": c.mean_value_delta,
                "value_delta_interval": None if c.value_delta_interval is None else asdict(c.value_delta_interval),
            }
        if o.suite.labels:
            entry["per_class"] = {
                role: per_class_prf(o.suite.labels, [str(r.case.expected) for r in res.results], [_label(r) for r in res.results])
                for role, res in (("baseline", o.baseline), ("candidate", o.candidate)) if res is not None
            }
        suites.append(entry)
    tco = None
    if run.tco is not None:
        p = run.tco.pricing
        tco = {
            "pricing": {"file": str(p.path), "as_of": p.as_of, "source": p.source, "requests_per_day": p.requests_per_day,
                        "billing": p.billing, "serving": {"name": p.serving_name, "usd_per_hour": p.serving_usd_per_hour}},
            "subjects": [asdict(s) for s in run.tco.subjects],
            "break_even_days": run.tco.break_even_days,
            "break_even": run.tco.break_even_note,
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "verdict": verdict(run),
        "run": run.info,
        "tco": tco,
        "subjects": {"baseline": _subject_json(run.baseline), "candidate": _subject_json(run.candidate)},
        "suites": suites,
    }


def _label(r: CaseResult) -> str | None:
    return next((s.label for s in r.scores if s.label is not None), None)


def to_markdown(run: GateRun, max_flips: int = 50) -> str:
    v = verdict(run)
    icon = {"promoted": "✅", "blocked": "⛔", "baseline-only": "🔴", "error": "⚠️"}[v]
    out = [f"## {icon} pytest-ftgate: {v}", ""]
    out.append(f"- baseline: `{run.baseline.name}` ({run.baseline.kind}, `{run.baseline.fingerprint[:12]}`)")
    if run.candidate:
        out.append(f"- candidate: `{run.candidate.name}` ({run.candidate.kind}, `{run.candidate.fingerprint[:12]}`)")
    out += ["", "| suite | kind | baseline | candidate | Δ | 95% CI (Wilson) | decision |", "|---|---|---:|---:|---:|---|---|"]
    for o in run.outcomes:
        r = suite_row(o)
        delta = "—" if r["delta"] is None else f"{100 * r['delta']:+.1f}pp"
        out.append(
            f"| {r['suite']} | {r['kind']} | {_pct(r['baseline'])} | {_pct(r['candidate'])} | {delta} | "
            f"{_pct(r['interval'][0])}–{_pct(r['interval'][1])} | {STATUS_MARK[r['decision']]} |"
        )
    out.append("")
    for o in run.outcomes:
        for d in o.decisions:
            out.append(f"- **{o.suite.name}::{d.criterion}** {STATUS_MARK[d.status]}: {d.summary}")
            out.extend(f"  - ⚠️ {w}" for w in d.warnings)
        out.extend(f"  - {x}" for x in _extra_lines(o))
    for o in run.outcomes:
        if o.suite.labels:
            out += ["", f"**{o.suite.name}: per-class precision / recall / F1**", "",
                    "| class | support | " + " | ".join(r for r, x in (("baseline", o.baseline), ("candidate", o.candidate)) if x) + " |",
                    "|---|---:|" + "---|" * (2 if o.candidate else 1)]
            stats = {role: per_class_prf(o.suite.labels, [str(r.case.expected) for r in res.results], [_label(r) for r in res.results])
                     for role, res in (("baseline", o.baseline), ("candidate", o.candidate)) if res is not None}
            for label in o.suite.labels:
                cells = [f"{m[label]['precision']:.2f} / {m[label]['recall']:.2f} / {m[label]['f1']:.2f}" for m in stats.values()]
                out.append(f"| {label} | {int(stats['baseline'][label]['support'])} | " + " | ".join(cells) + " |")
    if run.tco is not None:
        out += ["", _tco_markdown(run.tco)]
    for o in run.outcomes:
        flips = _flips(o)
        if not flips:
            continue
        out += ["", f"<details><summary>{len(flips)} flipped case(s) in {o.suite.name}</summary>", ""]
        out += ["| case | flip | baseline | candidate |", "|---|---|---|---|"]
        for f in flips[:max_flips]:
            arrow = "pass→fail" if f.direction == "regression" else "fail→pass"
            cell = lambda s: _clip(s, 120).replace("|", "\\|")  # noqa: E731
            out.append(f"| `{f.case.id}` | {arrow} | {cell(f.baseline.output.text)} | {cell(f.candidate.output.text)} |")
        out += ["", "</details>"]
    return "\n".join(out) + "\n"


def _tco_markdown(tco: Any) -> str:
    p = tco.pricing
    rows = [
        f"**Cost** at {p.requests_per_day:,.0f} requests/day ({p.billing} billing on {p.serving_name}, "
        f"${p.serving_usd_per_hour}/h; prices as of {p.as_of}, `{p.path.name}`)",
        "",
        "| approach | cost / 1k requests | cost / month | quality | p50 latency | p95 latency | tokens in / out | training |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in tco.subjects:
        q = "—" if s.quality is None else f"{100 * s.quality:.1f}%"
        lat = lambda v: "—" if v is None else f"{1000 * v:,.0f} ms"  # noqa: E731
        toks = "—" if s.mean_tokens_in is None else f"{s.mean_tokens_in:.0f} / {s.mean_tokens_out or 0:.0f}"
        usd = lambda v, spec: f"${v:{spec}}" if s.priced else "unknown"  # noqa: E731
        rows.append(f"| {s.role}: `{_clip(s.name, 40)}` | {usd(s.usd_per_1k, '.4f')} | {usd(s.usd_per_month, ',.2f')} | {q} | "
                    f"{lat(s.p50_latency_s)} | {lat(s.p95_latency_s)} | {toks} | ${s.training_usd:.2f} |")
    rows += [f"\n{s.role}: {s.note}" for s in tco.subjects if s.note]
    if len(tco.subjects) == 2:
        rows += ["", f"Break-even: **{tco.break_even_note}**"]
    return "\n".join(rows)


def write_reports(run: GateRun, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "report.json", directory / "report.md"
    json_path.write_text(json.dumps(to_json(run), indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    md = to_markdown(run)
    md_path.write_text(md, encoding="utf-8")
    from .report_html import write_html

    html_path = write_html(run, directory / "report.html")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(md)
    return [json_path, md_path, html_path]
