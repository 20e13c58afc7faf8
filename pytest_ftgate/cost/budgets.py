"""Serving budgets as gate criteria: p95 latency, cost per 1k requests, and the candidate's cost over the baseline's.

Any suite may set them in its `gate:` (decided on that suite's requests); the run may set them for every
suite together (--ftgate-max-p95-latency-s, --ftgate-max-cost-per-1k, --ftgate-max-cost-ratio, or their ini
keys). Each is decided on the figure the TCO reports, computed by the TCO's own code, with a 95% percentile
bootstrap interval over the calls that produced the answers: the independent measurements. A local model
times a batch, not a request, so its calls are its batches (a suite generated in three batches is three
timings, however many cases it has); an endpoint's calls are its requests. The ratio draws each subject's
calls on their own:

    the interval at or under the budget   passed
    the interval over the budget          blocked
    the interval straddles the budget     inconclusive: never a pass (it blocks), and says what would decide it

What a latency is depends on the engine (every report's generation line names it): a local model's is the
wall time of the batch its case was generated in; an endpoint's (and vLLM's) the request's round trip,
retries included. The cost is what the TCO prices: compute time at the pricing file's hourly rate for local
models, tokens at the model's per-token price for APIs. A budget with nothing to decide on (no request timed,
a model with no price) is an error: the gate could not run, which is not a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..kinds.base import Criterion, DecisionContext, GateKey, baseline_only, seconds
from ..stats import bootstrap_interval
from ..types import RUN, GateDecision, Interval, Output, SubjectInfo, SuiteResult
from .tco import p95_latency, serving_cost

Units = list[tuple[Output, ...]]  # one entry per call: the answers one timed call produced (a local batch, a request)


def _positive(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return f"must be a positive number, got {value!r}"
    return None


BUDGET_KEYS = (
    GateKey("max_p95_latency_s", _positive, "the p95 latency in seconds the subject must stay under (spread included)"),
    GateKey("max_cost_per_1k", _positive, "the serving cost in USD per 1k requests the subject must stay under"),
    GateKey("max_cost_ratio", _positive, "the candidate's cost per request over the baseline's must stay under this"),
)
CRITERIA = {"max_p95_latency_s": "latency", "max_cost_per_1k": "cost", "max_cost_ratio": "cost_ratio"}


def budget_key(name: str) -> GateKey | None:
    """A `gate:` key any suite may set, whatever its kind."""
    return next((k for k in BUDGET_KEYS if k.name == name), None)


def answers(result: SuiteResult | None) -> list[Output]:
    """Every answer of a subject on a suite: each sample of a sampled case."""
    return [o for r in result.results for o in r.outputs] if result is not None else []


def calls(outputs: Sequence[Output]) -> Units:
    """The answers grouped by the call that produced them: a local batch's rows share its wall time and size."""
    grouped: dict[tuple[float, int], list[Output]] = {}
    alone: Units = []
    for o in outputs:
        if o.latency_s is not None and o.batch_size > 1:
            grouped.setdefault((o.latency_s, o.batch_size), []).append(o)
        else:
            alone.append((o,))
    return [tuple(g) for g in grouped.values()] + alone


def budget_criteria(gate: dict[str, Any]) -> tuple[Criterion, ...]:
    """The budget criteria of a suite whose gate sets them, decided on its own requests."""
    return tuple(Criterion(CRITERIA[key], _suite_decider(key)) for key in CRITERIA if gate.get(key) is not None)


def _suite_decider(key: str) -> Callable[[DecisionContext], GateDecision]:
    def decide(ctx: DecisionContext) -> GateDecision:
        if key == "max_cost_ratio" and ctx.candidate is None:
            return baseline_only(ctx, CRITERIA[key], "; the cost ratio needs a candidate")
        subjects = {"baseline": (ctx.baseline.subject, answers(ctx.baseline))}
        if ctx.candidate is not None:
            subjects["candidate"] = (ctx.candidate.subject, answers(ctx.candidate))
        return decide_budget(ctx.suite.name, key, float(ctx.gate[key]), subjects, ctx.pricing)
    return decide


