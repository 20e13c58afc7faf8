"""Total cost of ownership: cost per 1k requests, monthly cost, latency, training cost, break-even.

Inputs: a pricing file (bundled defaults in pytest_ftgate/data/pricing.yaml, dated and sourced)
and what the gate measured for each subject: tokens in and out per request, latency, and the
compute seconds each request used. API subjects pay per token; self-hosted ones pay for compute
time on the serving hardware (billing: utilization) or for whole instances kept on (always_on).

    baseline monthly  = requests/day x 30.4 x cost per request
    break-even (days) = training cost / (baseline daily cost - candidate daily cost)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PricingError
from .types import SubjectInfo, SuiteResult
from .yamlio import line_of, load_yaml_with_lines

DAYS_PER_MONTH = 30.4
HOURS_PER_MONTH = 730.0
DEFAULT_PRICING = Path(__file__).parent / "data" / "pricing.yaml"


@dataclass(frozen=True)
class Pricing:
    as_of: str
    source: str
    requests_per_day: float
    billing: str
    serving_name: str
    serving_usd_per_hour: float
    serving_rps: float | None  # throughput of the serving hardware, when known better than measured
    training_gpu_usd_per_hour: float
    training_cpu_usd_per_hour: float
    api: dict[str, tuple[float, float]]
    path: Path


def load_pricing(path: Path | None = None) -> Pricing:
    path = path or DEFAULT_PRICING
    if not path.exists():
        raise PricingError(f"{path}: pricing file not found (--ftgate-pricing)")
    try:
        data, lines = load_yaml_with_lines(path, error=PricingError)  # type: ignore[arg-type]
    except PricingError:
        raise
    if not isinstance(data, dict):
        raise PricingError(f"{path}: a pricing file is a YAML mapping (see the bundled pricing.yaml)")

    def number(*keys: str, default: float | None = None, minimum: float = 0.0) -> float:
        node: Any = data
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        if node is None:
            if default is None:
                raise PricingError(f"{path}:{line_of(lines, *keys[:-1])}: missing `{'.'.join(keys)}`")
            return default
        if isinstance(node, bool) or not isinstance(node, (int, float)) or node < minimum:
            raise PricingError(f"{path}:{line_of(lines, *keys)}: `{'.'.join(keys)}` must be a number >= {minimum}, got {node!r}")
        return float(node)

    billing = data.get("billing", "utilization")
    if billing not in ("utilization", "always_on"):
        raise PricingError(f"{path}:{line_of(lines, 'billing')}: billing must be utilization or always_on, got {billing!r}")
    api = {}
    for model, prices in (data.get("api") or {}).items():
        if not isinstance(prices, dict):
            raise PricingError(f"{path}:{line_of(lines, 'api', model)}: api.{model} needs usd_per_1m_input and usd_per_1m_output")
        api[str(model)] = (number("api", model, "usd_per_1m_input"), number("api", model, "usd_per_1m_output"))
    serving = data.get("serving") or {}
    return Pricing(
        as_of=str(data.get("as_of", "unknown")),
        source=str(data.get("source", "")).strip(),
        requests_per_day=number("requests_per_day", minimum=1),
        billing=billing,
        serving_name=str(serving.get("name", "serving hardware")),
        serving_usd_per_hour=number("serving", "usd_per_hour"),
        serving_rps=number("serving", "requests_per_second") if "requests_per_second" in serving else None,
        training_gpu_usd_per_hour=number("training", "gpu_usd_per_hour", default=0.0),
        training_cpu_usd_per_hour=number("training", "cpu_usd_per_hour", default=0.0),
        api=api,
        path=path,
    )


@dataclass(frozen=True)
class SubjectCost:
    role: str
    name: str
    kind: str
    requests: int
    mean_tokens_in: float | None
    mean_tokens_out: float | None
    p50_latency_s: float | None
    p95_latency_s: float | None
    throughput_rps: float | None
    usd_per_1k: float
    usd_per_month: float
    training_usd: float
    quality: float | None  # pass rate over the task suites (or all suites when there is none)
    note: str = ""  # set when the serving cost is unknown (and the cost fields are 0): why, and the fix

    @property
    def priced(self) -> bool:
        return not self.note


@dataclass(frozen=True)
class TCO:
    pricing: Pricing
    subjects: tuple[SubjectCost, ...]
    break_even_days: float | None  # None: see break_even_note
    break_even_note: str = ""

    def curve(self, days: int = 365) -> dict[str, list[float]]:
        """Cumulative cost by day, training included: for the break-even plot."""
        return {
            s.role: [s.training_usd + s.usd_per_month / DAYS_PER_MONTH * d for d in range(days + 1)] for s in self.subjects
        }


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def subject_cost(info: SubjectInfo, results: list[SuiteResult], pricing: Pricing, quality: float | None) -> SubjectCost:
    outputs = [r.output for res in results for r in res.results]
    t_in = [o.tokens_in for o in outputs if o.tokens_in is not None]
    t_out = [o.tokens_out for o in outputs if o.tokens_out is not None]
    latencies = [o.latency_s for o in outputs if o.latency_s is not None]
    compute_s = [o.latency_s / max(1, o.batch_size) for o in outputs if o.latency_s is not None]
    mean_in = sum(t_in) / len(t_in) if t_in else None
    mean_out = sum(t_out) / len(t_out) if t_out else None
    throughput = len(compute_s) / sum(compute_s) if compute_s and sum(compute_s) > 0 else None
    per_day = pricing.requests_per_day
    note = ""
    if info.kind == "openai":
        # An unpriced endpoint (a self-hosted server, an `ft:` model) leaves its cost unknown and
        # says how to price it; the quality gates do not depend on prices.
        prices = pricing.api.get(info.name)
        if prices is None:
            per_request, monthly = 0.0, 0.0
            note = f"unpriced: add api.{info.name} (usd_per_1m_input, usd_per_1m_output) to {pricing.path}"
        else:
            per_request = ((mean_in or 0) * prices[0] + (mean_out or 0) * prices[1]) / 1e6
            monthly = per_request * per_day * DAYS_PER_MONTH
    else:
        rps = pricing.serving_rps or throughput
        if not rps:
            per_request, monthly, note = 0.0, 0.0, "no latency measured (outputs file): compute cost unknown"
        elif pricing.billing == "always_on":
            instances = max(1, math.ceil(per_day / 86400 / rps))
            monthly = instances * pricing.serving_usd_per_hour * HOURS_PER_MONTH
            per_request = monthly / (per_day * DAYS_PER_MONTH)
        else:
            per_request = pricing.serving_usd_per_hour / 3600 / rps
            monthly = per_request * per_day * DAYS_PER_MONTH
    training = 0.0
    manifest = info.details.get("manifest") if info.role == "candidate" else None
    if manifest:
        gpu_hours = float(manifest.get("gpu_hours") or 0)
        wall_hours = float(manifest.get("wall_s") or 0) / 3600
        training = gpu_hours * pricing.training_gpu_usd_per_hour if gpu_hours else wall_hours * pricing.training_cpu_usd_per_hour
    return SubjectCost(
        role=info.role, name=info.name, kind=info.kind, requests=len(outputs), mean_tokens_in=mean_in,
        mean_tokens_out=mean_out, p50_latency_s=_percentile(latencies, 0.5), p95_latency_s=_percentile(latencies, 0.95),
        throughput_rps=throughput, usd_per_1k=per_request * 1000, usd_per_month=monthly, training_usd=training,
        quality=quality, note=note,
    )


def compute_tco(run: Any, pricing: Pricing) -> TCO:
    """TCO of a GateRun's subjects, side by side."""
    def quality(role: str) -> float | None:
        task = [o for o in run.outcomes if o.suite.kind == "task"] or list(run.outcomes)
        results = [getattr(o, role) for o in task if getattr(o, role) is not None]
        n = sum(r.n for r in results)
        return sum(r.n_passed for r in results) / n if n else None

    subjects = [subject_cost(run.baseline, [o.baseline for o in run.outcomes], pricing, quality("baseline"))]
    if run.candidate is not None:
        subjects.append(subject_cost(run.candidate, [o.candidate for o in run.outcomes], pricing, quality("candidate")))
    break_even, note = None, ""
    if len(subjects) == 2:
        base, cand = subjects
        daily_saving = (base.usd_per_month - cand.usd_per_month) / DAYS_PER_MONTH
        if base.note or cand.note:
            note = "unknown: no serving cost for the " + " and the ".join(s.role for s in subjects if s.note)
        elif daily_saving > 0:
            break_even = cand.training_usd / daily_saving
            note = f"{break_even:.1f} days"
        else:
            note = "never: the candidate costs as much or more to serve"
    return TCO(pricing, tuple(subjects), break_even, note)


