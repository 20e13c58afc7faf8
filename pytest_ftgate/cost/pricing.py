"""Prices: the dated pricing file, and what serving a subject costs at them.

A pricing file (bundled defaults in pytest_ftgate/data/pricing.yaml, dated and sourced, or
--ftgate-pricing FILE) gives the serving hardware, its billing, the training prices and API
prices per model. Subjects pick how they are billed (per token, or for compute time) by calling
`api_cost` or `compute_cost` from their own `serving_cost`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PricingError
from ..files.yamlio import line_of, load_yaml_with_lines

DAYS_PER_MONTH = 30.4
HOURS_PER_MONTH = 730.0
DEFAULT_PRICING = Path(__file__).parent.parent / "data" / "pricing.yaml"


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


@dataclass(frozen=True)
class Usage:
    """What one subject used per request during the gate."""

    requests: int
    mean_tokens_in: float | None
    mean_tokens_out: float | None
    throughput_rps: float | None  # requests per second of compute, at the batch size the gate used


@dataclass(frozen=True)
class ServingCost:
    """Cost per request and per month; both None, with the reason in `note`, when unknown."""

    usd_per_request: float | None
    usd_per_month: float | None
    note: str = ""

    @classmethod
    def unknown(cls, why: str) -> ServingCost:
        return cls(None, None, why)


def api_cost(pricing: Pricing, model: str, usage: Usage) -> ServingCost:
    """Per-token billing at the pricing file's `api.MODEL` prices."""
    prices = pricing.api.get(model)
    if prices is None:
        entry = f"api.{model}: {{usd_per_1m_input: ..., usd_per_1m_output: ...}}"
        if pricing.path == DEFAULT_PRICING:  # never send a user to edit the installed package
            return ServingCost.unknown(f"unpriced: write your prices with `ftgate pricing > pricing.yaml`, add {entry}, "
                                       "and pass --ftgate-pricing=pricing.yaml (or set ini ftgate_pricing)")
        return ServingCost.unknown(f"unpriced: add {entry} to {pricing.path}")
    per_request = ((usage.mean_tokens_in or 0) * prices[0] + (usage.mean_tokens_out or 0) * prices[1]) / 1e6
    return ServingCost(per_request, per_request * pricing.requests_per_day * DAYS_PER_MONTH)


def compute_cost(pricing: Pricing, usage: Usage) -> ServingCost:
    """Self-hosted: pay for compute time (utilization) or for whole instances kept on (always_on)."""
    rps = pricing.serving_rps or usage.throughput_rps
    if not rps:
        return ServingCost.unknown("no latency measured, so the compute cost is unknown")
    per_day = pricing.requests_per_day
    if pricing.billing == "always_on":
        instances = max(1, math.ceil(per_day / 86400 / rps))
        monthly = instances * pricing.serving_usd_per_hour * HOURS_PER_MONTH
        return ServingCost(monthly / (per_day * DAYS_PER_MONTH), monthly)
    per_request = pricing.serving_usd_per_hour / 3600 / rps
    return ServingCost(per_request, per_request * per_day * DAYS_PER_MONTH)


def load_pricing(path: Path | None = None) -> Pricing:
    path = path or DEFAULT_PRICING
    if not path.exists():
        raise PricingError(f"{path}: pricing file not found (--ftgate-pricing)")
    data, lines = load_yaml_with_lines(path, error=PricingError)
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
    for key in ("serving", "training", "api"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise PricingError(f"{path}:{line_of(lines, key)}: `{key}` must be a mapping (see `ftgate pricing`), "
                               f"got {data[key]!r}")
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
