"""Suite loading: the user's contract, and a clear file:line error for each kind of bad input."""

from __future__ import annotations

import json

import pytest

from pytest_ftgate import SuiteError, load_suite
from tests.conftest import write

GOOD = """\
name: routing
kind: golden
cases: routing.jsonl
prompt:
  system: "You route support tickets."
  few_shot: [{user: "my card was charged twice", assistant: "billing"}]
  candidate: {system: "Route."}
generate: {max_new_tokens: 16}
scorers: [exact, {regex: "^[a-z]+$"}]
gate: {max_regression: 0.05}
"""


def test_good_suite_loads_with_per_subject_prompts(tmp_path):
    write(tmp_path / "routing.jsonl", '{"id": "t-001", "input": "refund please", "expected": "billing"}\n'
          '{"messages": [{"role": "user", "content": "where is my parcel"}], "expected": "shipping", "tags": ["x"]}\n')
    suite = load_suite(write(tmp_path / "routing.yaml", GOOD))
    assert suite.name == "routing" and suite.kind == "golden"
    assert [c.id for c in suite.cases][0] == "t-001"
    assert len(suite.cases[1].id) == 12  # content hash by default
    base = suite.prompts["baseline"].render(suite.cases[0])
    cand = suite.prompts["candidate"].render(suite.cases[0])
    assert [m["role"] for m in base] == ["system", "user", "assistant", "user"]
    assert cand[0] == {"role": "system", "content": "Route."}
    assert len(cand) == 4  # few_shot is inherited unless the candidate prompt overrides it
    assert suite.params.max_new_tokens == 16 and suite.params.greedy
    assert suite.options["goldens"] == tmp_path / "routing.goldens.json"


def test_inline_cases_and_name_default(tmp_path):
    suite = load_suite(write(tmp_path / "qa.yaml", "kind: format\ncases:\n  - {input: hi}\nscorers: [json_valid]\n"))
    assert suite.name == "qa" and suite.gate == {}


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("kind: golden\ncases: [\n  {input: x}\nscorers: [json_valid]\n", 4, "invalid YAML"),
        ("kind: golden\ncases: [{input: x}]\nscorers: [exactly]\n", 3, "unknown scorer 'exactly'"),
        ("kind: golden\ncases: missing.jsonl\nscorers: [json_valid]\n", 2, "cases file 'missing.jsonl' not found"),
        ("kind: goldn\ncases: [{input: x}]\nscorers: [json_valid]\n", 1, "kind must be one of"),
        ("kind: golden\ncases: [{input: x}]\nscorers: [json_valid]\nmodel: gpt\n", 4, "unknown key 'model'"),
        ("kind: golden\ncases: [{input: x}]\nscorers: [json_valid]\ngate: {max_regression: 5}\n", 4, "fraction between 0 and 1"),
        ("kind: golden\ncases: [{input: x}]\nscorers: [json_valid]\ngate: {min_pass_rate: 0.9}\n", 4, "does not apply to a golden suite"),
        ("kind: format\ncases: [{input: x}]\nscorers: [{regex: '('}]\n", 3, "does not compile"),
        ("kind: format\ncases: [{input: x}]\nscorers: [{json_schema: {schema: {type: 12}}}]\n", 3, "schema is itself invalid"),
        ("kind: golden\ncases:\n  - {input: x}\n  - {inpt: y}\nscorers: [json_valid]\n", 4, "unknown case key(s) inpt"),
        ("kind: golden\ncases:\n  - {id: a, input: x}\n  - {id: a, input: y}\nscorers: [json_valid]\n", 4, "duplicate case id 'a'"),
        ("kind: golden\ncases: [{input: x}]\nscorers: [json_valid]\ngenerate: {max_new_tokens: 0}\n", 4, "positive integer"),
        ("kind: golden\ncases: [{input: x}]\n", 1, "missing required key `scorers:`"),
    ],
)
def test_bad_suite_names_file_and_line(tmp_path, text, line, needle):
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert needle in str(err.value)
    assert err.value.path == path
    assert err.value.line == line
    prefix = f"{path}:{line}: " if line else f"{path}: "
    assert str(err.value).startswith(prefix)


