"""Gate decisions on synthetic results: the golden rule, strict mode, staleness, thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_ftgate.gating.gate import decide, effective_gate, parse_threshold
from pytest_ftgate.types import Threshold
from pytest_ftgate.kinds.golden import GoldenState
from pytest_ftgate.stores.goldens import read_goldens, write_goldens
from pytest_ftgate.gating.suite import load_suite
from pytest_ftgate.types import CaseResult, Output, Score, SubjectInfo, SuiteResult
from tests.conftest import write

BASE = SubjectInfo("baseline", "outputs", "base", "fb")
CAND = SubjectInfo("candidate", "outputs", "cand", "fc")


def golden_suite(tmp_path: Path, n: int, gate: str = "{max_regression: 0.05}"):
    cases = "\n".join(f"  - {{id: c{i}, input: q{i}, expected: a}}" for i in range(n))
    return load_suite(write(tmp_path / "g.yaml", f"kind: golden\ncases:\n{cases}\nscorers: [exact]\ngate: {gate}\n"))


def results(suite, subject, failing=(), unscored=()) -> SuiteResult:
    rows = []
    for c in suite.cases:
        if c.id in unscored:
            s = Score.unscored("judge reply unparsable", "judge")
        else:
            ok = c.id not in failing
            s = Score(ok, float(ok), "" if ok else "wrong", "exact")
        rows.append(CaseResult(c, Output("a" if s.passed else "b"), (s,)))
    return SuiteResult(suite.name, subject, tuple(rows))


def gate_goldens(tmp_path, n, cand_failing, base_failing=(), gate="{max_regression: 0.05}", unscored=()):
    suite = golden_suite(tmp_path, n, gate)
    base = results(suite, BASE, base_failing)
    golden = write_goldens(suite.options["goldens"], base, suite.definition)  # frozen as the kind freezes
    cand = results(suite, CAND, cand_failing, unscored)
    decisions, cmp = decide(suite, effective_gate(suite), base, cand, GoldenState(golden))
    return decisions[0], cmp


def test_golden_rule_boundary_at_five_percent(tmp_path):
    ok, _ = gate_goldens(tmp_path, 100, [f"c{i}" for i in range(5)])
    assert ok.status == "passed" and ok.figures["k"] == 5 and ok.figures["max_passing_regressions"] == 5
    bad, cmp = gate_goldens(tmp_path, 100, [f"c{i}" for i in range(6)])
    assert bad.status == "blocked" and bad.blocks and bad.breaches
    assert len(cmp.regressions) == 6
    lo, hi = bad.figures["wilson"]
    assert lo < 0.06 < hi and bad.figures["clopper_pearson"][1] > hi - 0.02


@pytest.mark.parametrize("kind", ["task", "format"])
def test_a_pass_on_a_small_suite_of_any_kind_is_said(tmp_path, kind):
    cases = "\n".join(f"  - {{id: c{i}, input: q{i}, expected: a}}" for i in range(2))
    suite = load_suite(write(tmp_path / "s.yaml", f"kind: {kind}\ncases:\n{cases}\nscorers: [exact]\n"
                             f"gate: {{{'min_accuracy' if kind == 'task' else 'min_pass_rate'}: 0.5}}\n"))
    (d, *_), _ = decide(suite, effective_gate(suite), results(suite, BASE, ["c0", "c1"]), results(suite, CAND, ["c1"]))
    assert d.status == "passed"
    assert any(w.startswith("only 2 case(s): a rate of 50% on 2 has a 95% interval of 9.5%–90.5%") for w in d.warnings)
    big = load_suite(write(tmp_path / "b.yaml", f"kind: {kind}\ncases:\n" + "\n".join(
        f"  - {{id: c{i}, input: q{i}, expected: a}}" for i in range(20)) + "\nscorers: [exact]\n"))
    (d, *_), _ = decide(big, effective_gate(big), results(big, BASE, ["c0"]), results(big, CAND))
    assert d.status == "passed" and not any(w.startswith("only ") for w in d.warnings)


def test_small_golden_set_warns(tmp_path):
    d, _ = gate_goldens(tmp_path, 20, [])
    assert d.status == "passed" and any("too few" in w for w in d.warnings)
    d, _ = gate_goldens(tmp_path, 80, [])
    assert not any("too few" in w for w in d.warnings)


def test_strict_mode_is_inconclusive_between_bound_and_threshold(tmp_path):
    strict = "{max_regression: 0.05, confidence: 0.95}"
    d, _ = gate_goldens(tmp_path, 100, ["c0"], gate=strict)  # 1% observed, upper bound ~4.7%
    assert d.status == "passed"
    d, _ = gate_goldens(tmp_path, 100, ["c0", "c1", "c2"], gate=strict)  # 3% observed, bound > 5%
    assert d.status == "inconclusive" and d.blocks
    d, _ = gate_goldens(tmp_path, 100, ["c0", "c1", "c2"], gate="{max_regression: 0.05, confidence: 0.95, inconclusive: pass}")
    assert d.status == "inconclusive" and not d.blocks
    d, _ = gate_goldens(tmp_path, 40, [], gate=strict)  # never passes below n=59
    assert d.status == "inconclusive"


def test_goldens_are_what_the_baseline_passed_and_stale_ones_are_not_counted(tmp_path):
    suite = golden_suite(tmp_path, 10)
    golden = write_goldens(suite.options["goldens"], results(suite, BASE, failing=["c9"]), suite.definition)
    assert set(golden.hashes) == {f"c{i}" for i in range(9)}
    assert read_goldens(suite.options["goldens"]).hashes == golden.hashes
    base_now = results(suite, BASE, failing=["c9", "c0"])  # c0 no longer passes: stale
    cand = results(suite, CAND, failing=["c0", "c1"])
    d = decide(suite, effective_gate(suite), base_now, cand, GoldenState(golden))[0][0]
    assert d.figures["n"] == 8 and d.figures["k"] == 1
    assert d.figures["stale"] == {"c0": "the baseline fails it now"}


def test_unscored_results_make_the_gate_an_error(tmp_path):
    d, _ = gate_goldens(tmp_path, 10, [], unscored=["c3"])
    assert d.status == "error" and "could not be scored" in d.summary and d.blocks


def test_missing_golden_file_is_an_error_that_says_how_to_create_it(tmp_path):
    suite = golden_suite(tmp_path, 5)
    d = decide(suite, effective_gate(suite), results(suite, BASE), results(suite, CAND), GoldenState(None))[0][0]
    assert d.status == "error" and "--ftgate-update-goldens" in d.summary


def test_task_criteria_and_baseline_only(tmp_path):
    cases = "\n".join(f"  - {{id: c{i}, input: q{i}, expected: a}}" for i in range(10))
    suite = load_suite(write(tmp_path / "t.yaml", f"kind: task\ncases:\n{cases}\nscorers: [exact]\ngate: {{min_accuracy: 0.7}}\n"))
    gate = effective_gate(suite)
    base = results(suite, BASE, failing=["c0", "c1", "c2", "c3"])
    decisions, _ = decide(suite, gate, base, None, GoldenState(None))
    assert [(d.criterion, d.status) for d in decisions] == [("accuracy", "blocked"), ("vs_baseline", "skipped")]
    cand = results(suite, CAND, failing=["c0"])
    decisions, cmp = decide(suite, gate, base, cand, None)
    assert [(d.criterion, d.status) for d in decisions] == [("accuracy", "passed"), ("vs_baseline", "passed")]
    assert cmp.mcnemar_p == pytest.approx(0.25)  # 3 fixes, 0 regressions
    worse = results(suite, CAND, failing=["c0", "c1", "c2", "c3", "c4"])
    assert decide(suite, gate, base, worse, None)[0][1].status == "blocked"


@pytest.mark.parametrize(("text", "target", "value"), [("golden:5%", "golden", 0.05), ("format:0.95", "format", 0.95), ("routing:80%", "routing", 0.8)])
def test_parse_threshold(text, target, value):
    t = parse_threshold(text)
    assert t.target == target and t.value == pytest.approx(value)


@pytest.mark.parametrize("text", ["golden", "golden:", "golden:abc", "golden:150%", ":5%"])
def test_bad_threshold_says_how_to_write_it(text):
    with pytest.raises(ValueError):
        parse_threshold(text)


def test_threshold_layers_later_wins(tmp_path):
    suite = golden_suite(tmp_path, 3, "{max_regression: 0.1}")
    assert effective_gate(suite)["max_regression"] == 0.1
    ini = Threshold.parse_list("golden:3%")
    cli = Threshold.parse_list("g:1%,format:90%")
    assert effective_gate(suite, ini)["max_regression"] == 0.03
    assert effective_gate(suite, ini, cli)["max_regression"] == 0.01  # suite name `g` targets it


def test_min_gain_requires_the_candidate_above_the_baseline(tmp_path):
    cases = "\n".join(f"  - {{id: c{i}, input: q{i}, expected: a}}" for i in range(10))
    suite = load_suite(write(tmp_path / "t.yaml", f"kind: task\ncases:\n{cases}\nscorers: [exact]\ngate: {{min_gain: 0.2}}\n"))
    gate = effective_gate(suite)
    base = results(suite, BASE, failing=["c0", "c1", "c2", "c3"])
    d = decide(suite, gate, base, results(suite, CAND, failing=["c0", "c1", "c2"]), None)[0][-1]
    assert d.criterion == "vs_baseline" and d.status == "blocked" and "gain +10.0pp < required +20.0pp" in d.summary
    d = decide(suite, gate, base, results(suite, CAND, failing=["c0", "c1"]), None)[0][-1]
    assert d.status == "passed"


def test_a_comma_list_of_thresholds_reads_the_same_from_the_flag_and_the_ini(tmp_path):
    from pytest_ftgate.settings.config import build_run_config
    from pytest_ftgate.settings.options import threshold_arg

    both = Threshold.parse_list("g:1%,format:90%")
    assert [(t.target, t.value) for t in both] == [("g", 0.01), ("format", 0.9)]
    from_ini = build_run_config({}, tmp_path, {"ftgate_fail": ["g:1%,format:90%", "golden:2%"]}.get).thresholds
    from_flag = build_run_config({"ftgate_fail": [threshold_arg("g:1%,format:90%")]}, tmp_path).thresholds
    assert from_ini == ((*both, parse_threshold("golden:2%")), ()) and from_flag == ((), both)
    with pytest.raises(ValueError, match="names no threshold"):
        Threshold.parse_list(" , ")
