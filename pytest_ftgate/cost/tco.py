"""Total cost of ownership: cost per 1k requests, monthly cost, latency, training cost, break-even.

Inputs: a pricing file (pytest_ftgate.cost.pricing) and what the gate measured for each subject:
tokens in and out per request, latency, and the compute seconds each request used. How a subject
is billed (per token, or for compute time) is its kind's own `serving_cost`.

    monthly           = requests/day x 30.4 x cost per request
    break-even (days) = training cost / (baseline daily cost - candidate daily cost)

Local models are measured in batches: a request's latency is the wall time of the batch it was in,
and its compute is that time divided by the batch size. The cost per request therefore holds for
serving at the gate's batch size, which every report states beside it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..kinds import get_kind
from ..subjects import cost_model
from ..types import Output, SubjectInfo, SuiteResult
from .pricing import DAYS_PER_MONTH, Pricing, ServingCost, Usage, load_pricing  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class SubjectCost:
    role: str
    name: str
    kind: str
    requests: int
    mean_tokens_in: float | None
    mean_tokens_out: float | None
    p50_latency_s: float | None  # wall time until the answer came back (for a batch: the whole batch's)
    p95_latency_s: float | None
    p50_compute_s: float | None  # compute per request: latency / batch size
    batch_size: int | None  # the batch size most requests were served at (None: one request per call)
    throughput_rps: float | None
    usd_per_1k: float | None  # None: unknown, see note
    usd_per_month: float | None
    usd_per_1k_iqr: tuple[float, float] | None  # at the quartiles of the measured compute times; None: not timed
    training_usd: float
    quality: float | None
    note: str = ""  # why the serving cost is unknown, and the fix

    @property
    def priced(self) -> bool:
        return self.usd_per_1k is not None


@dataclass(frozen=True)
class EvaluationCost:
    """What judging cost this run: kept apart from serving, since it is paid per gate, not per request."""

    judge: str
    calls: int
    cached: int
    tokens_in: int
    tokens_out: int
    usd: float | None  # None: unknown, see note
    note: str = ""


@dataclass(frozen=True)
class TCO:
    pricing: Pricing
    subjects: tuple[SubjectCost, ...]
    break_even_days: float | None  # None: see break_even_note
    break_even_note: str = ""
    quality_label: str = "pass rate over all suites"
    evaluation: tuple[EvaluationCost, ...] = ()

    def curve(self, days: int = 365) -> dict[str, list[float]]:
        """Cumulative cost by day, training included, for the priced subjects: the break-even plot."""
        return {
            s.role: [s.training_usd + (s.usd_per_month or 0.0) / DAYS_PER_MONTH * d for d in range(days + 1)]
            for s in self.subjects if s.priced
        }


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def usage_of(outputs: Sequence[Output]) -> Usage:
    """What the requests that produced `outputs` used, as the cost models price it."""
    t_in = [o.tokens_in for o in outputs if o.tokens_in is not None]
    t_out = [o.tokens_out for o in outputs if o.tokens_out is not None]
    # The median compute time, not the mean: one batch slowed by another job on the machine moves it least.
    median = _percentile([o.latency_s / max(1, o.batch_size) for o in outputs if o.latency_s is not None], 0.5)
    return Usage(requests=len(outputs), mean_tokens_in=sum(t_in) / len(t_in) if t_in else None,
                 mean_tokens_out=sum(t_out) / len(t_out) if t_out else None, throughput_rps=1 / median if median else None)


def serving_cost(info: SubjectInfo, outputs: Sequence[Output], pricing: Pricing) -> ServingCost:
    """The cost of serving `info` as these outputs measured it: the TCO's figure, for any subset of the requests."""
    return cost_model(info.kind).serving_cost(info, usage_of(outputs), pricing)


def p95_latency(outputs: Sequence[Output]) -> float | None:
    return _percentile([o.latency_s for o in outputs if o.latency_s is not None], 0.95)


