"""Suite files: YAML + cases (inline or JSONL beside it), validated strictly with file:line errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SuiteError
from .scorers import Scorer, build_scorer
from .types import Case, GenerationParams, Message, SuiteKind, content_hash
from .yamlio import line_of, load_yaml_with_lines

KINDS: tuple[str, ...] = ("format", "golden", "task", "adversarial")
SUITE_KEYS = {"name", "kind", "description", "cases", "prompt", "generate", "scorers", "gate", "goldens"}
PROMPT_KEYS = {"system", "few_shot"}
GENERATE_KEYS = {"max_new_tokens", "temperature", "top_p", "seed"}
CASE_KEYS = {"id", "input", "messages", "expected", "tags"}
GATE_KEYS: dict[str, set[str]] = {
    "format": {"min_pass_rate"},
    "golden": {"max_regression", "confidence", "inconclusive"},
    "task": {"min_accuracy", "not_below_baseline", "min_gain"},
    "adversarial": {"min_pass_rate", "not_below_baseline"},
}
ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True)
class Prompt:
    """How a case becomes a chat: a system prompt and few-shot turns placed before the case."""

    system: str | None = None
    few_shot: tuple[tuple[str, str], ...] = ()

    def render(self, case: Case) -> tuple[Message, ...]:
        messages: list[Message] = []
        has_system = bool(case.messages) and case.messages[0]["role"] == "system"
        if self.system and not has_system:
            messages.append({"role": "system", "content": self.system})
        for user, assistant in self.few_shot:
            messages.append({"role": "user", "content": user})
            messages.append({"role": "assistant", "content": assistant})
        messages.extend(case.messages)
        return tuple(messages)


@dataclass(frozen=True)
class Suite:
    """A validated suite: cases, per-subject prompts, decoding params, scorers, gate settings."""

    name: str
    kind: SuiteKind
    path: Path
    cases: tuple[Case, ...]
    prompts: dict[str, Prompt]  # "baseline" and "candidate"
    params: GenerationParams
    scorers: tuple[Scorer, ...]
    gate: dict[str, Any]
    goldens_path: Path
    description: str = ""
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def hash(self) -> str:
        return content_hash(
            {
                "cases": [[c.id, c.content_hash] for c in self.cases],
                "prompts": {k: [v.system, list(v.few_shot)] for k, v in self.prompts.items()},
                "params": self.params.as_dict(),
                "scorers": [s.name for s in self.scorers],
            }
        )

    @property
    def labels(self) -> tuple[str, ...] | None:
        for s in self.scorers:
            if s.labels:
                return s.labels
        return None


def find_suite_files(paths: list[str]) -> list[Path]:
    """Suite files named directly or found (recursively) in directories."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix in (".yaml", ".yml"))
        elif p.exists():
            files.append(p)
        else:
            raise SuiteError("no such file or directory", p)
    return files


def load_suite(path: str | Path) -> Suite:
    """Load and validate one suite file. Raises SuiteError naming the file and line."""
    path = Path(path)
    data, lines = load_yaml_with_lines(path)

    def fail(message: str, *where: Any) -> SuiteError:
        return SuiteError(message, path, line_of(lines, *where))

    if not isinstance(data, dict):
        raise fail("a suite file is a YAML mapping with at least `kind:`, `cases:` and `scorers:`")
    unknown = set(data) - SUITE_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise fail(f"unknown key {key!r}; a suite may have: {', '.join(sorted(SUITE_KEYS))}", key)
    for required in ("kind", "cases", "scorers"):
        if required not in data:
            raise fail(f"missing required key `{required}:`")

    kind = data["kind"]
    if kind not in KINDS:
        raise fail(f"kind must be one of {', '.join(KINDS)}, got {kind!r}", "kind")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise fail("name must be a non-empty string", "name")

    cases = _load_cases(data["cases"], path, lines)
    if not cases:
        raise fail("the suite has no cases", "cases")

    prompts = _load_prompts(data.get("prompt"), fail)
    params = _load_params(data.get("generate"), fail)

    if not isinstance(data["scorers"], list) or not data["scorers"]:
        raise fail("scorers must be a non-empty list, e.g. `scorers: [exact]`", "scorers")
    scorers = []
    for i, spec in enumerate(data["scorers"]):
        try:
            scorers.append(build_scorer(spec, path.parent))
        except ValueError as exc:
            raise fail(str(exc), "scorers", i) from None

    gate = data.get("gate") or {}
    if not isinstance(gate, dict):
        raise fail("gate must be a mapping, e.g. `gate: {max_regression: 0.05}`", "gate")
    bad = set(gate) - GATE_KEYS[kind]
    if bad:
        key = sorted(bad)[0]
        raise fail(
            f"gate key {key!r} does not apply to a {kind} suite; allowed: {', '.join(sorted(GATE_KEYS[kind]))}",
            "gate",
            key,
        )
    for key, value in gate.items():
        _check_gate_value(key, value, fail)

    goldens = data.get("goldens", f"{path.stem}.goldens.json")
    return Suite(
        name=name,
        kind=kind,
        path=path,
        cases=cases,
        prompts=prompts,
        params=params,
        scorers=tuple(scorers),
        gate=dict(gate),
        goldens_path=path.parent / str(goldens),
        description=str(data.get("description", "")),
        lines=lines,
    )


