"""report.json as a record: its schema version, and the one reader every reader of reports uses
(`ftgate promote`, `ftgate compare`, the blind human export). The writer is json_report.to_json;
this module imports no view, so that a reader of reports never imports a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCHEMA_VERSION = 4  # 4: the promotion contract's terms; 3: notices, unchecked criteria, cost quartiles


def read_report(path: Path) -> dict[str, Any]:
    """A report.json as `to_json` wrote it; every reader of reports (`ftgate promote`, `ftgate compare`, the
    blind human export) reads it here. OptionError says why not, and what to do."""
    from ..errors import OptionError
    from ..files.versioned import read_versioned

    try:
        return read_versioned(path, SCHEMA_VERSION, required=("verdict", "subjects", "suites"))
    except FileNotFoundError:
        raise OptionError(f"{path}: no such file; give the report.json a gate run wrote in its --ftgate-report-dir") from None
    except (OSError, ValueError) as exc:
        raise OptionError(f"{path}: not a readable report.json of a gate run ({exc}); gate again to write one") from None