def subject_cost(info: SubjectInfo, results: list[SuiteResult], pricing: Pricing, quality: float | None) -> SubjectCost:
    outputs = [o for res in results for r in res.results for o in r.outputs]  # every sample of a sampled case
    timed = [o for o in outputs if o.latency_s is not None]
    latencies = [o.latency_s for o in timed]
    compute_s = [o.latency_s / max(1, o.batch_size) for o in timed]
    batch = Counter(o.batch_size for o in timed).most_common(1)[0][0] if timed else None
    usage = usage_of(outputs)
    model = cost_model(info.kind)
    cost = model.serving_cost(info, usage, pricing)
    iqr = None
    if cost.usd_per_request is not None and len(compute_s) >= 2 and not pricing.serving_rps:  # else a fixed rate
        quartiles = [model.serving_cost(info, replace(usage, throughput_rps=1 / q), pricing).usd_per_request
                     for q in (_percentile(compute_s, 0.25), _percentile(compute_s, 0.75)) if q]
        if len(quartiles) == 2 and None not in quartiles:
            iqr = (min(quartiles) * 1000, max(quartiles) * 1000)
    training = 0.0
    if info.role == "candidate" and info.training is not None:
        t = info.training
        training = t.gpu_hours * pricing.training_gpu_usd_per_hour if t.gpu_hours else t.wall_s / 3600 * pricing.training_cpu_usd_per_hour
    return SubjectCost(
        role=info.role, name=info.name, kind=info.kind, requests=usage.requests, mean_tokens_in=usage.mean_tokens_in,
        mean_tokens_out=usage.mean_tokens_out, p50_latency_s=_percentile(latencies, 0.5),
        p95_latency_s=p95_latency(timed), p50_compute_s=_percentile(compute_s, 0.5),
        batch_size=batch if batch and batch > 1 else None, throughput_rps=usage.throughput_rps,
        usd_per_1k=None if cost.usd_per_request is None else cost.usd_per_request * 1000,
        usd_per_month=cost.usd_per_month, usd_per_1k_iqr=iqr, training_usd=training, quality=quality, note=cost.note,
    )


def quality_suites(outcomes: Any) -> tuple[list[Any], str]:
    """The suites whose pass rate is the TCO's quality (kinds that declare it), and its label."""
    chosen = [o for o in outcomes if get_kind(o.suite.kind).quality]
    if not chosen:
        return list(outcomes), "pass rate over all suites"
    names = ", ".join(o.suite.name for o in chosen)
    measure = get_kind(chosen[0].suite.kind).headline(chosen[0]).measure
    return chosen, f"{measure} on {names}"


def compute_tco(run: Any, pricing: Pricing) -> TCO:
    """TCO of a GateRun's subjects, side by side."""
    chosen, label = quality_suites(run.outcomes)

    def quality(role: str) -> float | None:  # suites that could not run measured nothing
        measured = [o for o in chosen if not getattr(o, "could_not_run", False)]
        results = [getattr(o, role) for o in measured if getattr(o, role) is not None]
        n = sum(r.n for r in results)
        return sum(r.n_passed for r in results) / n if n else None

    subjects = [subject_cost(run.baseline, [o.baseline for o in run.outcomes], pricing, quality("baseline"))]
    if run.candidate is not None:
        subjects.append(subject_cost(run.candidate, [o.candidate for o in run.outcomes], pricing, quality("candidate")))
    break_even, note = None, ""
    if len(subjects) == 2:
        base, cand = subjects
        if not (base.priced and cand.priced):
            note = "unknown: no serving cost for the " + " and the ".join(s.role for s in subjects if not s.priced)
        elif (daily_saving := (base.usd_per_month - cand.usd_per_month) / DAYS_PER_MONTH) > 0:
            break_even = cand.training_usd / daily_saving
            note = (f"{break_even:.1f} days" if cand.training_usd
                    else "at once: the candidate costs less to serve and no training cost is recorded")
        else:
            note = "never: the candidate costs as much or more to serve"
        if base.priced and cand.priced and (noise := _too_noisy(base, cand)):
            note += f"; {noise}"
    return TCO(pricing, tuple(subjects), break_even, note, label, tuple(evaluation_cost(u, pricing) for u in run.evaluation))


def _too_noisy(base: SubjectCost, cand: SubjectCost) -> str:
    """Why the two costs cannot be told apart, or '': their interquartile ranges overlap while the point
    estimates differ by less than the ranges are wide (timings that swing with the machine's load)."""
    if base.usd_per_1k_iqr is None or cand.usd_per_1k_iqr is None:
        return ""
    (b_lo, b_hi), (c_lo, c_hi) = base.usd_per_1k_iqr, cand.usd_per_1k_iqr
    if b_hi < c_lo or c_hi < b_lo:
        return ""
    return (f"too noisy to decide on: the costs per 1k requests overlap across the timings' quartiles (baseline "
            f"${b_lo:.4g}–${b_hi:.4g}, candidate ${c_lo:.4g}–${c_hi:.4g}); measure on an idle machine, or set "
            "serving.requests_per_second in your pricing file")


def evaluation_cost(usage: Any, pricing: Pricing) -> EvaluationCost:
    """A judge's calls priced as its subject kind bills them (`serving_cost`); where that is unknown, its reason."""
    calls = usage.calls
    per_call = Usage(calls, usage.tokens_in / calls if calls else 0, usage.tokens_out / calls if calls else 0, None)
    cost = cost_model(usage.kind).serving_cost(SubjectInfo("judge", usage.kind, usage.name, ""), per_call, pricing)
    usd = None if cost.usd_per_request is None else cost.usd_per_request * calls
    return EvaluationCost(usage.spec, calls, usage.cached, usage.tokens_in, usage.tokens_out, usd, cost.note)