def _check_gate_value(key: str, value: Any, fail: Any) -> None:
    if key in ("min_pass_rate", "max_regression", "min_accuracy", "confidence"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise fail(f"gate {key} must be a fraction between 0 and 1 (0.05 for 5%), got {value!r}", "gate", key)
        if key == "confidence" and not 0.5 <= value < 1:
            raise fail(f"gate confidence must be in [0.5, 1), e.g. 0.95, got {value!r}", "gate", key)
    elif key == "min_gain" and (isinstance(value, bool) or not isinstance(value, (int, float)) or not -1 <= value <= 1):
        raise fail(f"gate min_gain must be a fraction between -1 and 1 (0.05 = five points above the baseline), got {value!r}", "gate", key)
    elif key == "not_below_baseline" and not isinstance(value, bool):
        raise fail(f"gate not_below_baseline must be true or false, got {value!r}", "gate", key)
    elif key == "inconclusive" and value not in ("block", "pass"):
        raise fail(f"gate inconclusive must be `block` or `pass`, got {value!r}", "gate", key)


def _load_prompts(raw: Any, fail: Any) -> dict[str, Prompt]:
    if raw is None:
        return {"baseline": Prompt(), "candidate": Prompt()}
    if not isinstance(raw, dict):
        raise fail("prompt must be a mapping with `system:` and/or `few_shot:`", "prompt")
    unknown = set(raw) - PROMPT_KEYS - {"baseline", "candidate"}
    if unknown:
        key = sorted(unknown)[0]
        raise fail(f"unknown prompt key {key!r}; allowed: system, few_shot, baseline, candidate", "prompt", key)
    shared = _one_prompt({k: raw[k] for k in PROMPT_KEYS if k in raw}, fail, ("prompt",))
    prompts = {}
    for role in ("baseline", "candidate"):
        if role in raw:
            if not isinstance(raw[role], dict) or set(raw[role]) - PROMPT_KEYS:
                raise fail(f"prompt.{role} must be a mapping with `system:` and/or `few_shot:`", "prompt", role)
            own = _one_prompt(raw[role], fail, ("prompt", role))
            prompts[role] = Prompt(
                system=own.system if "system" in raw[role] else shared.system,
                few_shot=own.few_shot if "few_shot" in raw[role] else shared.few_shot,
            )
        else:
            prompts[role] = shared
    return prompts


def _one_prompt(raw: dict[str, Any], fail: Any, where: tuple[Any, ...]) -> Prompt:
    system = raw.get("system")
    if system is not None and not isinstance(system, str):
        raise fail("prompt system must be a string", *where, "system")
    shots = raw.get("few_shot") or []
    if not isinstance(shots, list):
        raise fail("few_shot must be a list of {user: ..., assistant: ...}", *where, "few_shot")
    pairs = []
    for i, shot in enumerate(shots):
        if not isinstance(shot, dict) or set(shot) != {"user", "assistant"}:
            raise fail("each few_shot item needs exactly `user:` and `assistant:`", *where, "few_shot", i)
        pairs.append((str(shot["user"]), str(shot["assistant"])))
    return Prompt(system=system, few_shot=tuple(pairs))


def _load_params(raw: Any, fail: Any) -> GenerationParams:
    if raw is None:
        return GenerationParams()
    if not isinstance(raw, dict):
        raise fail("generate must be a mapping, e.g. {max_new_tokens: 64}", "generate")
    unknown = set(raw) - GENERATE_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise fail(f"unknown generate key {key!r}; allowed: {', '.join(sorted(GENERATE_KEYS))}", "generate", key)
    mnt = raw.get("max_new_tokens", 64)
    if isinstance(mnt, bool) or not isinstance(mnt, int) or mnt < 1:
        raise fail(f"max_new_tokens must be a positive integer, got {mnt!r}", "generate", "max_new_tokens")
    temperature = raw.get("temperature", 0.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature < 0:
        raise fail(f"temperature must be a number >= 0 (0 is greedy), got {temperature!r}", "generate", "temperature")
    top_p = raw.get("top_p", 1.0)
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise fail(f"top_p must be in (0, 1], got {top_p!r}", "generate", "top_p")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise fail(f"seed must be an integer, got {seed!r}", "generate", "seed")
    return GenerationParams(max_new_tokens=mnt, temperature=float(temperature), top_p=float(top_p), seed=seed)


def _load_cases(raw: Any, suite_path: Path, lines: dict[tuple[Any, ...], int]) -> tuple[Case, ...]:
    if isinstance(raw, str):
        cases_path = suite_path.parent / raw
        if not cases_path.is_file():
            raise SuiteError(
                f"cases file {raw!r} not found (looked for {cases_path}); cases may be a JSONL file "
                "beside the suite or an inline list",
                suite_path,
                line_of(lines, "cases"),
            )
        items = []
        with cases_path.open(encoding="utf-8") as fh:
            for lineno, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                try:
                    items.append((json.loads(text), cases_path, lineno))
                except json.JSONDecodeError as exc:
                    raise SuiteError(
                        f"not a JSON object ({exc.msg} at column {exc.colno}); each line is one case like "
                        '{"id": "t-001", "input": "text", "expected": "..."}',
                        cases_path,
                        lineno,
                    ) from None
    elif isinstance(raw, list):
        items = [(item, suite_path, line_of(lines, "cases", i)) for i, item in enumerate(raw)]
    else:
        raise SuiteError("cases must be a JSONL file name or a list", suite_path, line_of(lines, "cases"))

    cases: list[Case] = []
    seen: dict[str, int | None] = {}
    for item, where, lineno in items:
        case = _parse_case(item, where, lineno)
        if case.id in seen:
            raise SuiteError(
                f"duplicate case id {case.id!r} (first at line {seen[case.id]}); ids must be unique",
                where,
                lineno,
            )
        seen[case.id] = lineno
        cases.append(case)
    return tuple(cases)


def _parse_case(item: Any, where: Path, lineno: int | None) -> Case:
    def fail(message: str) -> SuiteError:
        return SuiteError(message, where, lineno)

    if not isinstance(item, dict):
        raise fail("a case is an object with `input` (text) or `messages` (a chat)")
    unknown = set(item) - CASE_KEYS
    if unknown:
        raise fail(f"unknown case key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(CASE_KEYS))}")
    if ("input" in item) == ("messages" in item):
        raise fail("a case needs exactly one of `input` (text) or `messages` (a list of {role, content})")
    if "input" in item:
        if not isinstance(item["input"], str):
            raise fail("`input` must be a string")
        messages: tuple[Message, ...] = ({"role": "user", "content": item["input"]},)
    else:
        msgs = item["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise fail("`messages` must be a non-empty list of {role, content}")
        for m in msgs:
            if not isinstance(m, dict) or set(m) != {"role", "content"} or m["role"] not in ROLES:
                raise fail(f"each message needs `role` (system, user or assistant) and `content`, got {m!r}")
            if not isinstance(m["content"], str):
                raise fail("message content must be a string")
        if msgs[-1]["role"] != "user":
            raise fail("the last message of a case must be the user's turn")
        messages = tuple({"role": m["role"], "content": m["content"]} for m in msgs)
    tags = item.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise fail("`tags` must be a list of strings")
    expected = item.get("expected")
    case_id = item.get("id")
    if case_id is None:
        case_id = content_hash({"messages": list(messages), "expected": expected}, 12)
    elif not isinstance(case_id, (str, int)) or isinstance(case_id, bool):
        raise fail(f"`id` must be a string, got {case_id!r}")
    return Case(id=str(case_id), messages=messages, expected=expected, tags=tuple(tags), line=lineno)
