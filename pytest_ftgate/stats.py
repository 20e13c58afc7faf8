"""Small-sample statistics for gates: Wilson and exact intervals, McNemar, paired bootstrap.

Central-limit intervals are wrong at eval-suite sizes (tens to hundreds of cases, rates near 0),
so every rate gets a Wilson and a Clopper-Pearson interval, and paired verdicts get McNemar's
exact test. scipy does the arithmetic; this module fixes the conventions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .types import Interval


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for k successes in n trials."""
    from scipy.stats import binomtest

    if n == 0:
        return Interval(0.0, 1.0, "wilson")
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(max(0.0, ci.low), min(1.0, ci.high), "wilson")


def exact_interval(k: int, n: int, confidence: float = 0.95) -> Interval:
    """Clopper-Pearson (exact) two-sided interval."""
    from scipy.stats import binomtest

    if n == 0:
        return Interval(0.0, 1.0, "clopper-pearson")
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return Interval(ci.low, ci.high, "clopper-pearson")


def exact_upper_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact (Clopper-Pearson) upper confidence bound of a rate."""
    from scipy.stats import beta

    if n == 0:
        return 1.0
    if k >= n:
        return 1.0
    return float(beta.ppf(confidence, k + 1, n - k))


def max_passing_regressions(n: int, threshold: float) -> int:
    """The most regressions that still pass `rate <= threshold` for n goldens."""
    return math.floor(threshold * n + 1e-9)


def min_n_to_resolve(threshold: float, confidence: float = 0.95) -> int:
    """Smallest n where zero failures puts the one-sided exact upper bound at or below threshold.

    Below it, a suite cannot tell a `threshold` failure rate apart from 0%: (1-t)^n <= 1-c.
    """
    if threshold <= 0:
        return math.inf  # type: ignore[return-value]
    if threshold >= 1:
        return 1
    return math.ceil(math.log(1 - confidence) / math.log(1 - threshold))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b (pass->fail) and c (fail->pass)."""
    from scipy.stats import binomtest

    if b + c == 0:
        return 1.0
    return float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)


def paired_bootstrap(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, Interval]:
    """Mean of candidate - baseline over paired cases, with a paired BCa bootstrap interval."""
    import numpy as np
    from scipy.stats import bootstrap

    a = np.asarray(baseline, dtype=float)
    b = np.asarray(candidate, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("paired_bootstrap needs two non-empty sequences of the same length")
    delta = float(np.mean(b - a))
    if a.size < 2 or np.all(b - a == (b - a)[0]):
        return delta, Interval(delta, delta, "degenerate")

    def mean_diff(x, y, axis=-1):
        return np.mean(y - x, axis=axis)

    res = bootstrap(
        (a, b),
        mean_diff,
        paired=True,
        vectorized=True,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="BCa",
        random_state=np.random.default_rng(seed),
    )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if math.isnan(low) or math.isnan(high):  # BCa can fail on near-degenerate data
        res = bootstrap(
            (a, b), mean_diff, paired=True, vectorized=True, confidence_level=confidence,
            n_resamples=n_resamples, method="percentile", random_state=np.random.default_rng(seed),
        )
        return delta, Interval(float(res.confidence_interval.low), float(res.confidence_interval.high), "percentile")
    return delta, Interval(low, high, "bca")


def per_class_prf(
    labels: Sequence[str], expected: Sequence[str | None], predicted: Sequence[str | None]
) -> dict[str, dict[str, float]]:
    """Per-class precision, recall, F1 and support (predictions outside the label set count as wrong)."""
    out: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(1 for e, p in zip(expected, predicted) if e == label and p == label)
        fp = sum(1 for e, p in zip(expected, predicted) if e != label and p == label)
        fn = sum(1 for e, p in zip(expected, predicted) if e == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
    return out
