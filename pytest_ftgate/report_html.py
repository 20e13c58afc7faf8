"""report.html: one self-contained page (inline SVG plots, no network) for a gate run.

Per-suite pass rates with Wilson intervals, the flipped cases side by side, latency
distributions, and cumulative cost against requests served with the break-even marked.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .report import STATUS_MARK, _flips, suite_row, verdict
from .runner import GateRun

COLORS = {"baseline": "#8c8c8c", "candidate": "#1f77b4"}


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE: the SVG is inlined


def _pass_rates(run: GateRun) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    from .stats import wilson_interval

    names = [o.suite.name for o in run.outcomes]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.6 * len(names)), 3.2))
    x = np.arange(len(names))
    roles = ["baseline"] + (["candidate"] if run.candidate else [])
    width = 0.8 / len(roles)
    for i, role in enumerate(roles):
        results = [getattr(o, role) for o in run.outcomes]
        rates = [r.pass_rate * 100 for r in results]
        ivs = [wilson_interval(r.n_passed, r.n) for r in results]
        err = [[rate - iv.low * 100 for rate, iv in zip(rates, ivs)], [iv.high * 100 - rate for rate, iv in zip(rates, ivs)]]
        ax.bar(x + (i - (len(roles) - 1) / 2) * width, rates, width, yerr=err, capsize=3, label=role, color=COLORS[role])
    ax.set_xticks(x, names, rotation=15, ha="right")
    ax.set_ylim(0, 105)
    ax.set_ylabel("pass rate, % (95% Wilson)")
    ax.legend(loc="lower right", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _latency(run: GateRun) -> str | None:
    import matplotlib.pyplot as plt

    series = {}
    for role in ("baseline", "candidate"):
        values = [r.output.latency_s / max(1, r.output.batch_size)
                  for o in run.outcomes if getattr(o, role) is not None
                  for r in getattr(o, role).results if r.output.latency_s is not None]
        if values:
            series[role] = values
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3))
    for role, values in series.items():
        ax.hist(values, bins=30, alpha=0.6, label=role, color=COLORS[role])
    ax.set_xlabel("compute seconds per request (batch time / batch size)")
    ax.set_ylabel("requests")
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _cost(run: GateRun) -> str | None:
    import matplotlib.pyplot as plt

    tco = run.tco
    if tco is None or not any(s.priced for s in tco.subjects):
        return None
    per_day = tco.pricing.requests_per_day
    horizon = 365 if tco.break_even_days is None else max(30, min(3650, int(tco.break_even_days * 2) + 1))
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for s in (s for s in tco.subjects if s.priced):  # an unknown cost is left out, not drawn as $0
        days = range(horizon + 1)
        ax.plot([d * per_day / 1e6 for d in days], [s.training_usd + s.usd_per_1k * d * per_day / 1000 for d in days],
                label=f"{s.role} (${s.usd_per_1k:.4f}/1k)", color=COLORS[s.role])
    if tco.break_even_days is not None:
        x = tco.break_even_days * per_day / 1e6
        ax.axvline(x, color="#d62728", linestyle="--", linewidth=1)
        ax.annotate(f"break-even: {tco.break_even_days:.1f} days", (x, ax.get_ylim()[1] * 0.9), color="#d62728", fontsize=8,
                    xytext=(4, 0), textcoords="offset points")
    ax.set_xlabel(f"requests served, millions ({per_day:,.0f}/day)")
    ax.set_ylabel("cumulative cost, USD (training included)")
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def render_html(run: GateRun) -> str:
    import jinja2
    import matplotlib

    matplotlib.use("Agg")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    flips = [(o.suite.name, f) for o in run.outcomes for f in _flips(o)]
    return env.get_template("report.html.j2").render(
        run=run,
        verdict=verdict(run),
        rows=[(o, suite_row(o)) for o in run.outcomes],
        mark=STATUS_MARK,
        flips=flips,
        plots={"rates": _pass_rates(run), "latency": _latency(run), "cost": _cost(run)},
    )


def write_html(run: GateRun, path: Path) -> Path:
    path.write_text(render_html(run), encoding="utf-8")
    return path
