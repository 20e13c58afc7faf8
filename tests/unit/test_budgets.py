"""Latency and cost as gate criteria: decided on the TCO's figures with their spread; a straddle is inconclusive."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pytest_ftgate import RunConfig, SuiteError, load_suite, run_gate
from pytest_ftgate.errors import EXIT_BLOCKED, EXIT_GATE_ERROR
from tests.conftest import write

N = 40


def outputs(path: Path, latencies: list[float | None], tokens_out: int = 10) -> Path:
    rows = [{"id": f"c{i}", "output": "yes", "tokens_in": 20, "tokens_out": tokens_out,
             **({"latency_s": lat} if lat is not None else {})} for i, lat in enumerate(latencies)]
    return write(path, "".join(json.dumps(r) + "\n" for r in rows))


def spread(centre: float, width: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [centre + rng.uniform(-width, width) for _ in range(N)]


def suite(tmp_path: Path, gate: str) -> Path:
    write(tmp_path / "cases.jsonl", "".join(json.dumps({"id": f"c{i}", "input": f"q{i}"}) + "\n" for i in range(N)))
    return write(tmp_path / "s.yaml", f"kind: format\ncases: cases.jsonl\nscorers: [{{regex: 'yes'}}]\n"
                                      f"gate: {{min_pass_rate: 0.9, {gate}}}\n")


def gate(tmp_path: Path, gate_keys: str, base: list[float | None], cand: list[float | None], **config) -> object:
    run = run_gate([load_suite(suite(tmp_path, gate_keys))],
                   RunConfig(baseline=str(outputs(tmp_path / "base.jsonl", base)),
                             candidate=str(outputs(tmp_path / "cand.jsonl", cand)), cache_dir=None, progress=False,
                             suites_dir=tmp_path, **config))
    return run


def decision(run, criterion: str):
    return next(d for d in run.decisions if d.criterion == criterion)


def test_a_latency_budget_blocks_a_planted_slow_candidate(tmp_path):
    run = gate(tmp_path, "max_p95_latency_s: 0.5", spread(0.2, 0.05, 1), spread(0.9, 0.1, 2))
    d = decision(run, "latency")
    assert d.status == "blocked" and "over budget" in d.summary
    assert d.figures["interval"][0] > 0.5 and d.figures["subject"] == "candidate"
    assert run.verdict == "blocked" and run.exit_status() == EXIT_BLOCKED


def test_a_latency_whose_spread_straddles_the_budget_is_inconclusive_and_never_a_pass(tmp_path):
    # a p95 near 0.5 s with latencies from 0.1 to 0.6 s: the bootstrap interval of the p95 crosses the budget
    run = gate(tmp_path, "max_p95_latency_s: 0.55", spread(0.2, 0.05, 1), spread(0.35, 0.25, 3))
    d = decision(run, "latency")
    assert d.status == "inconclusive" and "straddles the budget" in d.summary
    low, high = d.figures["interval"]
    assert low <= 0.55 < high
    assert run.verdict != "promoted" and run.exit_status() != 0


def test_a_candidate_within_its_latency_budget_passes(tmp_path):
    run = gate(tmp_path, "max_p95_latency_s: 2", spread(0.2, 0.05, 1), spread(0.9, 0.1, 2))
    assert decision(run, "latency").status == "passed"


def test_a_latency_budget_with_nothing_timed_is_an_error_not_a_pass(tmp_path):
    run = gate(tmp_path, "max_p95_latency_s: 2", spread(0.2, 0.05, 1), [None] * N)
    d = decision(run, "latency")
    assert d.status == "error" and "no request was timed" in d.summary
    assert run.exit_status() == EXIT_GATE_ERROR


def test_a_cost_ratio_blocks_a_candidate_that_costs_more_and_passes_one_that_costs_less(tmp_path):
    # outputs files are priced for their compute time: a candidate three times slower costs three times as much
    dear = gate(tmp_path, "max_cost_ratio: 1.5", spread(0.2, 0.02, 1), spread(0.6, 0.05, 2))
    d = decision(dear, "cost_ratio")
    assert d.status == "blocked" and d.figures["value"] == pytest.approx(3.0, rel=0.15)
    cheap = gate(tmp_path, "max_cost_ratio: 1.5", spread(0.6, 0.05, 2), spread(0.2, 0.02, 1))
    assert decision(cheap, "cost_ratio").status == "passed"


def test_a_cost_budget_per_1k_requests_is_decided_on_the_tco_figure(tmp_path):
    run = gate(tmp_path, "max_cost_per_1k: 1000", spread(0.2, 0.02, 1), spread(0.3, 0.02, 2))
    d = decision(run, "cost")
    cand = next(s for s in run.tco.subjects if s.role == "candidate")
    assert d.status == "passed" and d.figures["value"] == pytest.approx(cand.usd_per_1k)
    tight = gate(tmp_path, f"max_cost_per_1k: {cand.usd_per_1k / 10}", spread(0.2, 0.02, 1), spread(0.3, 0.02, 2))
    assert decision(tight, "cost").status == "blocked"


def test_the_run_may_set_a_budget_for_every_suite_together(tmp_path):
    write(tmp_path / "cases.jsonl", "".join(json.dumps({"id": f"c{i}", "input": f"q{i}"}) + "\n" for i in range(N)))
    path = write(tmp_path / "s.yaml", "kind: format\ncases: cases.jsonl\nscorers: [{regex: 'yes'}]\ngate: {min_pass_rate: 0.9}\n")
    run = run_gate([load_suite(path)], RunConfig(baseline=str(outputs(tmp_path / "b.jsonl", spread(0.2, 0.05, 1))),
                                                 candidate=str(outputs(tmp_path / "c.jsonl", spread(0.9, 0.1, 2))),
                                                 cache_dir=None, progress=False, suites_dir=tmp_path,
                                                 max_p95_latency_s=0.5))
    d = next(d for d in run.checks if d.criterion == "latency")
    assert d.suite == "(run)" and d.status == "blocked" and run.verdict == "blocked"


@pytest.mark.parametrize("value", ["0", "-1", "fast"])
def test_a_bad_budget_is_refused_at_load_naming_the_key(tmp_path, value):
    path = write(tmp_path / "s.yaml", f"kind: format\ncases: [{{id: a, input: hi}}]\nscorers: [{{regex: '.'}}]\n"
                                      f"gate: {{max_p95_latency_s: {value}}}\n")
    with pytest.raises(SuiteError, match="gate max_p95_latency_s must be a positive number"):
        load_suite(path)


def test_a_local_batch_is_one_timing_however_many_cases_it_holds():
    from pytest_ftgate.cost.budgets import calls, decide_budget
    from pytest_ftgate.types import Output, SubjectInfo

    one_batch = [Output("a", 10, 5, 0.8, batch_size=32) for _ in range(32)]
    assert len(calls(one_batch)) == 1
    two = one_batch + [Output("b", 10, 5, 0.9, batch_size=8) for _ in range(8)] + [Output("c", 10, 5, 0.2)] * 3
    assert sorted(len(c) for c in calls(two)) == [1, 1, 1, 8, 32]
    info = SubjectInfo("candidate", "hf", "model", "f")
    d = decide_budget("s", "max_p95_latency_s", 1.0, {"candidate": (info, one_batch)}, None)
    assert d.status == "inconclusive" and "32 requests in 1 timed call:" in d.summary and "single timing" in d.summary
