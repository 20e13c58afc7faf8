"""The terminal summary of a gate run (pytest's terminal summary and `ftgate gate`)."""

from __future__ import annotations

from .view import STATUS_MARK, ReportView, clip, delta_text, interval_text, money, pct, seconds


def terminal_lines(view: ReportView, verbose: int = 0, max_flips: int = 10) -> list[str]:
    b = view.baseline
    lines = [f"baseline:  {b.name} [{b.kind} {b.fingerprint[:12]}{'; ' + b.generation if b.generation else ''}]"]
    if view.candidate:
        c = view.candidate
        lines.append(f"candidate: {c.name} [{c.kind} {c.fingerprint[:12]}{'; ' + c.generation if c.generation else ''}]")
    lines.extend(f"NOTE: {n}" for n in view.notices)
    header = f"{'suite':<22} {'kind':<11} {'measure':<18} {'baseline':>9} {'candidate':>9} {'delta':>8} {'95% CI':>13}  decision"
    lines += [header, "-" * len(header)]
    for r in view.rows:
        lines.append(
            f"{clip(r.suite, 22):<22} {r.kind:<11} {clip(r.measure, 18):<18} {pct(r.baseline):>9} {pct(r.candidate):>9} "
            f"{delta_text(r):>8} {interval_text(r):>13}  {STATUS_MARK[r.decision]}"
        )
    for d in view.details:
        name = d.suite
        for dec in d.decisions:
            lines.append(f"  {name}::{dec.criterion}: {STATUS_MARK[dec.status]} {dec.summary}")
            lines.extend(f"    warning: {w}" for w in dec.warnings)
        lines.extend(f"    {x}" for x in d.notes)
    for check in view.checks:
        lines.append(f"  {check.criterion}: {STATUS_MARK[check.status]} {check.summary}")
    for name in view.not_run:
        lines.append(f"  {name}: NOT RUN (deselected)")
    for d in view.details:
        name = d.suite
        if d.flips:
            shown = d.flips if verbose > 0 else d.flips[:max_flips]
            lines.append(f"flipped cases in {name} ({len(d.flips)}):")
            for f in shown:
                arrow = "PASS->FAIL" if f.direction == "regression" else "FAIL->PASS"
                lines.append(f"  [{arrow}] {f.case_id}: {clip(f.input, 60)}")
                lines.append(f"      baseline:  {clip(f.baseline, 90)}")
                lines.append(f"      candidate: {clip(f.candidate, 90)}")
                if f.why:
                    lines.append(f"      why: {clip(f.why, 90)}")
            if len(shown) < len(d.flips):
                lines.append(f"  … {len(d.flips) - len(shown)} more (use -v, or see report.md)")
        elif d.baseline_failures:
            lines.append(f"baseline fails {len(d.baseline_failures)}/{d.n} in {name}:")
            for case_id, text, why in d.baseline_failures if verbose > 0 else d.baseline_failures[:max_flips]:
                lines.append(f"  {case_id}: {clip(text, 70)} ({clip(why, 60)})")
        for section in d.sections:
            lines.extend(section.terminal(verbose, max_flips))
    if view.cost is not None:
        lines.extend(cost_lines(view))
    lines.append(f"verdict: {view.verdict.upper()}" + ("" if view.verdict_text == view.verdict else f" — {view.verdict_text}"))
    return lines


def cost_lines(view: ReportView) -> list[str]:
    assert view.cost is not None
    tco = view.cost.tco
    p = tco.pricing
    lines = [
        f"TCO at {p.requests_per_day:,.0f} requests/day ({p.billing}; {p.serving_name} at ${p.serving_usd_per_hour}/h; "
        f"prices as of {p.as_of})",
        f"  quality = {tco.quality_label}; {view.cost.latency_label}",
        f"{'subject':<10} {'$/1k req':>9} {'$/month':>10} {'quality':>8} {'p50 lat':>9} {'p95 lat':>9} {'compute':>9} "
        f"{'tok in':>7} {'tok out':>7} {'training':>9}",
    ]
    for s in view.cost.rows:
        if s.usd_per_1k_iqr is not None:
            lines.append(f"  {s.role}: {money(s.usd_per_1k_iqr[0])}–{money(s.usd_per_1k_iqr[1])} per 1k at the "
                         "quartiles of its measured compute times")
    for s in view.cost.rows:
        tin = "—" if s.mean_tokens_in is None else f"{s.mean_tokens_in:.0f}"
        tout = "—" if s.mean_tokens_out is None else f"{s.mean_tokens_out:.0f}"
        lines.append(
            f"{s.role:<10} {money(None if s.usd_per_1k is None else s.usd_per_1k):>9} {money(s.usd_per_month):>10} "
            f"{pct(s.quality):>8} {seconds(s.p50_latency_s):>9} {seconds(s.p95_latency_s):>9} {seconds(s.p50_compute_s):>9} "
            f"{tin:>7} {tout:>7} {money(s.training_usd):>9}" + (f"  ({s.note})" if s.note else "")
        )
    if len(view.cost.rows) == 2:
        lines.append(f"break-even: {tco.break_even_note}")
    for e in tco.evaluation:
        lines.append(f"evaluation (not serving): judge {e.judge}: {e.calls} calls ({e.cached} from the cache), "
                     f"{e.tokens_in:,} tokens in / {e.tokens_out:,} out, {money(e.usd)}" + (f" ({e.note})" if e.note else ""))
    return lines
