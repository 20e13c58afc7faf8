"""JSON Lines with line numbers: the one reader behind suite cases, outputs files and training data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_JSONL_BYTES = 512 * 2**20  # a larger file is refused: split it, rather than wait on memory


@dataclass(frozen=True)
class Line:
    """One non-blank line: its 1-based number, and the parsed value or why it did not parse."""

    number: int
    value: Any = None
    error: str | None = None  # e.g. "not valid JSON (Expecting ',' delimiter at column 12)"


def iter_jsonl(path: Path, max_bytes: int = MAX_JSONL_BYTES) -> Iterator[Line]:
    """Every non-blank line of a JSONL file. A malformed line (not UTF-8, not JSON) is yielded with its
    error, not raised, so a caller may stop at it (a suite) or report it and go on (a data check).
    A file over `max_bytes` yields one error line and nothing else."""
    size = Path(path).stat().st_size
    if size > max_bytes:
        yield Line(1, error=f"the file is {size / 2**20:,.0f} MiB, over the {max_bytes / 2**20:,.0f} MiB a JSONL file "
                            "may be here; split it")
        return
    with Path(path).open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Line(number, error=f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}): "
                                         "is this a binary file?")
                continue
            if not text.strip():
                continue
            try:
                yield Line(number, json.loads(text))
            except json.JSONDecodeError as exc:
                yield Line(number, error=f"not valid JSON ({exc.msg} at column {exc.colno})")
            except RecursionError:
                yield Line(number, error="JSON nested too deeply to read")
