"""The `tool_call` scorer: the answer calls the expected tool(s) with the expected arguments.

Scorers read text, so tool calls are parsed from the answer, in any of the shapes models write them:

    <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>   Hermes, Qwen, SmolLM3
    {"name": "get_weather", "arguments": {...}}  or  [{...}, {...}]                   bare JSON (in a ```json fence,
                                                                                     after prose, one per line)
    {"type": "function", "function": {"name": "get_weather", "arguments": "{...}"}}  the OpenAI shape
    "parameters" for "arguments"; arguments given as a JSON string are parsed first

An endpoint subject renders the API's `message.tool_calls` with `format_tool_calls` into the first
shape and appends it to the answer's text, so one scorer reads every subject.

A case's `expected` is one call or a list of calls, each `{"name": ..., "arguments": {...}}` (compared as
JSON values, exactly), `{"name": ..., "arguments_schema": {JSON schema}}` (validated with jsonschema), or
`{"name": ...}` alone (any arguments). The answer must make exactly the expected calls, in any order
(parallel calls carry no order); `{tool_call: {ordered: true}}` asks for the listed order.

This module imports nothing of the registry (scorers.py registers what `SCORERS` declares).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..types import Case, Score, Scorer, SuiteContext

_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
_FENCED = re.compile(r"```[\w-]*\s*\n?(.*?)```", re.DOTALL)
CALL_KEYS = {"name", "arguments", "arguments_schema"}


@dataclass(frozen=True)
class ToolCall:
    """One call parsed from an answer: the tool's name and its arguments as JSON values."""

    name: str
    arguments: Any


class Unparseable(ValueError):
    """The answer tries to call a tool, and the call cannot be read."""


# --- reading calls from an answer ----------------------------------------------------------------

def _call(obj: Any) -> ToolCall:
    """One call from its JSON: {name, arguments|parameters}, or the OpenAI {type: function, function: {...}}."""
    if not isinstance(obj, dict):
        raise Unparseable(f"a call is a JSON object, got {json.dumps(obj)[:60]}")
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise Unparseable(f"no tool name in {json.dumps(obj)[:60]}")
    arguments = obj.get("arguments", obj.get("parameters"))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except (json.JSONDecodeError, RecursionError) as exc:
            why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deep"
            raise Unparseable(f"the arguments of {name} are not JSON ({why}): {arguments[:60]!r}") from None
    return ToolCall(name, {} if arguments is None else arguments)


def _calls(data: Any) -> list[ToolCall]:
    if isinstance(data, dict) and isinstance(data.get("tool_calls"), list):
        data = data["tool_calls"]  # an OpenAI assistant message
    return [_call(item) for item in (data if isinstance(data, list) else [data])]


def _looks_like_calls(data: Any) -> bool:
    """A bare value is a call (or a list of calls) only with its name and arguments: {"name": "Ann", "age": 3} is not."""
    items = data.get("tool_calls") if isinstance(data, dict) and "tool_calls" in data else data
    items = items if isinstance(items, list) else [items]
    return bool(items) and all(isinstance(x, dict) and (isinstance(x.get("function"), dict) or (
        "name" in x and ("arguments" in x or "parameters" in x))) for x in items)


def _json_values(text: str) -> tuple[list[Any], list[Any]]:
    """JSON values the text may hold: the whole text or a ``` fence's body; and apart, the values that open at a { or [
    in the prose, one after the other (JSON lines, or a call after a sentence)."""
    whole = []
    for chunk in (text, *(m.group(1) for m in _FENCED.finditer(text))):
        try:
            whole.append(json.loads(chunk.strip()))
        except (json.JSONDecodeError, RecursionError):
            pass
    inline, decoder, end = [], json.JSONDecoder(), 0
    for start in (m.start() for m in re.finditer(r"[{\[]", text)):
        if start < end:
            continue  # inside a value already read
        try:
            value, end = decoder.raw_decode(text, start)
        except (json.JSONDecodeError, RecursionError):
            continue
        inline.append(value)
    return whole, inline


