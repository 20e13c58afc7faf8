"""The one reader of the JSON files pytest-ftgate writes with a `schema_version`: report.json, golden
files, promotion records, training manifests and blind-evaluation keys. Each file's own module reads
it through `read_versioned`, next to its writer, and turns a ValueError into its own error with what
to do (regenerate, retrain, gate again)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_versioned(path: Path, version: int, *, kind: str | None = None, what: str = "", required: tuple[str, ...] = ()
                   ) -> dict[str, Any]:
    """The JSON object in `path`: its `schema_version` must be `version`, its `kind` `kind` (where given;
    `what` describes such a file), and it must hold the `required` keys. ValueError says what is wrong;
    OSError where it cannot be read."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    if kind is not None and data.get("kind") != kind:
        raise ValueError(f"it is not {what or 'a ' + kind + ' file'}")
    found = data.get("schema_version")
    if found != version:
        raise ValueError(f"schema_version {found!r}, and this pytest-ftgate reads {version}: it was written by "
                         "another version")
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(f"it has no {', '.join(missing)}")
    return data


__all__ = ["read_versioned"]
