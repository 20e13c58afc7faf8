"""Suite files: YAML + cases (inline or JSONL beside it), validated strictly with file:line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..cost.budgets import BUDGET_KEYS, budget_key
from ..errors import SuiteError
from ..files.jsonl import iter_jsonl
from ..files.paths import beside, is_under
from ..files.yamlio import line_of, load_yaml_with_lines
from ..kinds import feature_keys, get_feature, get_kind, kind_names
from ..scoring.scorers import Scorer, SuiteContext, build_scorer
from ..types import Case, GenerationParams, Message, Prompt, Sampling, Suite, content_hash  # noqa: F401  (Suite re-exported)

COMMON_KEYS = {"name", "kind", "description", "cases", "prompt", "generate", "scorers", "gate"}  # and each feature's key
PROMPT_KEYS = {"system", "few_shot"}
GENERATE_KEYS = {"max_new_tokens", "temperature", "top_p", "seed", "samples", "reduce"}
CASE_KEYS = {"id", "input", "messages", "expected", "tags", "reduce", "tools", "tool_choice"}
ROLES = {"system", "user", "assistant"}
MAX_SAMPLES = 100


YAML = (".yaml", ".yml")


def is_suite_file(path: Path, suites_dir: Path | None, *, named: bool = False) -> bool:
    """The one rule of what is a suite file, for `pytest` and `ftgate` alike: a YAML file named on its own,
    or under the project's suites directory; in any other directory, a YAML file whose top level says
    `kind:` a suite kind (a directory given may hold CI configs and other YAML too)."""
    if path.suffix not in YAML:
        return False
    return named or (suites_dir is not None and is_under(path, suites_dir)) or _says_a_kind(path)


def _says_a_kind(path: Path) -> bool:
    import re

    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:20000]
    except OSError:
        return False
    match = re.search(r"^kind:\s*['\"]?([\w-]+)", head, flags=re.MULTILINE)
    return match is not None and match.group(1) in kind_names()


def find_suite_files(paths: list[str] | list[Path], suites_dir: Path | None = None) -> list[Path]:
    """Suite files named directly or found (recursively) in directories (`is_suite_file`); an error when there
    are none. `suites_dir`: the project's suites directory."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and is_suite_file(f, suites_dir))
        elif p.exists():
            files.append(p)
        else:
            raise SuiteError("no such file or directory", p)
    if not files:
        where = ", ".join(map(str, paths)) or "(no paths given)"
        raise SuiteError(f"no suites found in {where}: a gate that checks nothing cannot promote. "
                         "Write a suite (NAME.yaml with kind:, cases:, scorers:) or point at the right directory")
    return files


class _Problems:
    """Every problem of one suite file, so `ftgate check` reports them all in one pass."""

    def __init__(self, path: Path, lines: dict[tuple[Any, ...], int]):
        self.path, self.lines, self.errors = path, lines, []

    def add(self, message: str, *where: Any) -> None:
        self.errors.append(SuiteError(message, self.path, line_of(self.lines, *where)))

    def extend(self, errors: list[SuiteError]) -> None:
        self.errors.extend(errors)

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            error = SuiteError(f"{len(self.errors)} problems:\n" + "\n".join(f"  {e}" for e in self.errors), self.path)
            error.problems = list(self.errors)
            raise error


