"""Sampled decoding: k samples per case, reduced to one outcome; each case counted once; cached per sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_ftgate import RunConfig, SuiteError, load_suite, run_gate
from pytest_ftgate.kinds.sampling import reduce_case
from pytest_ftgate.report.json_report import to_json
from pytest_ftgate.report.view import build_view
from pytest_ftgate.subjects.hf.engine import HFEngine
from pytest_ftgate.types import Case, CaseResult, Output, Score
from tests.conftest import write


def scored(*verdicts: bool | None, texts: tuple[str, ...] = ()) -> list[CaseResult]:
    case = Case("c", ({"role": "user", "content": "q"},))
    texts = texts or tuple(f"answer {i}" for i in range(len(verdicts)))
    return [CaseResult(case, Output(t), (Score(v, None if v is None else float(v), "" if v else "wrong", "exact"),))
            for v, t in zip(verdicts, texts)]


@pytest.mark.parametrize("how, verdicts, expected", [
    ("pass_at_k", (False, False, True, False, False), True),
    ("pass_at_k", (False, False, False, False, False), False),
    ("pass_all", (True, True, True, True, False), False),
    ("pass_all", (True, True, True, True, True), True),
    ("mean", (True, True, False, False, True), True),
    ("mean", (True, False, False, False, True), False),
])
def test_each_reducer_gives_its_outcome_and_the_share_of_samples_that_passed(how, verdicts, expected):
    reduced = reduce_case(scored(*verdicts), how)
    assert reduced.passed is expected
    assert reduced.value == pytest.approx(sum(verdicts) / len(verdicts))
    assert len(reduced.samples) == len(verdicts)


def test_majority_takes_the_answer_most_samples_gave_not_the_most_passes():
    # three samples say "Lyon" (wrong), two say "Paris" (right): the majority answer is Lyon, so the case fails
    reduced = reduce_case(scored(False, True, False, True, False, texts=("Lyon", "Paris", "lyon ", "Paris", "LYON")),
                          "majority")
    assert reduced.passed is False
    assert reduced.output.text == "Lyon"
    assert "3 of 5" in reduced.scores[0].detail


def test_a_sample_that_could_not_be_scored_leaves_the_case_unscored_never_passed():
    reduced = reduce_case(scored(True, None, True), "pass_at_k")
    assert reduced.passed is None
    assert "1 of 3 samples could not be scored" in reduced.scores[0].detail


def sampled_suite(tmp_path: Path, samples: int, reduce: str, n: int = 10) -> Path:
    cases = "".join(json.dumps({"id": f"c{i}", "input": "word " * (1 + i % 5) + str(i)}) + "\n" for i in range(n))
    write(tmp_path / "cases.jsonl", cases)
    return write(tmp_path / "s.yaml", "kind: format\ncases: cases.jsonl\n"
                 f"generate: {{max_new_tokens: 4, temperature: 1.0, samples: {samples}, reduce: {reduce}}}\n"
                 "scorers: [{regex: 'e'}]\ngate: {min_pass_rate: 0.05}\n")


def count_requests(monkeypatch) -> list[int]:
    sizes: list[int] = []
    original = HFEngine.generate

    def spy(self, requests, **kw):
        sizes.append(len(requests))
        return original(self, requests, **kw)

    monkeypatch.setattr(HFEngine, "generate", spy)
    return sizes


def test_a_sampled_suite_is_gated_end_to_end_each_case_counted_once_with_its_disagreement_reported(
        tmp_path, tiny_adapter, monkeypatch):
    generated = count_requests(monkeypatch)
    config = RunConfig(candidate=str(tiny_adapter), cache_dir=tmp_path / "cache", progress=False, suites_dir=tmp_path)
    run = run_gate([load_suite(sampled_suite(tmp_path, 5, "pass_at_k"))], config)
    assert generated == [50, 50]  # 10 cases x 5 samples, for each subject
    out = run.outcomes[0]
    assert out.baseline.n == 10 and out.comparison.n == 10  # statistics count cases, never samples
    assert out.comparison.both_pass + out.comparison.both_fail + len(out.comparison.regressions) + len(out.comparison.fixes) == 10
    for r in out.candidate.results:
        k = sum(1 for s in r.samples if s.passed)
        assert r.passed is (k > 0) and len(r.samples) == 5
    assert len({s.output.text for r in out.candidate.results for s in r.samples}) > 10  # the samples differ
    report = to_json(build_view(run))["suites"][0]["samples"]
    assert report["samples"] == 5 and report["reduce"] == "pass_at_k"
    flaky = [c for c in report["cases"] if c["flaky"]]
    assert flaky and all(0 < c["passed"] < 5 for c in flaky)
    assert report["flaky"]["candidate"] == sum(1 for r in out.candidate.results if 0 < sum(bool(s.passed) for s in r.samples) < 5)

    # the same samples reduced by majority: nothing generated again, and the outcome is the majority answer's
    generated.clear()
    again = run_gate([load_suite(sampled_suite(tmp_path, 5, "majority"))], config)
    assert generated == []
    for r in again.outcomes[0].candidate.results:
        assert r.passed is next(s.passed for s in r.samples if s.output.text == r.output.text)


def test_more_samples_generate_only_the_new_ones(tmp_path, tiny_adapter, monkeypatch):
    generated = count_requests(monkeypatch)
    config = RunConfig(baseline=str(tiny_adapter), cache_dir=tmp_path / "cache", progress=False, suites_dir=tmp_path)
    run_gate([load_suite(sampled_suite(tmp_path, 5, "mean", n=4))], config)
    run_gate([load_suite(sampled_suite(tmp_path, 8, "mean", n=4))], config)
    assert generated == [20, 12]  # 4 cases x 5, then 4 cases x 3 more


def test_an_endpoint_that_answers_differently_at_temperature_0_is_named_nondeterministic(tmp_path):
    from itertools import count

    from tests.conftest import scripted_subject

    ticks = count()
    write(tmp_path / "s.yaml", "kind: format\ncases: [{id: a, input: hi}, {id: b, input: there}]\n"
          "generate: {samples: 3}\nscorers: [{regex: '.'}]\ngate: {min_pass_rate: 0.5}\n")
    with scripted_subject("drifty", lambda spec: "drifty-1", lambda job: f"answer {next(ticks) % 2}"):
        run = run_gate([load_suite(tmp_path / "s.yaml")], RunConfig(baseline="drifty:x", cache_dir=None, progress=False,
                                                                    suites_dir=tmp_path))
    said = [n for n in run.notices if "nondeterministic" in n]
    assert len(said) == 1 and "drifty:x" in said[0] and "2 of 2 case(s)" in said[0]


@pytest.mark.parametrize("generate, message", [
    ("{samples: 0}", "samples must be an integer from 1 to 100"),
    ("{samples: 3, reduce: best}", "reduce must be one of mean, majority, pass_at_k, pass_all"),
    ("{reduce: majority}", "with one sample per case there is nothing to reduce"),
])
def test_bad_sampling_settings_are_refused_at_load_with_their_line(tmp_path, generate, message):
    path = write(tmp_path / "s.yaml", f"kind: format\ncases: [{{id: a, input: hi}}]\ngenerate: {generate}\n"
                 "scorers: [{regex: '.'}]\n")
    with pytest.raises(SuiteError, match=message) as info:
        load_suite(path)
    assert "s.yaml:3" in str(info.value)


def test_a_case_may_choose_its_own_reducer_and_a_bad_one_is_refused(tmp_path):
    path = write(tmp_path / "s.yaml", "kind: format\ncases: [{id: a, input: hi, reduce: pass_all}, {id: b, input: yo}]\n"
                 "generate: {samples: 3, temperature: 0.7}\nscorers: [{regex: '.'}]\n")
    suite = load_suite(path)
    assert [c.reduce for c in suite.cases] == ["pass_all", None] and suite.sampling.reduce == "mean"
    write(tmp_path / "s.yaml", "kind: format\ncases: [{id: a, input: hi, reduce: most}]\n"
          "generate: {samples: 3}\nscorers: [{regex: '.'}]\n")
    with pytest.raises(SuiteError, match="`reduce` must be one of"):
        load_suite(path)


def test_the_samples_and_reducer_are_part_of_what_the_goldens_and_the_contract_bind(tmp_path):
    one = load_suite(write(tmp_path / "a.yaml", "kind: format\ncases: [{id: a, input: hi}]\nscorers: [{regex: '.'}]\n"))
    five = load_suite(write(tmp_path / "b.yaml", "kind: format\ncases: [{id: a, input: hi}]\n"
                            "generate: {samples: 5, temperature: 0.7}\nscorers: [{regex: '.'}]\n"))
    seven = load_suite(write(tmp_path / "c.yaml", "kind: format\ncases: [{id: a, input: hi}]\n"
                             "generate: {samples: 5, temperature: 0.7, reduce: pass_all}\nscorers: [{regex: '.'}]\n"))
    assert len({one.definition["generate"], five.definition["generate"], seven.definition["generate"]}) == 3


def test_a_judge_suite_refuses_samples_with_the_reason(tmp_path):
    path = write(tmp_path / "j.yaml", "kind: judge\ncases: [{id: a, input: hi}]\ngenerate: {samples: 3}\n"
                 "judge: {mode: rubric, criteria: 'The answer is correct.', model: 'openai:gpt-4o-2024-08-06'}\n")
    with pytest.raises(SuiteError, match="a judge suite generates one answer per case"):
        load_suite(path)


def test_a_perturbation_is_refused_on_a_sampled_suite(tmp_path):
    path = write(tmp_path / "p.yaml", "kind: format\ncases: [{id: a, input: hi}]\ngenerate: {samples: 3, temperature: 0.5}\n"
                 "scorers: [{regex: '.'}]\nperturb: {strategies: [typos]}\n")
    with pytest.raises(SuiteError, match="perturb: not on a sampled suite"):
        load_suite(path)
