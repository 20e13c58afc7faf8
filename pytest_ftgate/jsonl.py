"""JSON Lines with line numbers: the one reader behind suite cases, outputs files and training data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Line:
    """One non-blank line: its 1-based number, and the parsed value or why it did not parse."""

    number: int
    value: Any = None
    error: str | None = None  # e.g. "not valid JSON (Expecting ',' delimiter at column 12)"


def iter_jsonl(path: Path) -> Iterator[Line]:
    """Every non-blank line of a JSONL file. A malformed line is yielded with its error, not raised,
    so a caller may stop at it (a suite) or report it and go on (a data check)."""
    with Path(path).open(encoding="utf-8") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                yield Line(number, json.loads(text))
            except json.JSONDecodeError as exc:
                yield Line(number, error=f"not valid JSON ({exc.msg} at column {exc.colno})")