def test_bad_jsonl_line_names_the_cases_file_and_line(tmp_path):
    write(tmp_path / "c.jsonl", '{"input": "ok"}\n\n{"input": "broken"\n')
    with pytest.raises(SuiteError) as err:
        load_suite(write(tmp_path / "s.yaml", "kind: golden\ncases: c.jsonl\nscorers: [json_valid]\n"))
    assert err.value.path == tmp_path / "c.jsonl" and err.value.line == 3
    assert "not valid JSON" in str(err.value)


def test_case_needs_input_or_messages(tmp_path):
    write(tmp_path / "c.jsonl", json.dumps({"id": "x", "input": "a", "messages": []}) + "\n")
    with pytest.raises(SuiteError, match="exactly one of `input`"):
        load_suite(write(tmp_path / "s.yaml", "kind: golden\ncases: c.jsonl\nscorers: [json_valid]\n"))


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    write(tmp_path / "c.jsonl", '{"id": "a", "input": "x"}\n{"id": "b", "inpt": "y"}\n{"id": "c"\n')
    text = "kind: task\ncases: c.jsonl\nscorers: [exact, nope]\ngate: {min_accuracy: 2, colour: red}\nextra: 1\n"
    with pytest.raises(SuiteError) as err:
        load_suite(write(tmp_path / "s.yaml", text))
    message = str(err.value)
    for needle in ("s.yaml:5: unknown key 'extra'", "c.jsonl:2: unknown case key(s) inpt", "c.jsonl:3: not valid JSON",
                   "s.yaml:3: unknown scorer 'nope'", "s.yaml:4: gate min_accuracy must be a fraction",
                   "s.yaml:4: gate key 'colour' does not apply to a task suite",
                   "c.jsonl:1: case 'a' has no `expected`, which the exact scorer needs"):
        assert needle in message, message
    assert message.startswith(f"{tmp_path / 's.yaml'}: 7 problems:")
    assert len(err.value.problems) == 7


def test_a_scorer_that_compares_needs_expected_on_every_case(tmp_path):
    text = "kind: task\ncases:\n  - {id: a, input: x, expected: y}\n  - {id: b, input: z}\nscorers: [exact]\n"
    with pytest.raises(SuiteError) as err:
        load_suite(write(tmp_path / "s.yaml", text))
    assert err.value.line == 4 and "case 'b' has no `expected`, which the exact scorer needs" in str(err.value)
    # a fixed text needs no expected value; neither does a label scorer
    load_suite(write(tmp_path / "ok.yaml", "kind: task\ncases: [{input: x}]\nscorers: [{contains: hello}, {label: [a, b]}]\n"))


def test_case_hash_changes_with_content(tmp_path):
    a = load_suite(write(tmp_path / "a.yaml", "kind: golden\ncases: [{id: x, input: a, expected: b}]\nscorers: [exact]\n"))
    b = load_suite(write(tmp_path / "b.yaml", "kind: golden\ncases: [{id: x, input: a, expected: c}]\nscorers: [exact]\n"))
    assert a.cases[0].content_hash != b.cases[0].content_hash


def test_one_rule_says_what_is_a_suite_file_for_pytest_and_ftgate(tmp_path):
    from pytest_ftgate.gating.suite import find_suite_files, is_suite_file

    suites, other = tmp_path / "suites", tmp_path / "ci"
    task = "kind: task\ncases:\n  - {id: a, input: q, expected: x}\nscorers: [exact]\n"
    write(suites / "a.yaml", task)
    write(suites / "typo.yaml", task.replace("kind: task", "kind: taks"))  # the project's: loaded, and refused there
    write(other / "workflow.yml", "on: push\njobs: {}\n")
    write(other / "b.yaml", task)
    assert find_suite_files([suites, other], suites) == [suites / "a.yaml", suites / "typo.yaml", other / "b.yaml"]
    assert find_suite_files([other], other) == [other / "b.yaml", other / "workflow.yml"]  # `ftgate gate ci/`: ci is the project
    assert is_suite_file(other / "workflow.yml", suites, named=True)  # named on its own: a suite, and checked as one
