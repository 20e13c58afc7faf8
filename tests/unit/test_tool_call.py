"""The `tool_call` scorer: calls parsed from every shape models write them in, compared exactly or against a
schema; bad expected shapes refused when the suite loads; API tool calls rendered and read back."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_ftgate import SuiteError, load_suite
from pytest_ftgate.scoring.scorers import build_scorer
from pytest_ftgate.scoring.tools import ToolCall, format_tool_calls, parse_tool_calls
from pytest_ftgate.types import Case
from tests.conftest import write

WEATHER = {"name": "get_weather", "arguments": {"city": "Paris"}}


def score(expected, answer, spec="tool_call"):
    case = Case(id="c", messages=({"role": "user", "content": "q"},), expected=expected)
    return build_scorer(spec, Path("."))(case, answer)


SHAPES = [
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
    'Let me check.\n<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}</tool_call>',
    '{"name": "get_weather", "parameters": {"city": "Paris"}}',
    '[{"name": "get_weather", "arguments": {"city": "Paris"}}]',
    'Sure:\n```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
    '{"type": "function", "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}',
    ('{"role": "assistant", "tool_calls": [{"id": "1", "type": "function", '
     '"function": {"name": "get_weather", "arguments": "{\\"city\\":\\"Paris\\"}"}}]}'),
]


@pytest.mark.parametrize("answer", SHAPES, ids=["tagged", "tagged-string-args", "bare-parameters", "bare-list",
                                                 "fenced", "openai", "openai-message"])
def test_every_shape_of_a_call_is_read(answer):
    assert parse_tool_calls(answer) == [ToolCall("get_weather", {"city": "Paris"})]
    assert score(WEATHER, answer).passed


@pytest.mark.parametrize(("answer", "detail"), [
    ("It is sunny in Paris.", "no tool call in the answer"),
    ('{"city": "Paris"}', "no tool call in the answer"),
    ("<tool_call>{name: get_weather}</tool_call>", "unparseable tool call: <tool_call> holds no JSON"),
    ('<tool_call>{"name": "get_weather", "arguments": "{city: Paris"}</tool_call>',
     "unparseable tool call: the arguments of get_weather are not JSON"),
    ('<tool_call>{"arguments": {}}</tool_call>', "unparseable tool call: no tool name"),
    ('<tool_call>{"name": "get_time", "arguments": {"city": "Paris"}}</tool_call>', "called get_time, expected get_weather"),
    ('<tool_call>{"name": "get_weather", "arguments": {"city": "paris"}}</tool_call>',
     "argument city: 'paris', expected 'Paris'"),
    ('<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>', "argument city: missing, expected 'Paris'"),
    ('<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}</tool_call>',
     "argument unit: 'C', not expected"),
])
def test_a_wrong_call_fails_saying_why(answer, detail):
    s = score(WEATHER, answer)
    assert s.passed is False and s.value == 0.0 and detail in s.detail, s.detail


def test_bare_json_is_a_call_only_with_a_name_and_arguments():
    assert parse_tool_calls('{"name": "Ann", "age": 30}') == []
    assert score(WEATHER, 'Here is Ann: {"name": "Ann", "age": 30}').detail == "no tool call in the answer"


def test_calls_written_one_per_line_after_prose_are_all_read():
    answer = ('I will call two tools.\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
              '{"name": "get_time", "arguments": {"tz": "CET"}}')
    assert [c.name for c in parse_tool_calls(answer)] == ["get_weather", "get_time"]


def test_arguments_compare_as_json_values():
    wanted = {"name": "f", "arguments": {"n": 1, "flag": True, "tags": ["a"]}}
    assert score(wanted, '{"name": "f", "arguments": {"n": 1.0, "flag": true, "tags": ["a"]}}').passed
    s = score(wanted, '{"name": "f", "arguments": {"n": true, "flag": 1, "tags": ["a"]}}')
    assert not s.passed and "argument n: true, expected 1" in s.detail and "argument flag: 1, expected true" in s.detail


SCHEMA = {"name": "get_weather", "arguments_schema": {
    "type": "object", "required": ["city"], "additionalProperties": False,
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}}}}


def test_arguments_are_validated_against_a_schema():
    assert score(SCHEMA, '{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}').passed
    s = score(SCHEMA, '{"name": "get_weather", "arguments": {"unit": "kelvin"}}')
    assert not s.passed and s.detail.startswith("arguments of get_weather do not match the schema: ")
    assert "'city' is a required property" in s.detail and "unit: 'kelvin' is not one of" in s.detail


def test_a_name_alone_takes_any_arguments():
    assert score({"name": "get_time"}, '{"name": "get_time", "arguments": {"tz": "UTC"}}').passed


TWO = [WEATHER, {"name": "get_time", "arguments": {"tz": "CET"}}]
BOTH_REVERSED = ('<tool_call>{"name": "get_time", "arguments": {"tz": "CET"}}</tool_call>\n'
                 '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>')


def test_several_calls_are_matched_in_any_order_by_default():
    assert score(TWO, BOTH_REVERSED).passed


def test_ordered_asks_for_the_listed_order():
    s = score(TWO, BOTH_REVERSED, {"tool_call": {"ordered": True}})
    assert not s.passed and "called get_time, expected get_weather" in s.detail


def test_a_missing_or_an_extra_call_fails_and_the_value_is_the_share_matched():
    s = score(TWO, '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>')
    assert not s.passed and s.value == 0.5 and "1 tool call (get_weather), 2 expected" in s.detail
    assert "no call of get_time" in s.detail
    s = score(WEATHER, BOTH_REVERSED)
    assert not s.passed and s.value == 0.5 and "2 tool calls (get_time, get_weather), 1 expected" in s.detail


def test_api_tool_calls_round_trip_through_the_text():
    api = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
           SimpleNamespace(id="call_2", type="function",
                           function=SimpleNamespace(name="get_time", arguments='{"tz": "CET"}'))]  # an SDK object
    text = format_tool_calls(api)
    assert text == ('<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>\n'
                    '<tool_call>{"name": "get_time", "arguments": {"tz": "CET"}}</tool_call>')
    assert parse_tool_calls(text) == [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", {"tz": "CET"})]
    assert score(TWO, "Checking both.\n" + text, {"tool_call": {"ordered": True}}).passed


def test_arguments_the_api_sent_broken_stay_broken_after_the_round_trip():
    text = format_tool_calls([{"function": {"name": "get_weather", "arguments": '{"city": '}}])
    s = score(WEATHER, text)
    assert not s.passed and "unparseable tool call: the arguments of get_weather are not JSON" in s.detail


def _suite(tmp_path, expected, scorers="[tool_call]"):
    cases = [{"id": "ok", "input": "q", "expected": WEATHER}, {"id": "bad", "input": "q", "expected": expected}]
    write(tmp_path / "c.jsonl", "".join(json.dumps(c) + "\n" for c in cases))
    return load_suite(write(tmp_path / "s.yaml", f"kind: task\ncases: c.jsonl\nscorers: {scorers}\n"))


def test_a_good_suite_loads(tmp_path):
    suite = _suite(tmp_path, [WEATHER, SCHEMA])
    assert [s.bind for s in suite.scorers] == [None]


@pytest.mark.parametrize(("expected", "needle"), [
    ("get_weather", "`expected` must be a tool call"),
    ({"arguments": {"city": "Paris"}}, "needs the tool's `name`"),
    ({"name": "f", "args": {}}, "unknown key(s) 'args'"),
    ({"name": "f", "arguments": "{}"}, "`arguments` must be an object"),
    ({"name": "f", "arguments": {}, "arguments_schema": {}}, "not both"),
    ({"name": "f", "arguments_schema": {"type": "strng"}}, "arguments_schema is not a valid JSON schema"),
    ([WEATHER, {"name": ""}], "call 2: needs the tool's `name`"),
])
def test_a_bad_expected_is_refused_when_the_suite_loads_naming_the_case(tmp_path, expected, needle):
    with pytest.raises(SuiteError) as err:
        _suite(tmp_path, expected)
    message = str(err.value)
    assert "case 'bad' (c.jsonl:2)" in message and needle in message and "'ok'" not in message, message


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(SuiteError, match="ordered must be true or false"):
        _suite(tmp_path, WEATHER, "[{tool_call: {ordered: sometimes}}]")
    with pytest.raises(SuiteError, match="unknown option"):
        _suite(tmp_path, WEATHER, "[{tool_call: {order: true}}]")
