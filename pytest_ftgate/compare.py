"""Paired comparison of baseline and candidate over the same cases."""

from __future__ import annotations

from .errors import IncompleteDataError
from .stats import mcnemar_exact, paired_bootstrap, wilson_interval
from .types import Comparison, Flip, SuiteResult


def compare(baseline: SuiteResult, candidate: SuiteResult) -> Comparison:
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