def load_suite(path: str | Path) -> Suite:
    """Load and validate one suite file. Raises SuiteError naming the file and line of every problem."""
    path = Path(path)
    data, lines = load_yaml_with_lines(path)
    problems = _Problems(path, lines)
    if not isinstance(data, dict):
        raise SuiteError("a suite file is a YAML mapping with at least `kind:`, `cases:` and `scorers:`", path, 1)

    kind_name = data.get("kind")
    kind = None
    if "kind" not in data:
        problems.add(f"missing required key `kind:`; one of {', '.join(kind_names())}")
    elif not isinstance(kind_name, str) or kind_name not in kind_names():
        problems.add(f"kind must be one of {', '.join(kind_names())}, got {kind_name!r}", "kind")
    else:
        kind = get_kind(kind_name)
    common = COMMON_KEYS | set(feature_keys())
    allowed = common | {k.name for k in kind.suite_keys} if kind else common
    for key in sorted(set(data) - allowed, key=str):
        problems.add(f"unknown key {key!r}; a {kind_name or ''} suite may have: {', '.join(sorted(allowed))}", key)
    needs_scorers = kind.requires_scorers if kind else True
    for required in ("cases", "scorers") if needs_scorers else ("cases",):
        if required not in data:
            problems.add(f"missing required key `{required}:`")

    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        problems.add("name must be a non-empty string", "name")

    cases: tuple[Case, ...] = ()
    if "cases" in data:
        cases, case_errors = _load_cases(data["cases"], path, lines, kind.case_keys if kind else ())
        problems.extend(case_errors)
        if not cases and not case_errors:
            problems.add("the suite has no cases", "cases")

    prompts = _collect(problems, lambda fail: _load_prompts(data.get("prompt"), fail), {"baseline": Prompt(), "candidate": Prompt()})
    params = _collect(problems, lambda fail: _load_params(data.get("generate"), fail), GenerationParams())
    sampling = _collect(problems, lambda fail: _load_sampling(data.get("generate"), fail), Sampling())
    scorers = _load_scorers(data.get("scorers"), path, problems) if "scorers" in data else []
    if kind is not None and kind.sampled and sampling.samples > 1:
        problems.add(f"generate.samples: a {kind.name} suite generates one answer per case ({kind.sampled})",
                     "generate", "samples")
    if sampling.samples == 1:
        for case in cases:
            if case.reduce is not None:
                problems.errors.append(SuiteError(
                    f"case {case.id!r} sets `reduce` but the suite generates one sample per case; set "
                    "generate.samples (e.g. 5) or drop `reduce`", case.file or path, case.line))
    for scorer in scorers:
        if scorer.needs_expected:
            for case in cases:
                if case.expected is None or case.expected == []:
                    problems.errors.append(SuiteError(
                        f"case {case.id!r} has no `expected`, which the {scorer.name} scorer needs; add one, "
                        "or use a scorer that does not compare with an expected value", case.file or path, case.line))

    features: dict[str, Any] = {}
    raw_scorers = data.get("scorers")  # a feature checks them only when they all loaded
    complete = (raw_scorers is None and not needs_scorers) or (isinstance(raw_scorers, list) and len(scorers) == len(raw_scorers))
    for key in feature_keys():
        if key in data and get_feature(key).sampled and sampling.samples > 1:
            problems.add(f"{key}: not on a sampled suite ({get_feature(key).sampled})", key)
        if key in data:
            features[key], feature_problems = get_feature(key).parse(data[key], scorers if complete else None)
            for message, where in feature_problems:
                problems.add(message, key, *where)

    gate = data.get("gate") or {}
    if not isinstance(gate, dict):
        problems.add("gate must be a mapping, e.g. `gate: {max_regression: 0.05}`", "gate")
        gate = {}
    options: dict[str, Any] = {}
    if kind is not None:
        for key, value in gate.items():
            spec = kind.gate_key(key) or budget_key(key)
            if spec is None:
                allowed_gate = ", ".join(k.name for k in (*kind.gate_keys, *BUDGET_KEYS))
                problems.add(f"gate key {key!r} does not apply to a {kind.name} suite; allowed: {allowed_gate}", "gate", key)
            elif (problem := spec.check(value)) is not None:
                problems.add(f"gate {key} {problem}", "gate", key)
        key_problems = len(problems.errors)
        for spec in kind.suite_keys:
            try:
                options[spec.name] = spec.parse(data.get(spec.name), path)
            except ValueError as exc:
                problems.add(str(exc), spec.name)
        if kind.check is not None:
            for message, where in kind.check(data):
                problems.add(message, *where)
        _bind_scorers(scorers, SuiteContext(options, _systems(prompts), cases,
                                                {role: p.system or "" for role, p in prompts.items()}), problems,
                      skip=len(problems.errors) > key_problems)
    problems.raise_if_any()
    return Suite(
        name=name,
        kind=kind_name,
        path=path,
        cases=cases,
        prompts=prompts,
        params=params,
        scorers=tuple(scorers),
        gate=dict(gate),
        options=options,
        description=str(data.get("description", "")),
        features={k: v for k, v in features.items() if v is not None},
        lines=lines,
        scorer_specs=tuple(data.get("scorers") or ()),
        sampling=sampling,
    )


def _systems(prompts: dict[str, Prompt]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.system for p in prompts.values() if p.system))


def _bind_scorers(scorers: list[Scorer], context: SuiteContext, problems: _Problems, skip: bool) -> None:
    """Scorers that read their suite (a canary, the system prompt) see it now; not when its own keys are wrong."""
    for i, scorer in enumerate(scorers):
        if scorer.bind is not None and not skip:
            try:
                scorers[i] = scorer.bind(context)
            except ValueError as exc:
                problems.add(str(exc), "scorers", i)


def _collect(problems: _Problems, load: Any, fallback: Any) -> Any:
    """Run a section loader that raises on its first problem; record the problem and go on."""

    def fail(message: str, *where: Any) -> SuiteError:
        return SuiteError(message, problems.path, line_of(problems.lines, *where))

    try:
        return load(fail)
    except SuiteError as exc:
        problems.errors.append(exc)
        return fallback


def _load_scorers(raw: Any, path: Path, problems: _Problems) -> list[Scorer]:
    if not isinstance(raw, list) or not raw:
        problems.add("scorers must be a non-empty list, e.g. `scorers: [exact]`", "scorers")
        return []
    scorers = []
    for i, spec in enumerate(raw):
        try:
            scorers.append(build_scorer(spec, path.parent))
        except ValueError as exc:
            problems.add(str(exc), "scorers", i)
    return scorers


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


