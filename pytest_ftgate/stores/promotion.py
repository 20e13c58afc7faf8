"""The promotion record: what ships, committed beside the suites (`suites/ftgate.promoted.json`).

`ftgate promote REPORT.json` writes it from a gated run whose verdict was `promoted`, after checking
that the candidate's files are still the ones that run gated. With a record and no `--baseline`,
the baseline of every later gate is the promoted model (`--baseline=base` picks the adapter's base,
`--baseline=promoted` names the record explicitly). A record keeps the chain of earlier promotions.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..files.versioned import read_versioned
from ..errors import OptionError

FILENAME = "ftgate.promoted.json"
SCHEMA_VERSION = 1
BASE, PROMOTED = "base", "promoted"  # the two --baseline words: the adapter's base, the promoted model


@dataclass(frozen=True)
class Promotion:
    """One promoted model: how to name it again, what it is, and the run that promoted it."""

    spec: str  # a --baseline spec; a path is kept relative to the record's directory
    kind: str
    name: str
    fingerprint: str  # what the gate that promoted it generated with: weights, tokenizer, 4-bit
    report: dict[str, Any]  # path (relative to the record), sha256, verdict, finished_at
    promoted_at: str
    git_commit: str | None = None
    base_model: str | None = None  # an adapter's base, when it has one
    previous: list[dict[str, Any]] = field(default_factory=list)  # earlier promotions, newest first
    schema_version: int = SCHEMA_VERSION
    # what it shipped with: each suite file's candidate prompt when it was promoted (relative path -> system and
    # few-shot turns); later gates serve it with these, whatever the suites say now
    prompts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # each golden suite's first frozen goldens (relative path -> golden origin), so that drift stays bounded when a
    # golden file is deleted and frozen again
    origins: dict[str, dict[str, Any]] = field(default_factory=dict)
    # an endpoint's: what its server reported about the model when it was promoted, and what of it identified the
    # model ("identified_by" empty: nothing did, and the record holds only its URL and name)
    served: dict[str, Any] | None = None
    # the exported artifact that ships (`ftgate export`, recorded with `ftgate promote --export`): its path,
    # fingerprint, dtype and the agreement with the adapter it showed
    export: dict[str, Any] | None = None

    def resolved_spec(self, directory: Path) -> str:
        """The spec as a subject builds it: a relative path read from the record's directory."""
        path = Path(self.spec)
        if path.is_absolute() or ":" in self.spec.split("/")[0]:
            return self.spec
        return str((directory / path).resolve()) if (directory / path).exists() else self.spec

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def kept_origin(suite_path: Path) -> Any:
    """The origin a promotion record above a suite keeps for it, or None."""
    from .goldens import Origin

    for directory in list(Path(suite_path).resolve().parents)[:4]:
        if (directory / FILENAME).is_file():
            record = read_promotion(directory)
            key = Path(suite_path).resolve().relative_to(directory).as_posix()
            kept = record.origins.get(key) if record is not None else None
            return Origin.from_json(kept) if kept else None
    return None


def as_prompt(recorded: dict[str, Any]) -> Any:
    from ..types import Prompt

    return Prompt(recorded.get("system"), tuple(tuple(t) for t in recorded.get("few_shot") or ()))


def record_path(suites_dir: Path) -> Path:
    return Path(suites_dir) / FILENAME


def read_promotion(suites_dir: Path | None) -> Promotion | None:
    """The record in a suites directory, or None. A damaged record is an error that names it."""
    if suites_dir is None:
        return None
    path = record_path(suites_dir)
    if not path.is_file():
        return None
    try:
        data = read_versioned(path, SCHEMA_VERSION)
        known = set(Promotion.__dataclass_fields__)
        return Promotion(**{k: v for k, v in data.items() if k in known})
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError) as exc:
        raise OptionError(f"{path}: not a readable promotion record ({exc}); restore it from git, or promote again "
                          "with `ftgate promote REPORT.json`") from None


def relative_spec(spec: str, directory: Path) -> str:
    """A path spec written relative to the record's directory, so the record holds in any checkout."""
    path = Path(spec)
    if not path.is_absolute():
        return spec
    try:
        return os.path.relpath(path, directory)
    except ValueError:  # another drive
        return spec


def write_promotion(suites_dir: Path, promotion: Promotion) -> Path:
    path = record_path(suites_dir)
    path.write_text(json.dumps(promotion.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
