"""Small-sample statistics for gates, all in one place: Wilson and exact intervals, McNemar,
paired and percentile bootstraps, per-class scores, and agreement between raters (Cohen's and Fleiss' kappa).

Central-limit intervals are wrong at eval-suite sizes (tens to hundreds of cases, rates near 0),
so every rate gets a Wilson and a Clopper-Pearson interval, and paired verdicts get McNemar's
exact test. scipy and numpy do the arithmetic; this module fixes the conventions, and the tests
check each function against scipy or statsmodels on random inputs. Nothing else in the package
computes an interval or a kappa.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

from .errors import IncompleteDataError
from .types import Comparison, Flip, Interval, SuiteResult


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for `successes` of `n` trials.

    Successes may be fractional: a pairwise tie counts as half a win. A score in [0, 1] with mean p
    has variance at most p(1 - p), the Bernoulli variance Wilson assumes, so the interval stays
    conservative; its method then reads "wilson, ties half"."""
    from scipy.stats import norm

    if n == 0:
        return Interval(0.0, 1.0, "wilson")
    z = float(norm.ppf(0.5 + confidence / 2))
    p = float(successes) / n
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z * math.sqrt(max(0.0, p * (1 - p)) / n + z * z / (4 * n * n)) / scale
    method = "wilson" if float(successes).is_integer() else "wilson, ties half"
    # rounding must not move a bound past the estimate (at 0 of n the low bound is 0, not 1e-18)
    return Interval(min(max(0.0, centre - half), p), max(min(1.0, centre + half), p), method)


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


def bootstrap_interval(n: int | tuple[int, ...], statistic: Callable[..., float | None], *, confidence: float = 0.95,
                       n_resamples: int = 1000, seed: int = 0) -> Interval | None:
    """A percentile bootstrap interval of any statistic of n units: `statistic(indices)` recomputes it on a resample of
    the units (drawn with replacement), so that a figure computed by other code (a p95, a cost per 1k requests)
    gets its spread from that very code. With n a tuple of group sizes, each group is resampled on its own and
    `statistic(indices_1, indices_2, ...)` gets one resample per group (a ratio of two subjects' costs). None when a
    group has fewer than 2 units or the statistic cannot be computed on the resamples."""
    import numpy as np

    sizes = (n,) if isinstance(n, int) else tuple(n)
    if min(sizes) < 2:
        return None
    rng = np.random.default_rng(seed)
    values = [statistic(*(rng.integers(0, k, k).tolist() for k in sizes)) for _ in range(n_resamples)]
    found = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if found.size < n_resamples // 2:
        return None
    tail = (1 - confidence) / 2 * 100
    return Interval(float(np.percentile(found, tail)), float(np.percentile(found, 100 - tail)), "percentile bootstrap")


# ---- a paired comparison of two subjects over the same cases -----------------------------------------
def paired_comparison(baseline: SuiteResult, candidate: SuiteResult) -> Comparison:
    """The 2x2 flip table, rates with Wilson intervals, McNemar's exact p, and a bootstrap delta."""
    base_by_id = {r.case.id: r for r in baseline.results}
    cand_by_id = {r.case.id: r for r in candidate.results}
    if base_by_id.keys() != cand_by_id.keys():
        missing = sorted(base_by_id.keys() ^ cand_by_id.keys())
        raise IncompleteDataError(
            f"suite {baseline.suite}: baseline and candidate were not scored on the same cases "
            f"(differ on {', '.join(missing[:5])}); a paired comparison needs both on every case"
        )
    both_pass = both_fail = 0
    regressions: list[Flip] = []
    fixes: list[Flip] = []
    for case_id, b in base_by_id.items():
        c = cand_by_id[case_id]
        if b.passed is None or c.passed is None:
            continue  # unscored results are reported separately and block the gate
        if b.passed and c.passed:
            both_pass += 1
        elif not b.passed and not c.passed:
            both_fail += 1
        elif b.passed:
            regressions.append(Flip(b.case, b, c))
        else:
            fixes.append(Flip(b.case, b, c))
    n = both_pass + both_fail + len(regressions) + len(fixes)
    k_base = both_pass + len(regressions)
    k_cand = both_pass + len(fixes)

    paired = [
        (base_by_id[i].value, cand_by_id[i].value)
        for i in base_by_id
        if base_by_id[i].value is not None and cand_by_id[i].value is not None
    ]
    delta = interval = None
    if paired:
        delta, interval = paired_bootstrap([p[0] for p in paired], [p[1] for p in paired])
    return Comparison(
        suite=baseline.suite,
        n=n,
        both_pass=both_pass,
        both_fail=both_fail,
        regressions=tuple(regressions),
        fixes=tuple(fixes),
        baseline_rate=k_base / n if n else 0.0,
        candidate_rate=k_cand / n if n else 0.0,
        baseline_interval=wilson_interval(k_base, n),
        candidate_interval=wilson_interval(k_cand, n),
        mcnemar_p=mcnemar_exact(len(regressions), len(fixes)),
        mean_value_delta=delta,
        value_delta_interval=interval,
    )


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


