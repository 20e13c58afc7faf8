"""report.md: the PR comment / GitHub step summary of a gate run."""

from __future__ import annotations

from .view import STATUS_MARK, ReportView, clip, delta_text, interval_text, money, pct, seconds

ICON = {"promoted": "✅", "blocked": "⛔", "baseline-only": "🔴", "error": "⚠️", "partial": "⚠️"}


def to_markdown(view: ReportView, max_flips: int = 50) -> str:
    out = [f"## {ICON[view.verdict]} pytest-ftgate: {view.verdict_text}", ""]
    b = view.baseline
    out.append(f"- baseline: `{b.name}` ({b.kind}, `{b.fingerprint[:12]}`{'; ' + b.generation if b.generation else ''})")
    if view.candidate:
        c = view.candidate
        out.append(f"- candidate: `{c.name}` ({c.kind}, `{c.fingerprint[:12]}`{'; ' + c.generation if c.generation else ''})")
    out.append(f"- suites: {', '.join(f'`{f}`' for f in view.suite_files)}")
    out.extend(f"- ⚠️ **note**: {n}" for n in view.notices)
    if view.not_run:
        out.append(f"- **not run** (deselected): {', '.join(f'`{n}`' for n in view.not_run)}")
    out += ["", "| suite | kind | measure | baseline | candidate | Δ | 95% CI (Wilson) | decision |",
            "|---|---|---|---:|---:|---:|---|---|"]
    for r in view.rows:
        out.append(f"| {r.suite} | {r.kind} | {r.measure} | {pct(r.baseline)} | {pct(r.candidate)} | {delta_text(r)} | "
                   f"{interval_text(r)} | {STATUS_MARK[r.decision]} |")
    out.append("")
    for check in view.checks:
        out.append(f"- **{check.criterion}** {STATUS_MARK[check.status]}: {check.summary}")
    for d in view.details:
        for dec in d.decisions:
            out.append(f"- **{d.suite}::{dec.criterion}** {STATUS_MARK[dec.status]}: {dec.summary}")
            out.extend(f"  - ⚠️ {w}" for w in dec.warnings)
        out.extend(f"  - {x}" for x in d.notes)
    for t in view.classes:
        out += ["", f"**{t.suite}: per-class precision / recall / F1**", "",
                "| class | support | " + " | ".join(t.roles) + " |", "|---|---:|" + "---|" * len(t.roles)]
        for label, support, cells in t.rows:
            out.append(f"| {label} | {support} | " + " | ".join(f"{p:.2f} / {r:.2f} / {f:.2f}" for p, r, f in cells) + " |")
    if view.cost is not None:
        out += ["", _cost(view)]
    for d in view.details:
        if not d.flips:
            continue
        out += ["", f"<details><summary>{len(d.flips)} flipped case(s) in {d.suite}</summary>", ""]
        out += ["| case | flip | baseline | candidate |", "|---|---|---|---|"]
        for f in d.flips[:max_flips]:
            arrow = "pass→fail" if f.direction == "regression" else "fail→pass"
            cell = lambda s: clip(s, 120).replace("|", "\\|")  # noqa: E731
            out.append(f"| `{f.case_id}` | {arrow} | {cell(f.baseline)} | {cell(f.candidate)} |")
        out += ["", "</details>"]
    for d in view.details:
        for section in d.sections:
            out += section.markdown(max_flips)
    return "\n".join(out) + "\n"


def _cost(view: ReportView) -> str:
    assert view.cost is not None
    tco = view.cost.tco
    p = tco.pricing
    rows = [
        f"**Cost** at {p.requests_per_day:,.0f} requests/day ({p.billing} billing on {p.serving_name}, "
        f"${p.serving_usd_per_hour}/h; prices as of {p.as_of}, `{p.path.name}`). "
        f"Quality = {tco.quality_label}; {view.cost.latency_label}.",
        "",
        "| approach | cost / 1k requests | cost / month | quality | p50 latency | p95 latency | compute / request | "
        "tokens in / out | training |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in view.cost.rows:
        toks = "—" if s.mean_tokens_in is None else f"{s.mean_tokens_in:.0f} / {s.mean_tokens_out or 0:.0f}"
        rows.append(f"| {s.role}: `{clip(s.name, 40)}` | {money(s.usd_per_1k)} | {money(s.usd_per_month)} | {pct(s.quality)} | "
                    f"{seconds(s.p50_latency_s)} | {seconds(s.p95_latency_s)} | {seconds(s.p50_compute_s)} | {toks} | "
                    f"{money(s.training_usd)} |")
    rows += [f"\n{s.role}: {s.note}" for s in view.cost.rows if s.note]
    rows += [f"\n{s.role}: {money(s.usd_per_1k_iqr[0])}–{money(s.usd_per_1k_iqr[1])} per 1k requests at the quartiles of its "
             "measured compute times" for s in view.cost.rows if s.usd_per_1k_iqr is not None]
    if len(view.cost.rows) == 2:
        rows += ["", f"Break-even: **{tco.break_even_note}**"]
    for e in tco.evaluation:
        rows += ["", f"Evaluation cost (paid per gate, not per request): judge `{e.judge}`, {e.calls} calls "
                     f"({e.cached} from the cache), {e.tokens_in:,} tokens in / {e.tokens_out:,} out, {money(e.usd)}"
                     + (f" ({e.note})" if e.note else "")]
    return "\n".join(rows)
