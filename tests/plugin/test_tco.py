"""TCO arithmetic, pricing-file errors, and the self-contained HTML report."""

from __future__ import annotations

import math

import pytest

from pytest_ftgate.cost.tco import DAYS_PER_MONTH, compute_tco, load_pricing, subject_cost
from pytest_ftgate.errors import PricingError
from pytest_ftgate.types import Case, CaseResult, Output, Score, SubjectInfo, SuiteResult, TrainingCost
from tests.conftest import write

PRICING = """\
as_of: "2026-01-01"
requests_per_day: 1000
billing: {billing}
serving: {{name: test box, usd_per_hour: 3.6}}
training: {{gpu_usd_per_hour: 2.0, cpu_usd_per_hour: 0.5}}
api:
  my-model: {{usd_per_1m_input: 1.0, usd_per_1m_output: 4.0}}
"""


def results(info: SubjectInfo, n: int, tokens_in: int, tokens_out: int, latency: float, batch: int = 1, passed: int | None = None):
    rows = []
    for i in range(n):
        ok = passed is None or i < passed
        case = Case(id=f"c{i}", messages=({"role": "user", "content": "q"},))
        rows.append(CaseResult(case, Output("a", tokens_in, tokens_out, latency, batch_size=batch), (Score(ok, float(ok)),)))
    return SuiteResult("s", info, tuple(rows))


def pricing(tmp_path, billing="utilization"):
    return load_pricing(write(tmp_path / "p.yaml", PRICING.format(billing=billing)))


def test_api_subject_pays_per_token(tmp_path):
    info = SubjectInfo("baseline", "openai", "my-model", "f")
    cost = subject_cost(info, [results(info, 10, 1000, 250, 0.8)], pricing(tmp_path), None)
    per_request = (1000 * 1.0 + 250 * 4.0) / 1e6
    assert cost.usd_per_1k == pytest.approx(per_request * 1000)
    assert cost.usd_per_month == pytest.approx(per_request * 1000 * DAYS_PER_MONTH)
    assert cost.p50_latency_s == pytest.approx(0.8)


def test_self_hosted_pays_for_compute_seconds(tmp_path):
    info = SubjectInfo("baseline", "hf", "base", "f")
    # batches of 4 taking 2 s: 0.5 compute-seconds per request at $3.6/h = $0.0005 per request
    cost = subject_cost(info, [results(info, 8, 300, 20, 2.0, batch=4)], pricing(tmp_path), None)
    assert cost.throughput_rps == pytest.approx(2.0)
    assert cost.usd_per_1k == pytest.approx(0.5)


def test_always_on_bills_whole_instances(tmp_path):
    info = SubjectInfo("baseline", "hf", "base", "f")
    cost = subject_cost(info, [results(info, 8, 300, 20, 2.0, batch=4)], pricing(tmp_path, "always_on"), None)
    assert cost.usd_per_month == pytest.approx(3.6 * 730)  # 1,000 requests/day fit on one instance


def test_break_even_from_training_cost_and_daily_saving(tmp_path):
    base = SubjectInfo("baseline", "openai", "my-model", "f")
    cand = SubjectInfo("candidate", "hf", "adapter", "g", training=TrainingCost(gpu_hours=2.0, wall_s=7200))

    class Outcome:
        def __init__(self):
            self.suite = type("S", (), {"kind": "task", "name": "t"})()
            self.baseline = results(base, 10, 2000, 100, 1.0, passed=8)
            self.candidate = results(cand, 10, 100, 100, 0.4, batch=4, passed=9)
            self.decisions = ()

    run = type("Run", (), {"outcomes": [Outcome()], "baseline": base, "candidate": cand, "evaluation": ()})()
    tco = compute_tco(run, pricing(tmp_path))
    b, c = tco.subjects
    assert c.training_usd == pytest.approx(4.0)  # 2 GPU-hours at $2
    assert b.quality == pytest.approx(0.8) and c.quality == pytest.approx(0.9)
    saving_per_day = (b.usd_per_month - c.usd_per_month) / DAYS_PER_MONTH
    assert tco.break_even_days == pytest.approx(4.0 / saving_per_day)
    curve = tco.curve(30)
    assert math.isclose(curve["candidate"][0], 4.0) and curve["baseline"][0] == 0


