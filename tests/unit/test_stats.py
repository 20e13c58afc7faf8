"""Statistics against reference formulas and scipy, plus properties checked with hypothesis."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import beta, binom, norm

from pytest_ftgate.stats import (
    cohen_kappa,
    exact_interval,
    exact_upper_bound,
    fleiss_kappa,
    max_passing_regressions,
    mcnemar_exact,
    min_n_to_resolve,
    paired_bootstrap,
    per_class_prf,
    wilson_interval,
)

counts = st.integers(min_value=1, max_value=2000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


def wilson_reference(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    z = norm.ppf(1 - (1 - conf) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def clopper_pearson_reference(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    a = 1 - conf
    low = 0.0 if k == 0 else beta.ppf(a / 2, k, n - k + 1)
    high = 1.0 if k == n else beta.ppf(1 - a / 2, k + 1, n - k)
    return low, high


def mcnemar_reference(b: int, c: int) -> float:
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2 * binom.cdf(min(b, c), n, 0.5))


@given(counts)
def test_wilson_matches_closed_form(kn):
    k, n = kn
    w = wilson_interval(k, n)
    low, high = wilson_reference(k, n)
    assert w.low == pytest.approx(max(0, low), abs=1e-9)
    assert w.high == pytest.approx(min(1, high), abs=1e-9)


@given(counts)
def test_exact_interval_matches_beta_quantiles(kn):
    k, n = kn
    e = exact_interval(k, n)
    low, high = clopper_pearson_reference(k, n)
    assert e.low == pytest.approx(low, abs=1e-9) and e.high == pytest.approx(high, abs=1e-9)


@given(counts)
def test_intervals_contain_the_estimate_and_stay_in_unit_range(kn):
    k, n = kn
    for iv in (wilson_interval(k, n), exact_interval(k, n)):
        assert 0 <= iv.low <= k / n <= iv.high <= 1
    assert exact_interval(k, n).high >= exact_upper_bound(k, n) - 1e-12  # two-sided 95% is wider than one-sided


@given(st.integers(0, 300), st.integers(0, 300))
def test_mcnemar_matches_binomial_reference(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(mcnemar_reference(b, c), rel=1e-9, abs=1e-12)
    assert mcnemar_exact(b, c) == pytest.approx(mcnemar_exact(c, b))


def test_mcnemar_on_random_tables_against_statsmodels():
    sm = pytest.importorskip("statsmodels.stats.contingency_tables")
    rng = np.random.default_rng(0)
    for _ in range(50):
        table = rng.integers(0, 40, size=(2, 2))
        ours = mcnemar_exact(int(table[0, 1]), int(table[1, 0]))
        assert ours == pytest.approx(sm.mcnemar(table, exact=True).pvalue, rel=1e-9)


@given(st.integers(1, 5000), st.sampled_from([0.01, 0.02, 0.05, 0.1]))
def test_max_passing_regressions_is_the_boundary(n, t):
    m = max_passing_regressions(n, t)
    assert m / n <= t + 1e-12 and (m + 1) / n > t


def test_min_n_to_resolve_five_percent():
    assert min_n_to_resolve(0.05) == 59
    assert exact_upper_bound(0, 59) <= 0.05 < exact_upper_bound(0, 58)


def test_paired_bootstrap_centres_on_the_mean_difference():
    rng = np.random.default_rng(1)
    a = rng.normal(0.5, 0.1, 200)
    b = a + 0.1 + rng.normal(0, 0.05, 200)
    delta, iv = paired_bootstrap(a, b)
    assert delta == pytest.approx(float(np.mean(b - a)))
    assert iv.low < delta < iv.high and iv.low > 0.05 and iv.method == "bca"


def test_paired_bootstrap_degenerate_inputs():
    delta, iv = paired_bootstrap([1.0, 1.0], [1.0, 1.0])
    assert delta == 0 and iv.low == iv.high == 0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=50), st.randoms())
def test_per_class_prf_matches_sklearn_definition(expected, rnd):
    predicted = [rnd.choice(["a", "b", "c", None]) for _ in expected]
    got = per_class_prf(["a", "b", "c"], expected, predicted)
    for label, m in got.items():
        tp = sum(e == p == label for e, p in zip(expected, predicted))
        assert m["support"] == expected.count(label)
        if m["precision"]:
            assert m["precision"] == pytest.approx(tp / sum(p == label for p in predicted))


# ---- fractional Wilson and agreement, against statsmodels -------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, 2 * n), st.just(n))),
       st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_with_ties_counted_as_half_matches_statsmodels(halves_n, confidence):
    from statsmodels.stats.proportion import proportion_confint

    halves, n = halves_n
    iv = wilson_interval(halves / 2, n, confidence)
    low, high = proportion_confint(halves / 2, n, alpha=1 - confidence, method="wilson")
    assert (iv.low, iv.high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert iv.method == ("wilson" if halves % 2 == 0 else "wilson, ties half")


def _table(pairs, labels):
    table = np.zeros((len(labels), len(labels)))
    for a, b in pairs:
        table[labels.index(a), labels.index(b)] += 1
    return table


@pytest.mark.parametrize("ordinal", [False, True])
def test_cohens_kappa_on_random_labels_matches_statsmodels(ordinal):
    from statsmodels.stats.inter_rater import cohens_kappa

    rng = np.random.default_rng(3)
    for _ in range(200):
        labels = [1, 2, 3, 4, 5] if ordinal else ["win", "tie", "loss"]
        k = int(rng.integers(2, len(labels) + 1))
        used = labels[:k]
        n = int(rng.integers(2, 40))
        pairs = [(used[int(rng.integers(k))], used[int(rng.integers(k))]) for _ in range(n)]
        a = cohen_kappa(pairs, ordinal=ordinal)
        present = sorted({x for p in pairs for x in p}, key=labels.index)
        table = _table(pairs, present)
        with np.errstate(invalid="ignore", divide="ignore"):
            want = float(cohens_kappa(table, wt="quadratic" if ordinal else None, return_results=False))
        if math.isfinite(want) and len(present) > 1:
            assert a.kappa == pytest.approx(want, abs=1e-9)
        else:
            assert a.kappa is None
        assert a.cases == n and a.observed == pytest.approx(sum(x == y for x, y in pairs) / n)


def test_fleiss_kappa_on_random_labels_matches_statsmodels():
    from statsmodels.stats.inter_rater import fleiss_kappa as reference

    rng = np.random.default_rng(4)
    for raters in (3, 4, 6):
        for _ in range(50):
            rows = [[str(rng.choice(["a", "b", "c"], p=[0.6, 0.3, 0.1])) for _ in range(raters)] for _ in range(20)]
            a = fleiss_kappa(rows, tuple(f"r{i}" for i in range(raters)))
            counts = np.array([[row.count(x) for x in ("a", "b", "c")] for row in rows])
            assert a.kappa == pytest.approx(float(reference(counts, method="fleiss")), abs=1e-9)
            assert a.observed == pytest.approx(np.mean([len(set(r)) == 1 for r in rows]))


def test_kappa_is_undefined_where_one_label_is_given_throughout():
    assert cohen_kappa([("a", "a")] * 5).kappa is None
    assert fleiss_kappa([["a"] * 3] * 4, ("x", "y", "z")).kappa is None
    assert cohen_kappa([]).cases == 0 and cohen_kappa([]).kappa is None
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([["a", "b"], ["a", "b", "c"]], ("x", "y", "z"))


def test_the_percentile_bootstrap_of_any_statistic_agrees_with_scipy():
    import numpy as np
    from scipy.stats import bootstrap

    from pytest_ftgate.stats import bootstrap_interval

    rng = np.random.default_rng(7)
    values = rng.lognormal(0, 0.5, 80)
    ours = bootstrap_interval(len(values), lambda picks: float(np.percentile(values[picks], 95)), n_resamples=4000)
    theirs = bootstrap((values,), lambda x, axis=-1: np.percentile(x, 95, axis=axis), n_resamples=4000,
                       method="percentile", random_state=np.random.default_rng(1)).confidence_interval
    assert ours.low == pytest.approx(theirs.low, rel=0.05) and ours.high == pytest.approx(theirs.high, rel=0.05)
    # two groups resampled on their own: a ratio of means
    a, b = rng.normal(10, 1, 50), rng.normal(20, 2, 60)
    ratio = bootstrap_interval((50, 60), lambda i, j: float(b[j].mean() / a[i].mean()))
    assert ratio.low < b.mean() / a.mean() < ratio.high and ratio.high - ratio.low < 0.3
    assert bootstrap_interval(1, lambda picks: 1.0) is None
