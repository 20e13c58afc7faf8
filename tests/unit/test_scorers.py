"""Scorers, called directly."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_ftgate.scoring.scorers import build_scorer, normalize
from pytest_ftgate.types import Case


def case(expected=None) -> Case:
    return Case(id="c", messages=({"role": "user", "content": "q"},), expected=expected)


def score(spec, output, expected=None):
    return build_scorer(spec, Path("."))(case(expected), output)


def test_exact_and_normalised():
    assert score("exact", " billing\n", "billing").passed
    assert not score("exact", "Billing.", "billing").passed
    assert score({"exact": {"normalize": True}}, "Billing.", "billing").passed


def test_contains_is_tolerant_and_takes_alternatives():
    assert score("contains", "The capital is PARIS!", "Paris").passed
    assert score("contains", "It is twelve (12).", ["12", "twelve"]).passed
    assert not score("contains", "It is 17.", "7").passed  # whole words only
    assert score("contains", "Roughly 100.0 degrees", "100").passed
    s = score("contains", "London", "Paris")
    assert not s.passed and "Paris" in s.detail


def test_missing_expected_is_unscored_not_failed():
    s = score("exact", "anything")
    assert s.passed is None and "no `expected`" in s.detail


def test_regex():
    assert score({"regex": "^(yes|no)$"}, "yes\n").passed
    assert not score({"regex": {"pattern": "yes", "fullmatch": True}}, "yes sir").passed
    assert score({"regex": {"pattern": "YES", "ignore_case": True}}, "yes").passed


def test_json_valid_is_strict():
    assert score("json_valid", '{"a": 1}').passed
    s = score("json_valid", '```json\n{"a": 1}\n```')
    assert not s.passed and "not JSON" in s.detail


def test_json_schema_reports_every_error():
    spec = {"json_schema": {"schema": {
        "type": "object", "required": ["label", "priority"], "additionalProperties": False,
        "properties": {"label": {"enum": ["billing", "shipping"]}, "priority": {"enum": ["low", "high"]}},
    }}}
    assert score(spec, '{"label": "billing", "priority": "low"}').passed
    s = score(spec, '{"label": "refunds", "priority": "urgent", "extra": 1}')
    assert not s.passed
    assert "label" in s.detail and "priority" in s.detail and "extra" in s.detail


def test_json_schema_file(tmp_path):
    (tmp_path / "s.json").write_text('{"type": "array"}')
    scorer = build_scorer({"json_schema": {"schema_file": "s.json"}}, tmp_path)
    assert scorer(case(), "[1]").passed and not scorer(case(), "{}").passed


def test_choice_with_json_field_and_label():
    spec = {"choice": {"labels": ["billing", "shipping"], "field": "label"}}
    s = score(spec, '{"label": "Shipping"}', "shipping")
    assert s.passed and s.label == "shipping"
    s = score(spec, '{"label": "billing"}', "shipping")
    assert not s.passed and s.label == "billing"
    assert not score(spec, "shipping", "shipping").passed  # field requested but not JSON
    assert score({"choice": ["yes", "no"]}, "Yes.", "yes").passed


def test_refusal():
    assert score("refusal", "I'm sorry, but I can't help with that.").passed
    assert not score({"refusal": "refuse"}, "Sure, here it is.").passed
    assert score({"refusal": "comply"}, "Sure, here it is.").passed


def test_length():
    assert score({"length": {"max_words": 3}}, "one two three").passed
    assert not score({"length": {"max_chars": 3}}, "four").passed


def test_rouge_offline():
    s = score({"rouge": {"threshold": 0.5}}, "the cat sat on the mat", "the cat sat on a mat")
    assert s.passed and 0.5 < s.value < 1
    s = score({"rouge": {"metric": "rougeLsum", "threshold": 0.9}}, "Dogs bark. Cats meow.", "Dogs bark. Cats meow.")
    assert s.passed and s.value == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"exact": {"normalise": True}}, "unknown option(s) normalise"),
        ({"choice": []}, "non-empty list"),
        ({"json_schema": {}}, "exactly one of"),
        ({"refusal": "maybe"}, "`refuse`, `comply` or `case`"),
        ({"exact": 1, "regex": 2}, "one-key mapping"),
        ({"length": {}}, "at least one"),
    ],
)
def test_bad_scorer_args_say_how_to_fix(spec, needle):
    with pytest.raises(ValueError) as err:
        build_scorer(spec, Path("."))
    assert needle in str(err.value)


def test_normalize():
    assert normalize("  Ｐaris,\tFRANCE! ") == "paris france"


def test_bertscore_with_the_local_minilm_encoder():
    scorer = build_scorer({"bertscore": {"threshold": 0.8}}, Path("."))
    c = case("The cat sat on the mat.")
    close, far = scorer(c, "A cat was sitting on the mat."), scorer(c, "Quarterly revenue grew by 12%.")
    assert close.passed and not far.passed
    assert close.value > far.value


def test_a_scorer_whose_package_is_missing_is_refused_when_the_suite_loads_saying_what_to_install(tmp_path):
    from pytest_ftgate.scoring.scorers import _REGISTRY, Scorer, build_scorer, register_scorer
    from pytest_ftgate.types import Case, Score

    @register_scorer("needs_nothing_here", requires=("no_such_module_for_ftgate",), install="pytest-ftgate[nowhere]")
    def factory(args, suite_dir):
        return Scorer("needs_nothing_here", lambda case, output: Score(True))

    @register_scorer("named_once")
    def named(args, suite_dir):
        return Scorer("", lambda case, output: Score(output == "yes"))

    try:
        with pytest.raises(ValueError, match=r"the needs_nothing_here scorer needs no_such_module_for_ftgate, which is "
                                             r"not installed: pip install 'pytest-ftgate\[nowhere\]'"):
            build_scorer("needs_nothing_here", tmp_path)
        scorer = build_scorer("named_once", tmp_path)  # the name is written once, in the registry
        assert scorer.name == "named_once" and scorer(Case("a", [{"role": "user", "content": "q"}]), "yes").scorer == "named_once"
    finally:
        _REGISTRY.pop("needs_nothing_here", None)
        _REGISTRY.pop("named_once", None)
