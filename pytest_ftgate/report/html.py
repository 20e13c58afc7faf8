"""report.html: one self-contained page (inline SVG plots, no network) rendered from the view.

Per-suite measures with their intervals, the flipped cases side by side, compute time per
request, and cumulative cost against requests served with the break-even marked.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .view import STATUS_MARK, ReportView, delta_text, interval_text, money, pct, seconds

COLORS = {"baseline": "#8c8c8c", "candidate": "#1f77b4"}


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE: the SVG is inlined


def _measures(view: ReportView) -> str:
    """Each suite's measure for each subject, with the interval of the value the gate decided on."""
    import matplotlib.pyplot as plt
    import numpy as np

    rows = view.rows
    fig, ax = plt.subplots(figsize=(max(4.5, 1.7 * len(rows)), 3.2))
    x = np.arange(len(rows))
    roles = ["baseline"] + (["candidate"] if view.candidate else [])
    width = 0.8 / len(roles)
    for i, role in enumerate(roles):
        values = [getattr(r, role) for r in rows]
        heights = [100 * v if v is not None else 0 for v in values]
        err = [[0, 0] for _ in rows]
        for j, r in enumerate(rows):
            shown = r.candidate if r.candidate is not None else r.baseline
            if r.interval is not None and values[j] is not None and values[j] == shown:
                err[j] = [100 * (values[j] - r.interval.low), 100 * (r.interval.high - values[j])]
        ax.bar(x + (i - (len(roles) - 1) / 2) * width, heights, width, yerr=np.array(err).T, capsize=3, label=role,
               color=COLORS[role])
    ax.set_xticks(x, [f"{_wrap(r.suite)}\n({r.measure})" for r in rows], rotation=0, fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("%, with the 95% Wilson interval")
    ax.legend(loc="lower right", bbox_to_anchor=(1, 1.0), ncol=2, fontsize=8, frameon=False)  # above the bars
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _wrap(name: str, width: int = 16) -> str:
    """A long suite name broken after its hyphens, so that neighbouring tick labels do not overlap."""
    lines = [""]
    for part in name.replace("-", "-\0").split("\0"):
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)


def _latency(view: ReportView) -> str | None:
    import matplotlib.pyplot as plt

    if not view.latency:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3))
    for role, values in view.latency.items():
        ax.hist(values, bins=max(5, min(30, len(values) // 4)), alpha=0.6, label=role, color=COLORS[role])
    ax.set_xlabel("compute seconds per request (batch time / batch size)")
    ax.set_ylabel("requests")
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _cost(view: ReportView) -> str | None:
    import matplotlib.pyplot as plt

    if view.cost is None or not view.cost.curve:
        return None
    tco = view.cost.tco
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    by_role = {s.role: s for s in view.cost.rows}
    for role, points in view.cost.curve.items():  # an unknown cost is left out, not drawn as $0
        ax.plot([p[0] for p in points], [p[1] for p in points], label=f"{role} ({money(by_role[role].usd_per_1k)}/1k)",
                color=COLORS[role])
    if tco.break_even_days:  # none to mark when the candidate is cheaper from the first request
        x = tco.break_even_days * tco.pricing.requests_per_day / 1e6
        ax.axvline(x, color="#d62728", linestyle="--", linewidth=1)
        ax.annotate(f"break-even: {tco.break_even_days:.1f} days", (x, ax.get_ylim()[1] * 0.9), color="#d62728", fontsize=8,
                    xytext=(4, 0), textcoords="offset points")
    ax.set_xlabel(f"requests served, millions ({tco.pricing.requests_per_day:,.0f}/day)")
    ax.set_ylabel("cumulative cost, USD (training included)")
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _trend(view: ReportView) -> str | None:
    """Each suite's main measure over the last runs in the history store, promotions starred, this run ringed."""
    import matplotlib.pyplot as plt

    series = {name: points for name, points in view.trend.items() if len(points) > 1}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    longest = max(len(p) for p in series.values())
    for name, points in series.items():
        xs = list(range(longest - len(points), longest))  # every series ends at this run
        ys = [None if p.value is None else 100 * p.value for p in points]
        line = ax.plot(xs, [y if y is not None else float("nan") for y in ys], marker="o", markersize=3, label=name)[0]
        for x, y, p in zip(xs, ys, points):
            if y is not None and p.promoted:
                ax.plot([x], [y], marker="*", markersize=12, color=line.get_color(), linestyle="none")
            if y is not None and p.current:
                ax.plot([x], [y], marker="o", markersize=9, markerfacecolor="none", color=line.get_color(), linestyle="none")
    ax.set_xticks(range(longest), [str(i - longest + 1) if i < longest - 1 else "this run" for i in range(longest)], fontsize=7)
    ax.set_xlabel("gate runs (the history store), oldest first; ★ promoted")
    ax.set_ylabel("each suite's main measure, %")
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(1.0, 0.0), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def render_html(view: ReportView) -> str:
    import jinja2
    import matplotlib

    matplotlib.use("Agg")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent.parent / "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    env.filters.update(pct=pct, money=money, seconds=seconds)
    return env.get_template("report.html.j2").render(
        view=view,
        mark=STATUS_MARK,
        delta_text=delta_text,
        interval_text=interval_text,
        plots={"rates": _measures(view), "latency": _latency(view), "cost": _cost(view), "trend": _trend(view)},
    )


def write_html(view: ReportView, path: Path) -> Path:
    path.write_text(render_html(view), encoding="utf-8")
    return path
