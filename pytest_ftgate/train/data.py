"""Training rows: read JSONL with line numbers, detect the format, validate, convert for TRL.

Formats (one per file):
    chat          {"messages": [{"role": ..., "content": ...}, ..., {"role": "assistant", ...}]}
    instruction   {"instruction": ..., "input": optional, "output": ...}
    preference    {"prompt": str | messages, "chosen": str | messages, "rejected": str | messages}

SFT rows become TRL's conversational prompt/completion form, so the loss covers the final
assistant turn only (and its end-of-turn token), whatever the chat template looks like.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import DataError

Format = Literal["chat", "instruction", "preference"]
ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True)
class Row:
    line: int
    data: dict[str, Any]


def read_jsonl(path: Path) -> list[Row]:
    if not path.is_file():
        raise DataError(f"{path}: training data file not found")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: each line must be a JSON object")
            rows.append(Row(lineno, obj))
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def detect_format(row: Row, path: Path) -> Format:
    keys = set(row.data)
    if "messages" in keys:
        return "chat"
    if {"chosen", "rejected"} <= keys:
        return "preference"
    if {"instruction", "output"} <= keys:
        return "instruction"
    raise DataError(
        f"{path}:{row.line}: unknown row format (keys {sorted(keys)}); use messages, "
        "instruction/input/output, or prompt/chosen/rejected"
    )


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
    if detect_format(row, path) != fmt:
        raise DataError(f"{where}: row format differs from the file's first row ({fmt}); one format per file")
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
