"""The `instructions` scorer: verifiable instructions, checked in code (in the manner of IFEval).

A case's `expected` is a mapping of checks to their argument; every check must be met:

    {"max_words": 15}                      at most N words           {"min_words": N}       at least N words
    {"max_sentences": 2}                   at most N sentences
    {"lowercase": true}                    no capital letter         {"uppercase": true}    no small letter
    {"include": ["Paris"]}                 each word or phrase said  {"avoid": ["sorry"]}   none of them said
    {"bullets": 3}                         exactly N markdown bullet points (lines opening with -, * or +)
    {"json_keys": ["name", "age"]}         the answer is a JSON object with exactly these keys
    {"starts_with": "Yes"}                 {"ends_with": "Any other questions?"}
    {"number": 42}                         the answer's last number, in digits, is 42

The value is the share of checks met; the detail names each failed check and what the answer did.
A case whose `expected` is not such a mapping is refused when the suite loads, naming the case.

This module imports nothing of the registry (scorers.py registers what `SCORERS` declares), so the
two never import each other.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..types import Case, Score, Scorer, SuiteContext

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")  # "don't" and "well-known" are one word each; a bullet's "-" none
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
_BULLET = re.compile(r"^\s*[-*+•]\s+\S", re.MULTILINE)
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_FENCE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?```$", re.DOTALL)


def _fold(text: str) -> str:
    """Case-folded, NFKC, punctuation as spaces: "Paris," contains the word "paris"."""
    text = re.sub(r"[^\w\s]", " ", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(text.split())


def _says(answer: str, phrase: str) -> bool:
    """Whether the answer says the word or phrase, whole words only, in any case: "cat" is not in "category"."""
    return f" {_fold(phrase)} " in f" {_fold(answer)} "


def _quoted(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else "…" + text[-limit:])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# --- what each check's argument must be: None when it is right, else what is wrong ---------------

def _positive_int(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return None if ok else f"takes a whole number of 1 or more, got {value!r}"


def _true(value: Any) -> str | None:
    return None if value is True else f"takes `true` (leave the check out to not ask for it), got {value!r}"


def _phrases(value: Any) -> str | None:
    items = [value] if isinstance(value, str) else value
    ok = isinstance(items, list) and items and all(isinstance(x, str) and _fold(x) for x in items)
    return None if ok else f"takes a word or phrase, or a non-empty list of them, e.g. [\"Paris\"], got {value!r}"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else f"takes a non-empty text, got {value!r}"


def _keys(value: Any) -> str | None:
    ok = (isinstance(value, list) and value and all(isinstance(x, str) and x for x in value)
          and len(set(value)) == len(value))
    return None if ok else f"takes a non-empty list of distinct key names, e.g. [\"name\", \"age\"], got {value!r}"


def _a_number(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return None if ok else f"takes a number, e.g. 42, got {value!r}"


# --- the checks: None when the answer meets it, else what the answer did -------------------------

def words(answer: str) -> list[str]:
    return _WORD.findall(answer)


def sentences(answer: str) -> int:
    """Runs of text ending in . ! or ? (or at the end) that hold a word; "3.5" does not end one."""
    return sum(1 for part in _SENTENCE_END.split(answer) if _WORD.search(part))


def _max_words(answer: str, n: int) -> str | None:
    found = len(words(answer))
    return None if found <= n else f"{_count(found, 'word')}, at most {n} asked"


def _min_words(answer: str, n: int) -> str | None:
    found = len(words(answer))
    return None if found >= n else f"{_count(found, 'word')}, at least {n} asked"


def _max_sentences(answer: str, n: int) -> str | None:
    found = sentences(answer)
    return None if found <= n else f"{_count(found, 'sentence')}, at most {n} asked"


def _lowercase(answer: str, _: bool) -> str | None:
    if not any(ch.isalpha() for ch in answer):
        return "no letters, all lowercase asked"
    wrong = [w for w in words(answer) if w != w.lower()]
    return None if not wrong else f"capital letters in {', '.join(map(repr, wrong[:3]))}, all lowercase asked"


def _uppercase(answer: str, _: bool) -> str | None:
    if not any(ch.isalpha() for ch in answer):
        return "no letters, all uppercase asked"
    wrong = [w for w in words(answer) if w != w.upper()]
    return None if not wrong else f"small letters in {', '.join(map(repr, wrong[:3]))}, all uppercase asked"


def _include(answer: str, phrases: str | list[str]) -> str | None:
    missing = [p for p in ([phrases] if isinstance(phrases, str) else phrases) if not _says(answer, p)]
    return None if not missing else f"does not say {', '.join(map(repr, missing))}"


def _avoid(answer: str, phrases: str | list[str]) -> str | None:
    said = [p for p in ([phrases] if isinstance(phrases, str) else phrases) if _says(answer, p)]
    return None if not said else f"says {', '.join(map(repr, said))}, which it should avoid"


def _bullets(answer: str, n: int) -> str | None:
    found = len(_BULLET.findall(answer))
    if found == n:
        return None
    return f"{'no bullet points' if not found else _count(found, 'bullet point')}, {n} asked"


def json_object(answer: str) -> tuple[dict[str, Any] | None, str]:
    """The answer as one JSON object: the whole answer, or the whole answer inside a ``` fence (no prose around)."""
    text = answer.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deep"
        return None, f"not a JSON object ({reason}): {_quoted(answer)}"
    if not isinstance(data, dict):
        return None, f"JSON, but a {type(data).__name__}, not an object"
    return data, ""


def _json_keys(answer: str, keys: list[str]) -> str | None:
    data, why = json_object(answer)
    if data is None:
        return why
    missing = [k for k in keys if k not in data]
    extra = [k for k in data if k not in keys]
    if not missing and not extra:
        return None
    parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
        [f"extra {', '.join(map(repr, extra))}"] if extra else [])
    return f"JSON keys {sorted(data)}, {sorted(keys)} asked: {'; '.join(parts)}"


def _starts_with(answer: str, phrase: str) -> str | None:
    text = answer.strip().strip("\"'“”")
    ok = text.casefold().startswith(phrase.strip().casefold())
    return None if ok else f"starts with {_quoted(text[:len(phrase) + 10])}, not {phrase!r}"


def _ends_with(answer: str, phrase: str) -> str | None:
    text = answer.strip().strip("\"'“”")
    ok = text.casefold().endswith(phrase.strip().casefold())
    return None if ok else f"ends with {_quoted(text[-(len(phrase) + 10):])}, not {phrase!r}"


def last_number(answer: str) -> float | None:
    found = _NUMBER.findall(answer)
    return float(found[-1].replace(",", "")) if found else None


def _number(answer: str, wanted: float) -> str | None:
    got = last_number(answer)
    if got is None:
        return f"no number, {wanted:g} asked"
    return None if abs(got - wanted) <= 1e-9 * max(1.0, abs(wanted)) else f"last number {got:g}, {wanted:g} asked"


@dataclass(frozen=True)
class Check:
    """One verifiable instruction: what its argument must be, and whether an answer meets it."""

    name: str
    problem: Callable[[Any], str | None]  # the argument -> what is wrong with it, or None
    fails: Callable[[str, Any], str | None]  # (answer, argument) -> what the answer did instead, or None
    example: str


CHECKS: dict[str, Check] = {c.name: c for c in (
    Check("max_words", _positive_int, _max_words, "{max_words: 20}"),
    Check("min_words", _positive_int, _min_words, "{min_words: 5}"),
    Check("max_sentences", _positive_int, _max_sentences, "{max_sentences: 2}"),
    Check("lowercase", _true, _lowercase, "{lowercase: true}"),
    Check("uppercase", _true, _uppercase, "{uppercase: true}"),
    Check("include", _phrases, _include, "{include: [Paris]}"),
    Check("avoid", _phrases, _avoid, "{avoid: [sorry]}"),
    Check("bullets", _positive_int, _bullets, "{bullets: 3}"),
    Check("json_keys", _keys, _json_keys, "{json_keys: [name, age]}"),
    Check("starts_with", _text, _starts_with, "{starts_with: 'Yes'}"),
    Check("ends_with", _text, _ends_with, "{ends_with: 'Any other questions?'}"),
    Check("number", _a_number, _number, "{number: 42}"),
)}


def spec_problems(expected: Any) -> list[str]:
    """What is wrong with a case's `expected` as a mapping of checks; empty when it is right."""
    if not isinstance(expected, dict) or not expected:
        return [(f"`expected` must be a mapping of checks to their argument, e.g. {{max_words: 20, lowercase: true}}; "
                 f"got {expected!r}. Checks: {', '.join(CHECKS)}")]
    problems = []
    for name, arg in expected.items():
        check = CHECKS.get(name)
        if check is None:
            problems.append(f"unknown check {name!r}; the checks are {', '.join(CHECKS)}")
        elif (why := check.problem(arg)) is not None:
            problems.append(f"{name} {why}, as in {check.example}")
    if expected.get("lowercase") is True and expected.get("uppercase") is True:
        problems.append("lowercase and uppercase together cannot both be met: keep one")
    low, high = expected.get("min_words"), expected.get("max_words")
    if _positive_int(low) is None and _positive_int(high) is None and low > high:
        problems.append(f"min_words {low} is above max_words {high}: no answer meets both")
    return problems


def check_answer(expected: dict[str, Any], answer: str) -> Score:
    """Every check of a valid spec against one answer."""
    if not answer.strip():
        return Score(False, 0.0, "empty answer: saying nothing meets no instruction", "instructions")
    failed = [f"{name}: {why}" for name, arg in expected.items() if (why := CHECKS[name].fails(answer, arg)) is not None]
    met = len(expected) - len(failed)
    return Score(not failed, met / len(expected), "; ".join(failed), "instructions")


def _where(case: Case) -> str:
    if case.file is None or case.line is None:
        return f"case {case.id!r}"
    return f"case {case.id!r} ({Path(case.file).name}:{case.line})"


def _score(case: Case, output: str) -> Score:
    problems = spec_problems(case.expected)
    if problems:  # a loaded suite never gets here: its cases were checked when it loaded (_bind)
        return Score.unscored(f"{_where(case)}: {'; '.join(problems)}", "instructions")
    return check_answer(case.expected, output)


def _bind(ctx: SuiteContext) -> Scorer:
    """Refuse the suite when a case's `expected` is not a valid mapping of checks, naming every such case."""
    bad = [f"{_where(case)}: {'; '.join(problems)}" for case in ctx.cases
           if case.expected not in (None, []) and (problems := spec_problems(case.expected))]  # no expected: said apart
    if bad:
        shown = "\n    ".join(bad[:10]) + (f"\n    … and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise ValueError(f"the instructions scorer cannot check {_count(len(bad), 'case')}:\n    {shown}")
    return Scorer("instructions", _score, needs_expected=True)


def instructions_factory(args: Any, suite_dir: Path) -> Scorer:
    """The answer meets every verifiable instruction in the case's `expected` (max_words, lowercase, include,
    bullets, json_keys, ends_with, number, ...); the value is the share met."""
    if args is not None:
        raise ValueError(f"instructions takes no options (each case's `expected` says what to check), got {args!r}; "
                         "write `scorers: [instructions]`")
    return Scorer("instructions", _score, needs_expected=True, bind=_bind)


SCORERS = {"instructions": instructions_factory}
