"""The `instructions` scorer: each verifiable check met and missed on hand-written answers, bad specs refused
when the suite loads, and the bundled panel well-formed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_ftgate import SuiteError, load_suite
from pytest_ftgate.scoring.scorers import build_scorer
from pytest_ftgate.types import Case
from tests.conftest import write

SUITES = Path(__file__).resolve().parents[2] / "suites"


def check(expected, answer):
    case = Case(id="c", messages=({"role": "user", "content": "q"},), expected=expected)
    return build_scorer("instructions", Path("."))(case, answer)


MET = [
    ({"max_words": 5}, "The capital is Paris."),
    ({"min_words": 3}, "Dogs are loyal friends."),
    ({"max_sentences": 2}, "Rain is water. It falls from clouds, about 3.5 mm a drop."),
    ({"lowercase": True}, "grass is green, mostly."),
    ({"uppercase": True}, "HELLO WORLD!"),
    ({"include": ["Paris"]}, "It is paris, of course."),
    ({"include": "New York"}, "I live in new york."),
    ({"avoid": ["sorry"]}, "Here you are."),
    ({"bullets": 3}, "Fruits:\n- apple\n* pear\n+ plum"),
    ({"json_keys": ["name", "age"]}, '{"age": 30, "name": "Ann"}'),
    ({"json_keys": ["name", "age"]}, '```json\n{"name": "Ann", "age": 30}\n```'),
    ({"starts_with": "Yes"}, '"yes, water is wet."'),
    ({"ends_with": "Any other questions?"}, "Paris is the capital. Any other questions?\n"),
    ({"number": 12}, "7 + 5 = 12."),
    ({"number": 1000}, "It is 1,000."),
    ({"number": 2.5}, "Half of 5 is 2.5"),
]


@pytest.mark.parametrize(("expected", "answer"), MET, ids=[next(iter(e)) for e, _ in MET])
def test_each_check_is_met(expected, answer):
    s = check(expected, answer)
    assert (s.passed, s.value, s.detail) == (True, 1.0, "")


MISSED = [
    ({"max_words": 10}, "one two three four five six seven eight nine ten eleven twelve", "12 words, at most 10 asked"),
    ({"min_words": 5}, "Dogs bark.", "2 words, at least 5 asked"),
    ({"max_sentences": 1}, "Rain falls. It is wet! Is it?", "3 sentences, at most 1 asked"),
    ({"lowercase": True}, "Grass is green.", "capital letters in 'Grass'"),
    ({"lowercase": True}, "42", "no letters"),
    ({"uppercase": True}, "HELLO world", "small letters in 'world'"),
    ({"include": ["Paris", "France"]}, "It is Paris.", "does not say 'France'"),
    ({"include": ["cat"]}, "A category.", "does not say 'cat'"),  # whole words only
    ({"avoid": ["sorry"]}, "Sorry, I cannot.", "says 'sorry'"),
    ({"bullets": 3}, "1. apple\n2. pear\n3. plum", "no bullet points, 3 asked"),
    ({"bullets": 3}, "- apple\n- pear", "2 bullet points, 3 asked"),
    ({"json_keys": ["name", "age"]}, '{"name": "Ann", "city": "Rome"}', "missing 'age'; extra 'city'"),
    ({"json_keys": ["name"]}, 'Here it is: {"name": "Ann"}', "not a JSON object"),
    ({"json_keys": ["name"]}, '["name"]', "a list, not an object"),
    ({"starts_with": "Yes"}, "Water is wet.", "not 'Yes'"),
    ({"ends_with": "That is all."}, "Mars. That is all. Bye.", "not 'That is all.'"),
    ({"number": 12}, "7 + 5 = 13", "last number 13, 12 asked"),
    ({"number": 12}, "twelve", "no number, 12 asked"),
]


@pytest.mark.parametrize(("expected", "answer", "needle"), MISSED, ids=[next(iter(e)) for e, _, _ in MISSED])
def test_each_check_is_missed_and_says_what_it_saw(expected, answer, needle):
    s = check(expected, answer)
    assert s.passed is False and s.value == 0.0
    assert s.detail.startswith(f"{next(iter(expected))}: ") and needle in s.detail, s.detail


def test_checks_combine_the_value_is_the_share_met_and_every_miss_is_named():
    s = check({"max_words": 3, "lowercase": True, "include": ["paris"], "avoid": ["sorry"]}, "The capital is Paris")
    assert s.passed is False and s.value == 0.5
    assert s.detail == "max_words: 4 words, at most 3 asked; lowercase: capital letters in 'The', 'Paris', all lowercase asked"


def test_an_empty_answer_meets_nothing_not_even_a_word_limit():
    s = check({"max_words": 10}, "  \n")
    assert s.passed is False and "empty answer" in s.detail


def test_a_bad_spec_called_outside_a_suite_is_unscored_not_failed():
    s = check({"max_word": 10}, "fine")
    assert s.passed is None and "unknown check 'max_word'" in s.detail


def _suite(tmp_path, cases: list[dict], scorers: str = "[instructions]"):
    write(tmp_path / "c.jsonl", "".join(json.dumps(c) + "\n" for c in cases))
    return load_suite(write(tmp_path / "s.yaml", f"kind: golden\ncases: c.jsonl\nscorers: {scorers}\n"))


def test_a_good_suite_loads_and_its_bound_scorer_checks(tmp_path):
    suite = _suite(tmp_path, [{"id": "a", "input": "q", "expected": {"max_words": 3, "number": 4}}])
    (scorer,) = suite.scorers
    assert scorer.bind is None and scorer.needs_expected
    assert scorer(suite.cases[0], "2 + 2 = 4").passed


@pytest.mark.parametrize(("expected", "needle"), [
    ({"max_word": 10}, "unknown check 'max_word'; the checks are max_words, min_words"),
    ({"max_words": "ten"}, "max_words takes a whole number of 1 or more, got 'ten', as in {max_words: 20}"),
    ({"max_words": 0}, "max_words takes a whole number of 1 or more, got 0"),
    ({"lowercase": False}, "lowercase takes `true`"),
    ({"include": []}, "include takes a word or phrase, or a non-empty list"),
    ({"json_keys": ["a", "a"]}, "json_keys takes a non-empty list of distinct key names"),
    ({"number": True}, "number takes a number, e.g. 42, got True"),
    ({"ends_with": " "}, "ends_with takes a non-empty text"),
    ({"lowercase": True, "uppercase": True}, "lowercase and uppercase together cannot both be met"),
    ({"min_words": 20, "max_words": 10}, "min_words 20 is above max_words 10"),
    ("Paris", "`expected` must be a mapping of checks to their argument"),
    ({}, "`expected` must be a mapping of checks to their argument"),
])
def test_a_bad_spec_is_refused_when_the_suite_loads_naming_the_case(tmp_path, expected, needle):
    cases = [{"id": "ok", "input": "q", "expected": {"max_words": 5}}, {"id": "bad", "input": "q", "expected": expected}]
    with pytest.raises(SuiteError) as err:
        _suite(tmp_path, cases)
    message = str(err.value)
    assert "case 'bad' (c.jsonl:2)" in message and needle in message and "'ok'" not in message, message


def test_every_bad_case_is_named_at_once(tmp_path):
    cases = [{"id": f"b{i}", "input": "q", "expected": {"bullet": 3}} for i in range(3)]
    with pytest.raises(SuiteError) as err:
        _suite(tmp_path, cases)
    assert "cannot check 3 cases" in str(err.value) and all(f"case 'b{i}'" in str(err.value) for i in range(3))


def test_the_scorer_takes_no_options(tmp_path):
    with pytest.raises(SuiteError, match="instructions takes no options"):
        _suite(tmp_path, [{"id": "a", "input": "q", "expected": {"max_words": 5}}], "[{instructions: {strict: true}}]")


def test_the_bundled_panel_is_well_formed():
    suite = load_suite(SUITES / "instructions.yaml")
    assert suite.kind == "golden" and [s.name for s in suite.scorers] == ["instructions"]
    assert len(suite.cases) >= 60
    families = {check for case in suite.cases for check in case.expected}
    assert len(families) >= 5, families
    ids = {case.id for case in suite.cases}
    goldens = json.loads((SUITES / "instructions.goldens.json").read_text(encoding="utf-8"))
    frozen = {g["id"] for g in goldens["goldens"]}
    assert frozen and frozen <= ids, sorted(frozen - ids)
    assert goldens["suite"] == "instructions"