# ---- agreement between raters --------------------------------------------------------------------
@dataclass(frozen=True)
class Agreement:
    """How far raters agree over the cases all of them labelled: two raters by Cohen's kappa (quadratic
    weights for ordinal labels), more by Fleiss'. A judge against people is two raters."""

    method: str  # "cohen", "cohen, quadratic weights" or "fleiss"
    raters: tuple[str, ...]
    cases: int
    kappa: float | None  # None: undefined (one label throughout: chance agreement is 1, kappa 0/0)
    observed: float  # share of cases on which every rater gave the same label (a judge's accuracy against people)
    chance: float = math.nan  # agreement expected by chance from each label's share (p_e, weighted where kappa is)
    dominant: tuple[Hashable, float] | None = None  # the most given label and its share of all labels given


def _labels(values: Iterable[Hashable]) -> list[Hashable]:
    """The labels in order: numbers by value (ordinal scores), anything else by its text."""
    found = set(values)
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in found)
    return sorted(found, key=(lambda v: v) if numeric else str)  # type: ignore[arg-type,return-value]


def _dominant(given: Iterable[Hashable]) -> tuple[Hashable, float] | None:
    counts = Counter(given)
    total = sum(counts.values())
    if not total:
        return None
    label, n = counts.most_common(1)[0]
    return label, n / total


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]], raters: tuple[str, str] = ("first", "second"),
                ordinal: bool = False) -> Agreement:
    """Cohen's kappa of two raters' labels, one pair per case (a pair with a None is left out). `ordinal`:
    quadratic weights over the labels' order, so that 4 against 5 disagrees less than 1 against 5."""
    import numpy as np

    method = "cohen, quadratic weights" if ordinal else "cohen"
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    if not pairs:
        return Agreement(method, raters, 0, None, math.nan)
    labels = _labels(x for pair in pairs for x in pair)
    index = {label: i for i, label in enumerate(labels)}
    k, n = len(labels), len(pairs)
    table = np.zeros((k, k))
    for a, b in pairs:
        table[index[a], index[b]] += 1
    table /= n
    i = np.arange(k)
    weights = 1 - (i[:, None] - i[None, :]) ** 2 / (k - 1) ** 2 if ordinal and k > 1 else np.eye(k)
    p_o = float((weights * table).sum())
    p_e = float((weights * np.outer(table.sum(axis=1), table.sum(axis=0))).sum())
    kappa = None if math.isclose(p_e, 1.0) else (p_o - p_e) / (1 - p_e)
    observed = float(np.trace(table))
    return Agreement(method, raters, n, kappa, observed, p_e, _dominant(x for pair in pairs for x in pair))


def fleiss_kappa(rows: Sequence[Sequence[Hashable]], raters: tuple[str, ...]) -> Agreement:
    """Fleiss' kappa: each row the labels every rater gave one case (the same number of raters per row)."""
    import numpy as np

    if not rows:
        return Agreement("fleiss", raters, 0, None, math.nan)
    labels = _labels(x for row in rows for x in row)
    counts = np.array([[list(row).count(label) for label in labels] for row in rows], dtype=float)
    m = counts.sum(axis=1)
    if not np.all(m == m[0]) or m[0] < 2:
        raise ValueError("fleiss_kappa needs the same number (2 or more) of labels for every case")
    shares = counts.sum(axis=0) / counts.sum()
    per_case = ((counts ** 2).sum(axis=1) - m) / (m * (m - 1))
    p_o, p_e = float(per_case.mean()), float((shares ** 2).sum())
    kappa = None if math.isclose(p_e, 1.0) else (p_o - p_e) / (1 - p_e)
    observed = float(np.mean([len(set(row)) == 1 for row in rows]))
    return Agreement("fleiss", raters, len(rows), kappa, observed, p_e, _dominant(x for row in rows for x in row))
