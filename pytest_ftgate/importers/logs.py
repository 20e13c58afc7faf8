"""Production logs in: `ftgate logs import LOGS --format openai|generic --out DIR`.

    openai   {"request": {"messages": [...]}, "response": {"choices": [{"message": {"content": ...}}],
              "usage": {...}}, optional "id", "latency_s" | "latency_ms", "feedback", "timestamp"}
             (as logging proxies write chat-completions pairs; "request_body"/"response_body" also read)
    generic  {"input": text | messages, "output": text, optional "id", "confidence" | "logprob",
              "feedback" (up | down, or {"correction": text}), "correction", "latency_s",
              "tokens_in", "tokens_out", "timestamp"}

The logs are checked as `ftgate data check` checks training data: a malformed line is named by
file:line and rejected (the import goes on), an exact duplicate input is dropped, and a row with
PII is rejected; rejected rows go to DIR/rejected.jsonl with their reasons. Written to DIR:

    production.jsonl   production's outputs, an outputs subject with the logged latency and tokens
    shadow.yaml        the logged inputs, `expected` = production's answer: the agreement rate
    shadow-format.yaml where production answers in JSON: the share of valid JSON
    failures.yaml      rows with a correction: cases whose `expected` is the correction (red on production)
    failure-modes.md   negative-feedback and low-confidence rows clustered (pytest_ftgate.importers.failure_modes)

`pytest DIR --baseline=DIR/production.jsonl --candidate=ADAPTER` is then the shadow run.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import SuiteError
from ..files.jsonl import iter_jsonl

FORMATS = ("openai", "generic")
Message = dict[str, str]


@dataclass(frozen=True)
class LogRow:
    line: int
    id: str
    messages: tuple[Message, ...]
    output: str
    confidence: float | None = None
    feedback: str | None = None  # up | down
    correction: str | None = None
    latency_s: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None

    @property
    def input(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] == "user")

    @property
    def failed(self) -> bool:
        return self.feedback == "down" or self.correction is not None


@dataclass
class LogImport:
    out: Path
    rows: int = 0
    kept: list[LogRow] = field(default_factory=list)
    rejected: dict[int, list[str]] = field(default_factory=dict)
    duplicates: int = 0
    pii: int = 0
    written: list[Path] = field(default_factory=list)
    field_name: str | None = None
    train_rows: int = 0
    train_dropped: int = 0  # corrections kept out of the training part: near an eval case
    modes: Any = None  # failure_modes.FailureModes


def _messages(value: Any, where: str) -> tuple[Message, ...]:
    if isinstance(value, str) and value.strip():
        return ({"role": "user", "content": value},)
    if isinstance(value, list) and value and all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                                and m.get("role") in ("system", "user", "assistant") for m in value):
        messages = tuple({"role": m["role"], "content": m["content"]} for m in value)
        if messages[-1]["role"] != "user":
            raise ValueError(f"{where} must end with the user's turn (the answer is the logged output)")
        return messages
    raise ValueError(f"{where} must be text or a list of chat messages ({{role, content}}), got {str(value)[:60]!r}")


def _number(obj: dict[str, Any], key: str, integer: bool = False) -> Any:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (integer and int(value) != value):
        raise ValueError(f"`{key}` must be a {'whole ' if integer else ''}number >= 0, got {value!r}")
    return int(value) if integer else float(value)


def _feedback(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    raw, correction = obj.get("feedback"), obj.get("correction")
    if isinstance(raw, dict):
        correction = raw.get("correction", correction)
        raw = raw.get("rating", "down" if correction else None)
    if raw in (None, ""):
        feedback = None
    elif str(raw).strip().lower() in ("up", "+1", "1", "good", "thumbs_up"):
        feedback = "up"
    elif str(raw).strip().lower() in ("down", "-1", "0", "bad", "thumbs_down"):
        feedback = "down"
    else:
        raise ValueError(f"`feedback` must be up or down (or {{\"correction\": text}}), got {raw!r}")
    if correction is not None and (not isinstance(correction, str) or not correction.strip()):
        raise ValueError(f"`correction` must be the right answer, as text, got {correction!r}")
    return ("down" if correction else feedback), correction


def _confidence(obj: dict[str, Any]) -> float | None:
    if obj.get("confidence") is not None:
        value = _number(obj, "confidence")
        if value > 1:
            raise ValueError(f"`confidence` must be between 0 and 1, got {value}")
        return value
    if obj.get("logprob") is not None:
        value = obj["logprob"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value > 0:
            raise ValueError(f"`logprob` must be a log-probability (<= 0), got {value!r}")
        return math.exp(value)
    return None


def _generic(obj: dict[str, Any], line: int) -> LogRow:
    if "input" not in obj or not isinstance(obj.get("output"), str):
        raise ValueError("a generic log row needs `input` (text or messages) and `output` (text)")
    feedback, correction = _feedback(obj)
    return LogRow(line, str(obj.get("id") or ""), _messages(obj["input"], "`input`"), obj["output"], _confidence(obj),
                  feedback, correction, _number(obj, "latency_s"), _number(obj, "tokens_in", True),
                  _number(obj, "tokens_out", True))


def _openai(obj: dict[str, Any], line: int) -> LogRow:
    request, response = obj.get("request", obj.get("request_body")), obj.get("response", obj.get("response_body"))
    if not isinstance(request, dict) or not isinstance(response, dict):
        raise ValueError("an openai log row needs `request` and `response` objects (a chat-completions pair)")
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance((choices[0] or {}).get("message"), dict):
        raise ValueError("`response.choices[0].message` is missing: not a chat-completions response")
    content = choices[0]["message"].get("content")
    if not isinstance(content, str):
        raise ValueError("`response.choices[0].message.content` must be text")
    usage = response.get("usage") or {}
    latency = _number(obj, "latency_s")
    if latency is None and obj.get("latency_ms") is not None:
        latency = _number(obj, "latency_ms") / 1000
    confidence = _confidence(obj)
    tokens = ((choices[0].get("logprobs") or {}).get("content")) or []
    if confidence is None and tokens and all(isinstance(t, dict) and isinstance(t.get("logprob"), (int, float)) for t in tokens):
        confidence = math.exp(sum(t["logprob"] for t in tokens) / len(tokens))
    feedback, correction = _feedback(obj)
    return LogRow(line, str(obj.get("id") or response.get("id") or ""), _messages(request.get("messages"),
                  "`request.messages`"), content, confidence, feedback, correction, latency,
                  _number(usage, "prompt_tokens", True), _number(usage, "completion_tokens", True))


def read_logs(path: Path, fmt: str, result: LogImport) -> None:
    """Every row, checked: malformed lines and PII rejected with their reasons, exact duplicates dropped."""
    from ..files.datacheck import find_pii
    from ..scoring.scorers import normalize

    parse = _openai if fmt == "openai" else _generic
    seen: dict[str, int] = {}
    ids: Counter[str] = Counter()
    for line in iter_jsonl(path):
        result.rows += 1
        if line.error or not isinstance(line.value, dict):
            result.rejected[line.number] = [line.error or "not a JSON object"]
            continue
        try:
            row = parse(line.value, line.number)
        except ValueError as exc:
            result.rejected[line.number] = [str(exc)]
            continue
        key = normalize(" ".join(m["content"] for m in row.messages))
        if key in seen:
            result.duplicates += 1
            result.rejected[line.number] = [f"duplicate of line {seen[key]} (the same input)"]
            continue
        seen[key] = line.number
        pii = find_pii(row.input + "\n" + row.output + "\n" + (row.correction or ""))
        if pii:
            result.pii += 1
            result.rejected[line.number] = ["PII: " + ", ".join(sorted(set(pii)))]
            continue
        base = row.id or f"log-{line.number:06d}"
        ids[base] += 1
        result.kept.append(replace(row, id=base if ids[base] == 1 else f"{base}-{ids[base]}"))


def json_field(outputs: list[str]) -> str | None:
    """A short field production answers with in most rows (`label`), to agree on; None for free text.

    Agreement must be on something that varies in production: a field with one value in every row (a `version`)
    is agreed on by any answer in the right shape, and one with a new value in nearly every row (an id, a
    free-text reason) is not a decision. The first field, in the answers' own order, that 80% of them hold and
    that takes between 2 values and one for every second row, wins."""
    values: dict[str, list[str]] = {}
    objects = 0
    for text in outputs:
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict):
            objects += 1
            for k, v in data.items():
                if isinstance(v, str) and 0 < len(v) <= 40:
                    values.setdefault(k, []).append(v)
    if objects < 0.5 * max(1, len(outputs)):
        return None
    return next((k for k, v in values.items() if len(v) >= 0.8 * objects and 2 <= len(set(v)) <= max(2, len(v) // 2)),
                None)


def _case(row: LogRow, expected: str) -> dict[str, Any]:
    turns = list(row.messages)
    case: dict[str, Any] = {"id": row.id}
    if len(turns) == 1:
        case["input"] = turns[0]["content"]
    else:
        case["messages"] = turns
    case["expected"] = expected
    return case


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _write_suite(path: Path, suite: dict[str, Any], header: str) -> Path:
    import yaml

    path.write_text(header + yaml.safe_dump(suite, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")
    return path


MAX_REJECTED = 0.2  # above this share of rejected rows, a log is not imported


def import_logs(path: str | Path, fmt: str, out: str | Path, *, train_out: str | Path | None = None,
                field_name: str | None = None, low_confidence: float = 0.5, clusters: int | None = None,
                seed: int = 0, force: bool = False, max_rejected: float = MAX_REJECTED) -> LogImport:
    """Read production logs and write the shadow run's suites and subject (see the module's docstring)."""
    from ..files.datacheck import find_leaks
    from ..gating.suite import load_suite
    from .failure_modes import cluster_failures, write_failure_modes

    path, out = Path(path), Path(out)
    if fmt not in FORMATS:
        raise SuiteError(f"unknown log format {fmt!r}; one of {', '.join(FORMATS)}", path)
    if not path.is_file():
        raise SuiteError("no such file; give the JSONL of logged requests", path)
    if out.exists() and any(out.iterdir()) and not force:
        raise SuiteError("already holds files; pass --force to write over them, or choose another --out", out)
    result = LogImport(out)
    read_logs(path, fmt, result)
    total = len(result.kept) + len(result.rejected)
    if not result.kept or len(result.rejected) > max_rejected * total:
        shown = "; ".join(f"line {k}: {v[0]}" for k, v in list(result.rejected.items())[:3])
        raise SuiteError(f"{len(result.rejected)} of {total} rows rejected ({shown}), more than --max-rejected "
                         f"{max_rejected:g} allows: a shadow suite of what is left would stand for a log it does not "
                         "represent. Fix the export (the first rejected lines and why are named here), or raise "
                         "--max-rejected on purpose", path)
    out.mkdir(parents=True, exist_ok=True)
    rows = result.kept
    chosen = field_name or json_field([r.output for r in rows])
    result.field_name = chosen
    scorer: Any = {"agrees": {"field": chosen}} if chosen else "agrees"
    source = f"# Written by `ftgate logs import {path.name} --format {fmt}`"
    result.written.append(_write_jsonl(out / "production.jsonl", [
        {"id": r.id, "output": r.output, **{k: v for k, v in (("tokens_in", r.tokens_in), ("tokens_out", r.tokens_out),
                                                               ("latency_s", r.latency_s)) if v is not None}}
        for r in rows]))
    corrected = [r for r in rows if r.correction is not None]
    eval_part, train_part = corrected, []
    if corrected and train_out is not None:
        shuffled = corrected[:]
        random.Random(seed).shuffle(shuffled)
        half = max(1, len(shuffled) // 2)
        eval_part, train_part = sorted(shuffled[:half], key=lambda r: r.line), sorted(shuffled[half:], key=lambda r: r.line)
    trained = {r.id for r in train_part}  # corrections that become training rows are in no suite written here
    shadow = [r for r in rows if r.id not in trained]
    result.written.append(_write_jsonl(out / "shadow.jsonl", [_case(r, r.output) for r in shadow]))
    result.written.append(_write_suite(out / "shadow.yaml", {
        "name": "shadow", "kind": "shadow", "description": f"{len(shadow)} logged requests; expected = production's answer",
        "cases": "shadow.jsonl", "generate": {"max_new_tokens": 96}, "scorers": [scorer], "gate": {"min_agreement": 0.8}},
        f"{source}: the candidate on real traffic against what production answered.\n"))
    if json_field([r.output for r in rows]) is not None or sum(r.output.lstrip().startswith("{") for r in rows) > len(rows) / 2:
        result.written.append(_write_suite(out / "shadow-format.yaml", {
            "name": "shadow-format", "kind": "format", "description": "production answers in JSON: so must the candidate",
            "cases": "shadow.jsonl", "generate": {"max_new_tokens": 96}, "scorers": ["json_valid"],
            "gate": {"min_pass_rate": 0.95}}, f"{source}: format validity on real traffic.\n"))
    if corrected:
        result.written.append(_write_jsonl(out / "failures.jsonl", [_case(r, r.correction or "") for r in eval_part]))
        result.written.append(_write_suite(out / "failures.yaml", {
            "name": "failures", "kind": "task",
            "description": f"{len(eval_part)} logged failures with a correction: red on production",
            "cases": "failures.jsonl", "generate": {"max_new_tokens": 96}, "scorers": [scorer],
            "gate": {"min_accuracy": 0.5, "not_below_baseline": True}},
            f"{source}: logged failures, expected = the correction.\n"))
        if train_out is not None:
            written = [load_suite(out / "failures.yaml"), load_suite(out / "shadow.yaml")]
            converted = {r.line: {"prompt": list(r.messages), "completion": [{"role": "assistant", "content": r.correction}]}
                         for r in train_part}
            leaked = {line for _, line, _ in find_leaks(converted, written)}  # kept apart from every suite written
            kept = [r for r in train_part if r.line not in leaked]
            result.train_rows, result.train_dropped = len(kept), len(leaked)
            result.written.append(_write_jsonl(Path(train_out), [
                {"messages": [*r.messages, {"role": "assistant", "content": r.correction}]} for r in kept]))
    failing = [r for r in rows if r.failed or (r.confidence is not None and r.confidence < low_confidence)]
    result.modes = cluster_failures(failing, clusters, seed, low_confidence)
    result.written += write_failure_modes(out, result.modes)
    rejected = out / "rejected.jsonl"
    _write_jsonl(rejected, [{"line": k, "reasons": v} for k, v in sorted(result.rejected.items())])
    result.written.append(rejected)
    for suite in ("shadow.yaml", "shadow-format.yaml", "failures.yaml"):
        if (out / suite).exists():
            load_suite(out / suite)  # what we wrote must load; a SuiteError here is our bug, and says where
    return result


def import_lines(result: LogImport, path: Path) -> list[str]:
    lines = [f"{path}: {result.rows} rows, {len(result.kept)} kept, {len(result.rejected)} rejected "
             f"({result.duplicates} duplicate inputs, {result.pii} with PII; reasons in {result.out / 'rejected.jsonl'})"]
    bad = [(k, v) for k, v in sorted(result.rejected.items()) if not v[0].startswith(("duplicate", "PII"))]
    for line, reasons in bad[:10]:
        lines.append(f"  {path}:{line}: {'; '.join(reasons)}")
    if len(bad) > 10:
        lines.append(f"  … {len(bad) - 10} more malformed line(s)")
    lines.append(f"agreement on: {'the JSON field ' + repr(result.field_name) if result.field_name else 'the normalised text'}")
    if result.train_rows or result.train_dropped:
        lines.append(f"training rows from corrections: {result.train_rows} (the other half are eval cases; "
                     f"{result.train_dropped} kept out of training: too near an eval case)")
    if result.modes is not None:
        lines.extend(result.modes.summary())
    lines += [f"wrote {p}" for p in result.written]
    lines.append(f"the shadow run: pytest {result.out} --baseline={result.out / 'production.jsonl'} --candidate=ADAPTER")
    return lines