def decide_budget(where: str, key: str, limit: float, subjects: dict[str, tuple[SubjectInfo, list[Output]]],
                  pricing: Any) -> GateDecision:
    """One budget over `subjects` (role -> its info and every answer it gave). Without a candidate the baseline's
    latency and cost are decided (the red phase), as a pass rate is."""
    criterion = CRITERIA[key]
    role = "candidate" if "candidate" in subjects else "baseline"
    info, given = subjects[role]
    mine = calls(given)
    if key == "max_cost_ratio":
        if "candidate" not in subjects:
            return GateDecision(where, criterion, "skipped", "no --candidate: the cost ratio needs one")
        base_info, theirs = subjects["baseline"][0], calls(subjects["baseline"][1])
        figure = _ratio(base_info, theirs, info, mine, pricing)
        what, show = f"the candidate's cost over the baseline's ({base_info.name})", (lambda x: f"{x:.3g}x")
    elif key == "max_cost_per_1k":
        figure = _cost(info, mine, pricing)
        what, show = f"{role} cost per 1k requests", (lambda x: f"${x:.4g}")
    else:
        figure = _latency(mine)
        what, show = f"{role} p95 latency", seconds
    point, interval, problem = figure
    figures: dict[str, Any] = {"subject": role, "limit": limit, "value": point, "requests": len(given),
                               "calls": len(mine), "interval": None if interval is None else [interval.low, interval.high]}
    if problem:
        return GateDecision(where, criterion, "error", f"{what}: {problem}", figures)
    assert point is not None
    over = (f"{len(given)} requests" if len(mine) == len(given)
            else f"{len(given)} requests in {len(mine)} timed call{'' if len(mine) == 1 else 's'}")
    spread = (f"95% bootstrap {show(interval.low)}–{show(interval.high)} over {over}" if interval is not None
              else f"{over}: too few timings for a spread")
    text = f"{what} {show(point)} ({spread}); budget {show(limit)}"
    if interval is not None and interval.high <= limit:
        return GateDecision(where, criterion, "passed", text, figures)
    if interval is not None and interval.low > limit:
        reason = f"{text}: over budget"
        return GateDecision(where, criterion, "blocked", reason, figures, breaches=(reason,))
    why = ("its spread straddles the budget, so neither a pass nor a block can be told: add cases, or measure on a "
           "quieter machine" if interval is not None else "a single timing has no spread: add cases, or a smaller "
           "--ftgate-batch-size")
    return GateDecision(where, criterion, "inconclusive", f"{text}: {why}", figures, breaches=(f"{text}: inconclusive",))


Figure = tuple[float | None, Interval | None, str]  # the TCO's figure, its bootstrap interval, why it is unknown


def _flat(units_: Units, picks: Sequence[int] | None = None) -> list[Output]:
    chosen = units_ if picks is None else [units_[i] for i in picks]
    return [o for unit in chosen for o in unit]


def _latency(mine: Units) -> Figure:
    point = p95_latency(_flat(mine))
    if point is None:
        return None, None, ("no request was timed (outputs read from a file without latency_s?): nothing to decide "
                            "the budget on; give each line its latency_s, or remove max_p95_latency_s")
    return point, bootstrap_interval(len(mine), lambda picks: p95_latency(_flat(mine, picks))), ""


def _per_1k(info: SubjectInfo, outputs: list[Output], pricing: Any) -> tuple[float | None, str]:
    cost = serving_cost(info, outputs, pricing)
    return (None, cost.note) if cost.usd_per_request is None else (cost.usd_per_request * 1000, "")


def _cost(info: SubjectInfo, mine: Units, pricing: Any) -> Figure:
    point, note = _per_1k(info, _flat(mine), pricing)
    if point is None:
        return None, None, f"unknown ({note})"
    return point, bootstrap_interval(len(mine), lambda picks: _per_1k(info, _flat(mine, picks), pricing)[0]), ""


def _ratio(base: SubjectInfo, theirs: Units, cand: SubjectInfo, mine: Units, pricing: Any) -> Figure:
    def ratio(base_picks: Sequence[int] | None, cand_picks: Sequence[int] | None) -> float | None:
        b, c = _per_1k(base, _flat(theirs, base_picks), pricing)[0], _per_1k(cand, _flat(mine, cand_picks), pricing)[0]
        return None if b is None or c is None or b == 0 else c / b

    for info, given in ((base, theirs), (cand, mine)):
        if (note := _per_1k(info, _flat(given), pricing)[1]):
            return None, None, f"unknown: no serving cost for the {info.role} ({note})"
    point = ratio(None, None)
    if point is None:
        return None, None, "the baseline costs nothing to serve, so no ratio can be taken"
    return point, bootstrap_interval((len(theirs), len(mine)), ratio), ""  # each subject's calls drawn on their own


def run_budgets(config: Any, outcomes: Sequence[Any], pricing: Any) -> list[GateDecision]:
    """The budgets the run sets (options or ini), decided over every suite's requests together."""
    limits = {key: getattr(config, key, None) for key in CRITERIA}
    if not any(v is not None for v in limits.values()) or not outcomes:
        return []
    subjects: dict[str, tuple[SubjectInfo, list[Output]]] = {}
    for role in ("baseline", "candidate"):
        results = [getattr(o, role) for o in outcomes if getattr(o, role) is not None]
        if results:
            subjects[role] = (results[0].subject, [a for r in results for a in answers(r)])
    return [decide_budget(RUN, key, float(limit), subjects, pricing) for key, limit in limits.items() if limit is not None]