def test_unpriced_api_model_is_reported_unknown_with_the_fix(tmp_path):
    info = SubjectInfo("baseline", "openai", "other-model", "f")
    cost = subject_cost(info, [results(info, 1, 1, 1, 1.0)], pricing(tmp_path), None)
    assert cost.note == f"unpriced: add api.other-model: {{usd_per_1m_input: ..., usd_per_1m_output: ...}} to {tmp_path / 'p.yaml'}"
    assert cost.usd_per_1k is None and cost.usd_per_month is None and not cost.priced
    # with the bundled prices, the hint never points inside the installed package
    bundled = subject_cost(info, [results(info, 1, 1, 1, 1.0)], load_pricing(None), None)
    assert "ftgate pricing > pricing.yaml" in bundled.note and "--ftgate-pricing=pricing.yaml" in bundled.note
    assert "site-packages" not in bundled.note and "pytest_ftgate" not in bundled.note


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("requests_per_day: -5\nserving: {usd_per_hour: 1}\n", "p.yaml:1: `requests_per_day` must be a number >= 1"),
        ("requests_per_day: 10\n", "missing `serving.usd_per_hour`"),
        ("requests_per_day: 10\nbilling: monthly\nserving: {usd_per_hour: 1}\n", "p.yaml:2: billing must be utilization or always_on"),
        ("requests_per_day: 10\nserving: {usd_per_hour: cheap}\n", "p.yaml:2: `serving.usd_per_hour` must be a number"),
    ],
)
def test_bad_pricing_files_name_the_line(tmp_path, text, needle):
    with pytest.raises(PricingError) as err:
        load_pricing(write(tmp_path / "p.yaml", text))
    assert needle in str(err.value)


def test_bundled_pricing_is_dated_and_sourced():
    p = load_pricing()
    assert p.as_of.startswith("20") and "list prices" in p.source and p.serving_usd_per_hour > 0


def test_html_report_is_self_contained(pytester):
    import json

    pytester.makefile(".yaml", **{"suites/t": "kind: task\ncases:\n" + "".join(
        f"  - {{id: c{i}, input: q{i}, expected: a}}\n" for i in range(6)) + "scorers: [exact]\n"})
    for name, ok in (("base", 3), ("cand", 5)):
        (pytester.path / f"{name}.jsonl").write_text("".join(
            json.dumps({"id": f"c{i}", "output": "a" if i < ok else "b", "tokens_in": 50, "tokens_out": 5, "latency_s": 0.2})
            + "\n" for i in range(6)))
    result = pytester.runpytest("--baseline", "base.jsonl", "--candidate", "cand.jsonl")
    assert result.ret == 0
    html = (pytester.path / ".ftgate/report/report.html").read_text()
    assert html.count("<svg") >= 3  # pass rates, latency, cost
    import re

    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing to fetch: no CDN, no remote asset
    assert "<link" not in html and "<script" not in html
    assert "fail → pass" in html and "Break-even" in html
    result.stdout.fnmatch_lines(["TCO at 10,000 requests/day*", "baseline*", "candidate*", "break-even:*"])


def test_a_latency_budget_set_for_the_run_blocks_a_slow_candidate_through_pytest(pytester):
    import json

    pytester.makefile(".yaml", **{"suites/t": "kind: format\ncases:\n" + "".join(
        f"  - {{id: c{i}, input: q{i}}}\n" for i in range(30)) + "scorers: [{regex: a}]\n"})
    for name, latency in (("base", 0.2), ("cand", 1.5)):
        (pytester.path / f"{name}.jsonl").write_text("".join(
            json.dumps({"id": f"c{i}", "output": "a", "latency_s": latency + i / 100}) + "\n" for i in range(30)))
    pytester.makeini("[pytest]\nftgate_max_p95_latency_s = 1.0\n")
    result = pytester.runpytest("--baseline", "base.jsonl", "--candidate", "cand.jsonl")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*latency: BLOCK candidate p95 latency 1.* s (95% bootstrap *over 30 requests); "
                                 "budget 1.00 s: over budget*", "verdict: BLOCKED*"])
    fast = pytester.runpytest("--baseline", "base.jsonl", "--candidate", "base.jsonl", "--ftgate-max-p95-latency-s=1")
    fast.stdout.fnmatch_lines(["*latency: PASS*"])