def parse_tool_calls(answer: str) -> list[ToolCall]:
    """The tool calls an answer makes, in order; empty when it makes none. Raises Unparseable for a call
    that cannot be read (a <tool_call> block that is not JSON, arguments that are not JSON)."""
    blocks = _TAGGED.findall(answer)
    if blocks:
        calls = []
        for block in blocks:
            text = block.strip()
            fenced = _FENCED.fullmatch(text)
            try:
                data = json.loads(fenced.group(1).strip() if fenced else text)
            except json.JSONDecodeError as exc:
                raise Unparseable(f"<tool_call> holds no JSON ({exc.msg} at char {exc.pos}): {text[:60]!r}") from None
            except RecursionError:
                raise Unparseable(f"<tool_call> holds JSON nested too deep to read: {text[:60]!r}") from None
            calls.extend(_calls(data))
        return calls
    whole, inline = _json_values(answer)
    for data in whole:
        if _looks_like_calls(data):
            return _calls(data)
    return [call for data in inline if _looks_like_calls(data) for call in _calls(data)]


def format_tool_calls(calls: list[Any]) -> str:
    """API tool calls (OpenAI `message.tool_calls`: dicts or SDK objects, each with `function.name` and
    `function.arguments`, a JSON string) as the text `parse_tool_calls` reads: one `<tool_call>{...}</tool_call>`
    per call, newline-separated. Arguments that are not JSON are kept as the string, so the scorer says so."""

    def get(obj: Any, key: str) -> Any:
        return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)

    lines = []
    for call in calls:
        function = get(call, "function") or call
        arguments = get(function, "arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError:
                pass
        body = {"name": get(function, "name"), "arguments": {} if arguments is None else arguments}
        lines.append(f"<tool_call>{json.dumps(body, ensure_ascii=False)}</tool_call>")
    return "\n".join(lines)


# --- comparing with what a case expects ----------------------------------------------------------

def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values: 1 == 1.0, but true is not 1 and "1" is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"


def _argument_problems(got: Any, wanted: dict[str, Any]) -> list[str]:
    if not isinstance(got, dict):
        return [f"arguments are {_show(got)}, expected an object"]
    problems = [f"argument {k}: missing, expected {_show(v)}" for k, v in wanted.items() if k not in got]
    problems += [f"argument {k}: {_show(got[k])}, expected {_show(v)}"
                 for k, v in wanted.items() if k in got and not _same(got[k], v)]
    problems += [f"argument {k}: {_show(got[k])}, not expected" for k in got if k not in wanted]
    return problems


def _mismatch(call: ToolCall, wanted: dict[str, Any], validators: dict[int, Any]) -> str | None:
    """Why a call is not the wanted one, or None when it is."""
    if call.name != wanted["name"]:
        return f"called {call.name}, expected {wanted['name']}"
    if "arguments" in wanted:
        problems = _argument_problems(call.arguments, wanted["arguments"])
        return "; ".join(problems) or None
    if "arguments_schema" in wanted:
        errors = sorted(validators[id(wanted)].iter_errors(call.arguments), key=lambda e: list(e.absolute_path))
        if errors:
            shown = "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:3])
            return f"arguments of {call.name} do not match the schema: {shown}"
    return None


def _pair(calls: list[ToolCall], wanted: list[dict[str, Any]], ordered: bool,
          validators: dict[int, Any]) -> tuple[int, list[str]]:
    """How many wanted calls the answer makes, and a reason for each it does not."""
    if ordered:
        reasons = [_mismatch(c, w, validators) for c, w in zip(calls, wanted)]
        return sum(r is None for r in reasons), [r for r in reasons if r is not None]
    # any order: the largest matching of calls to wanted ones (small n: augmenting paths)
    fits = [[j for j, c in enumerate(calls) if _mismatch(c, w, validators) is None] for w in wanted]
    owner: dict[int, int] = {}

    def place(i: int, seen: set[int]) -> bool:
        for j in fits[i]:
            if j not in seen:
                seen.add(j)
                if j not in owner or place(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    matched = sum(place(i, set()) for i in range(len(wanted)))
    placed, used = set(owner.values()), set(owner)
    reasons = []
    for i, w in enumerate(wanted):
        if i in placed:
            continue
        free = [c for j, c in enumerate(calls) if j not in used]
        same_name = [c for c in free if c.name == w["name"]]
        reasons.append(_mismatch(same_name[0], w, validators) if same_name
                       else f"called {', '.join(c.name for c in free)}, expected {w['name']}" if free
                       else f"no call of {w['name']}")
    return matched, [r for r in reasons if r]


def score_calls(answer: str, wanted: list[dict[str, Any]], ordered: bool, validators: dict[int, Any]) -> Score:
    try:
        calls = parse_tool_calls(answer)
    except Unparseable as exc:
        return Score(False, 0.0, f"unparseable tool call: {exc}", "tool_call")
    if not calls:
        return Score(False, 0.0, "no tool call in the answer", "tool_call")
    matched, reasons = _pair(calls, wanted, ordered, validators)
    if len(calls) != len(wanted):
        names = ", ".join(c.name for c in calls)
        reasons.insert(0, f"{len(calls)} tool calls ({names}), {len(wanted)} expected" if len(calls) > 1
                       else f"1 tool call ({names}), {len(wanted)} expected")
    ok = not reasons
    return Score(ok, matched / max(len(wanted), len(calls)), "; ".join(reasons), "tool_call")


# --- what a case may expect, checked when the suite loads ----------------------------------------

def _schema_problem(schema: Any) -> str | None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict):
        return f"arguments_schema must be a JSON schema (an object), got {schema!r}"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"arguments_schema is not a valid JSON schema: {exc.message}"
    return None


def spec_problems(expected: Any) -> list[str]:
    """What is wrong with a case's `expected` as a call or a list of calls; empty when it is right."""
    shape = ('{"name": "get_weather", "arguments": {"city": "Paris"}} (or "arguments_schema": {JSON schema} '
             'in place of "arguments"), or a list of them')
    items = expected if isinstance(expected, list) else [expected]
    if not items or not all(isinstance(x, dict) for x in items):
        return [f"`expected` must be a tool call {shape}; got {expected!r}"]
    problems = []
    for n, item in enumerate(items, 1):
        at = f"call {n}: " if len(items) > 1 else ""
        if unknown := sorted(set(item) - CALL_KEYS, key=str):
            problems.append(f"{at}unknown key(s) {', '.join(map(repr, unknown))}; a call has name, and arguments or "
                            "arguments_schema")
        if not isinstance(item.get("name"), str) or not item.get("name"):
            problems.append(f"{at}needs the tool's `name`, e.g. {shape}")
        if "arguments" in item and "arguments_schema" in item:
            problems.append(f"{at}give `arguments` (exact) or `arguments_schema`, not both")
        elif "arguments" in item and not isinstance(item["arguments"], dict):
            problems.append(f"{at}`arguments` must be an object of argument names to values, got {item['arguments']!r}")
        elif "arguments_schema" in item and (why := _schema_problem(item["arguments_schema"])):
            problems.append(at + why)
    return problems


def _where(case: Case) -> str:
    return f"case {case.id!r}" + (f" ({Path(case.file).name}:{case.line})" if case.file and case.line else "")


def _validators(wanted: list[dict[str, Any]]) -> dict[int, Any]:
    from jsonschema import Draft202012Validator

    return {id(w): Draft202012Validator(w["arguments_schema"]) for w in wanted if "arguments_schema" in w}


def tool_call_factory(args: Any, suite_dir: Path) -> Scorer:
    """The answer makes the tool call(s) in the case's `expected` (name, and exact arguments or an arguments
    schema), parsed from `<tool_call>` blocks, bare or fenced JSON, or the OpenAI shape; in any order unless `ordered`."""
    if args is None:
        opts: dict[str, Any] = {}
    elif isinstance(args, dict):
        opts = dict(args)
    else:
        raise ValueError(f"tool_call takes a mapping of options (ordered), got {args!r}; e.g. {{tool_call: {{ordered: true}}}}")
    if unknown := set(opts) - {"ordered"}:
        raise ValueError(f"tool_call has unknown option(s) {', '.join(sorted(map(str, unknown)))}; allowed: ordered")
    ordered = opts.get("ordered", False)
    if not isinstance(ordered, bool):
        raise ValueError(f"tool_call ordered must be true or false, got {ordered!r}")

    def score(case: Case, output: str) -> Score:
        problems = spec_problems(case.expected)
        if problems:  # a loaded suite never gets here: its cases were checked when it loaded (bind)
            return Score.unscored(f"{_where(case)}: {'; '.join(problems)}", "tool_call")
        wanted = case.expected if isinstance(case.expected, list) else [case.expected]
        return score_calls(output, wanted, ordered, _validators(wanted))

    def bind(ctx: SuiteContext) -> Scorer:
        bad = [f"{_where(case)}: {'; '.join(problems)}" for case in ctx.cases
               if case.expected not in (None, []) and (problems := spec_problems(case.expected))]
        if bad:
            shown = "\n    ".join(bad[:10]) + (f"\n    … and {len(bad) - 10} more" if len(bad) > 10 else "")
            raise ValueError(f"the tool_call scorer cannot check {len(bad)} case(s):\n    {shown}")
        return Scorer("tool_call", score, needs_expected=True)

    return Scorer("tool_call", score, needs_expected=True, bind=bind)


SCORERS = {"tool_call": tool_call_factory}