def _load_sampling(raw: Any, fail: Any) -> Sampling:
    if not isinstance(raw, dict):
        return Sampling()  # _load_params says what is wrong with it
    samples = raw.get("samples", 1)
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= MAX_SAMPLES:
        raise fail(f"samples must be an integer from 1 to {MAX_SAMPLES} (each case is generated that many times), "
                   f"got {samples!r}", "generate", "samples")
    reduce = raw.get("reduce", "mean")
    if reduce not in Sampling.REDUCERS:
        raise fail(f"reduce must be one of {', '.join(Sampling.REDUCERS)}, got {reduce!r}", "generate", "reduce")
    if "reduce" in raw and samples == 1:
        raise fail("reduce: with one sample per case there is nothing to reduce; set generate.samples (e.g. 5)",
                   "generate", "reduce")
    return Sampling(samples, reduce)


def _load_cases(raw: Any, suite_path: Path, lines: dict[tuple[Any, ...], int],
                extra_keys: tuple[str, ...] = ()) -> tuple[tuple[Case, ...], list[SuiteError]]:
    """The valid cases, and an error for every bad one (file:line each)."""
    errors: list[SuiteError] = []
    items: list[tuple[Any, Path, int | None]] = []
    if isinstance(raw, str):
        try:
            cases_path = beside(suite_path.parent, raw, "cases file")
        except SuiteError as exc:
            return (), [SuiteError(exc.reason, suite_path, line_of(lines, "cases"))]
        if not cases_path.is_file():
            return (), [SuiteError(
                f"cases file {raw!r} not found (looked for {cases_path}); cases may be a JSONL file "
                "beside the suite or an inline list", suite_path, line_of(lines, "cases"))]
        for line in iter_jsonl(cases_path):
            if line.error:
                errors.append(SuiteError(
                    f"{line.error}; each line is one case like "
                    '{"id": "t-001", "input": "text", "expected": "..."}', cases_path, line.number))
            else:
                items.append((line.value, cases_path, line.number))
    elif isinstance(raw, list):
        items = [(item, suite_path, line_of(lines, "cases", i)) for i, item in enumerate(raw)]
    else:
        return (), [SuiteError("cases must be a JSONL file name or a list", suite_path, line_of(lines, "cases"))]

    cases: list[Case] = []
    seen: dict[str, int | None] = {}
    for item, where, lineno in items:
        try:
            case = _parse_case(item, where, lineno, extra_keys)
        except SuiteError as exc:
            errors.append(exc)
            continue
        if case.id in seen:
            errors.append(SuiteError(
                f"duplicate case id {case.id!r} (first at line {seen[case.id]}); ids must be unique", where, lineno))
            continue
        seen[case.id] = lineno
        cases.append(case)
    return tuple(cases), errors


def _parse_case(item: Any, where: Path, lineno: int | None, extra_keys: tuple[str, ...] = ()) -> Case:
    def fail(message: str) -> SuiteError:
        return SuiteError(message, where, lineno)

    if not isinstance(item, dict):
        raise fail("a case is an object with `input` (text) or `messages` (a chat)")
    allowed = CASE_KEYS | set(extra_keys)
    unknown = set(item) - allowed
    if unknown:
        raise fail(f"unknown case key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")
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
    reduce = item.get("reduce")
    if reduce is not None and reduce not in Sampling.REDUCERS:
        raise fail(f"`reduce` must be one of {', '.join(Sampling.REDUCERS)}, got {reduce!r}")
    tools = item.get("tools", [])
    if not isinstance(tools, list) or not all(_is_tool(t) for t in tools):
        raise fail('`tools` must be a list of OpenAI function schemas: {"type": "function", "function": {"name": '
                   '"get_weather", "description": "...", "parameters": {JSON schema}}}')
    tool_choice = item.get("tool_choice")
    if tool_choice is not None:
        names = [t["function"]["name"] for t in tools]
        named = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else None
        if not tools:
            raise fail("`tool_choice` needs `tools` on the same case")
        if tool_choice not in ("auto", "required", "none") and named not in names:
            raise fail(f'`tool_choice` must be "auto", "required", "none" or {{"type": "function", "function": {{"name": '
                       f'NAME}}}} naming one of the case\'s tools ({", ".join(names)}), got {tool_choice!r}')
    case_id = item.get("id")
    if case_id is None:
        case_id = content_hash({"messages": list(messages), "expected": expected}, 12)
    elif not isinstance(case_id, (str, int)) or isinstance(case_id, bool):
        raise fail(f"`id` must be a string, got {case_id!r}")
    return Case(id=str(case_id), messages=messages, expected=expected, tags=tuple(tags), line=lineno, file=where,
                extra={k: item[k] for k in extra_keys if k in item}, reduce=reduce, tools=tuple(tools),
                tool_choice=tool_choice)


def _is_tool(tool: Any) -> bool:
    fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    return (isinstance(fn, dict) and isinstance(fn.get("name"), str) and bool(fn["name"])
            and isinstance(fn.get("parameters", {}), dict))
