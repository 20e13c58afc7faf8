"""Training rows: read JSONL with line numbers, detect the format, validate, convert for TRL.

Formats (one per file):
    chat          {"messages": [{"role": ..., "content": ...}, ..., {"role": "assistant", ...}]}
    instruction   {"instruction": ..., "input": optional, "output": ...}
    preference    {"prompt": str | messages, "chosen": str | messages, "rejected": str | messages}

SFT rows become TRL's conversational prompt/completion form, so the loss covers the final
assistant turn only (and its end-of-turn token), whatever the chat template looks like.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import DataError
from .jsonl import iter_jsonl

Format = Literal["chat", "instruction", "preference"]
ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True)
class Row:
    line: int
    data: dict[str, Any]


@dataclass(frozen=True)
class BadLine:
    """A line that is not a row at all: not valid JSON, or JSON but not an object."""

    line: int
    reason: str


_JSON_KINDS = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}


def scan_jsonl(path: Path) -> tuple[list[Row], list[BadLine]]:
    """The object rows of a JSONL file and, separately, the lines that are not rows, in file order."""
    if not path.is_file():
        raise DataError(f"{path}: training data file not found")
    rows, bad = [], []
    for line in iter_jsonl(path):
        if line.error is not None:
            bad.append(BadLine(line.number, line.error))
        elif not isinstance(line.value, dict):
            kind = _JSON_KINDS.get(type(line.value), "a number")
            reason = f"not a JSON object (got {kind}); each line must be one object, e.g. {{\"messages\": [...]}}"
            bad.append(BadLine(line.number, reason))
        else:
            rows.append(Row(line.number, line.value))
    return rows, bad


def read_jsonl(path: Path) -> list[Row]:
    """Every row, or a DataError at the first line that is not a JSON object: the trainer stops there."""
    rows, bad = scan_jsonl(path)
    if bad:
        more = f" ({len(bad) - 1} more such lines: `ftgate data check {path}` lists every problem)" if len(bad) > 1 else ""
        raise DataError(f"{path}:{bad[0].line}: {bad[0].reason}{more}")
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def known_format(row: Row) -> Format | None:
    keys = set(row.data)
    if "messages" in keys:
        return "chat"
    if {"chosen", "rejected"} <= keys:
        return "preference"
    if {"instruction", "output"} <= keys:
        return "instruction"
    return None


def detect_format(row: Row, path: Path) -> Format:
    fmt = known_format(row)
    if fmt is None:
        raise DataError(
            f"{path}:{row.line}: unknown row format (keys {sorted(row.data)}); use messages, "
            "instruction/input/output, or prompt/chosen/rejected"
        )
    return fmt


def _messages(value: Any, where: str, *, last: str | None = None) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: messages must be a non-empty list of {{role, content}}")
    for m in value:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise DataError(f"{where}: each message needs role (system, user, assistant) and string content, got {m!r}")
        if not m["content"].strip():
            raise DataError(f"{where}: a {m['role']} message is empty")
    if last and value[-1]["role"] != last:
        raise DataError(f"{where}: the last message must be the {last}'s, got {value[-1]['role']!r}")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def validate_row(row: Row, fmt: Format, path: Path) -> dict[str, Any]:
    """Validate one row and convert it to TRL's conversational form."""
    where = f"{path}:{row.line}"
    d = row.data
    found = detect_format(row, path)
    if found != fmt:
        raise DataError(f"{where}: this row is in {found} format but the file is in {fmt} format; one format per file")
    if fmt == "chat":
        msgs = _messages(d["messages"], where, last="assistant")
        if len(msgs) < 2:
            raise DataError(f"{where}: a chat row needs at least a user turn and the assistant's answer")
        return {"prompt": msgs[:-1], "completion": msgs[-1:]}
    if fmt == "instruction":
        if not isinstance(d["instruction"], str) or not isinstance(d["output"], str) or not d["output"].strip():
            raise DataError(f"{where}: instruction and output must be non-empty strings")
        text = d["instruction"] + (f"\n\n{d['input']}" if d.get("input") else "")
        return {"prompt": [{"role": "user", "content": text}], "completion": [{"role": "assistant", "content": d["output"]}]}
    prompt = d.get("prompt")
    if prompt is None:
        raise DataError(f"{where}: a preference row needs a prompt")
    prompt_msgs = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else _messages(prompt, where, last="user")
    out: dict[str, Any] = {"prompt": prompt_msgs}
    for key in ("chosen", "rejected"):
        value = d[key]
        out[key] = [{"role": "assistant", "content": value}] if isinstance(value, str) else _messages(value, where, last="assistant")
        if not out[key][-1]["content"].strip():
            raise DataError(f"{where}: {key} is empty")
    if out["chosen"] == out["rejected"]:
        raise DataError(f"{where}: chosen and rejected are identical; the row teaches nothing")
    return out


def load_rows(path: Path, expect: Literal["sft", "dpo"]) -> tuple[list[dict[str, Any]], list[int], Format]:
    """Rows converted for TRL, their source line numbers, and the detected format."""
    rows = read_jsonl(path)
    fmt = detect_format(rows[0], path)
    if expect == "dpo" and fmt != "preference":
        raise DataError(f"{path}: DPO needs prompt/chosen/rejected rows, found {fmt} rows")
    if expect == "sft" and fmt == "preference":
        raise DataError(f"{path}: SFT needs messages or instruction/output rows, found preference rows (use `ftgate train dpo`)")
    return [validate_row(r, fmt, path) for r in rows], [r.line for r in rows], fmt