def _usd(s: SubjectCost, value: float, spec: str) -> str:
    return format(value, spec) if s.priced else "unknown"


def tco_lines(tco: TCO) -> list[str]:
    p = tco.pricing
    lines = [
        f"TCO at {p.requests_per_day:,.0f} requests/day ({p.billing}; {p.serving_name} at ${p.serving_usd_per_hour}/h; prices as of {p.as_of})",
        f"{'subject':<10} {'$/1k req':>9} {'$/month':>10} {'quality':>8} {'p50 s':>7} {'p95 s':>7} {'tok in':>7} {'tok out':>7} {'training $':>10}",
    ]
    for s in tco.subjects:
        q = "—" if s.quality is None else f"{100 * s.quality:.1f}%"
        f = lambda v, spec: "—" if v is None else format(v, spec)  # noqa: E731
        lines.append(
            f"{s.role:<10} {_usd(s, s.usd_per_1k, '.4f'):>9} {_usd(s, s.usd_per_month, ',.2f'):>10} {q:>8} {f(s.p50_latency_s, '.2f'):>7} "
            f"{f(s.p95_latency_s, '.2f'):>7} {f(s.mean_tokens_in, '.0f'):>7} {f(s.mean_tokens_out, '.0f'):>7} {s.training_usd:>10.2f}"
            + (f"  ({s.note})" if s.note else "")
        )
    if len(tco.subjects) == 2:
        lines.append(f"break-even: {tco.break_even_note}")
    return lines
