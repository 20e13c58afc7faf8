"""Frozen golden sets: the ids and content hashes of the cases the baseline passed when frozen.

Written only on an explicit `--ftgate-update-goldens`; read on every gate run. A golden the
baseline fails now is *stale*: reported, not counted. The dtype the baseline computed in is recorded:
a gate in another dtype (another machine's `--ftgate-dtype auto`) re-derives what the baseline passes
in its own run, and says so with the goldens that changed side. A golden whose case was edited or removed
since it was frozen is *changed*: the gate does not run until the goldens are re-frozen on
purpose, since editing a regressed golden would otherwise take it out of the count. The file also binds
what decides a pass besides the cases (the scorers with their arguments, the prompts, the decoding
parameters): a change there stops the gate the same way, until the goldens are re-frozen on purpose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..files.versioned import read_versioned
from ..errors import SuiteError
from ..types import SuiteResult

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class GoldenSet:
    path: Path
    hashes: dict[str, str]  # case id -> content hash when frozen
    baseline: str  # the fingerprint of the baseline that passed them
    identity: str | None = None  # the baseline's model identity (None: frozen before it was recorded)
    origin: Origin | None = None  # the goldens of the first model they were frozen on, kept across promotions
    dtype: str | None = None  # what the baseline computed in when frozen (None: not a local model, or not recorded)
    definition: dict[str, str] | None = None  # what decided a pass when frozen (Suite.definition); None: not recorded
    name: str | None = None  # the baseline's name when frozen


@dataclass(frozen=True)
class Origin:
    """The first frozen goldens: goldens follow production, and these bound the drift across promotions."""

    identity: str | None
    name: str
    frozen_at: str
    hashes: dict[str, str]
    dtype: str | None = None  # what the first model computed in when they were frozen

    @classmethod
    def from_json(cls, o: dict[str, Any]) -> Origin:
        return cls(o.get("identity"), str(o.get("name", "")), str(o.get("frozen_at", "")),
                   {g["id"]: g["hash"] for g in o["goldens"]}, o.get("dtype"))

    def to_json(self) -> dict[str, object]:
        return {"identity": self.identity, "name": self.name, "frozen_at": self.frozen_at, "dtype": self.dtype,
                "goldens": [{"id": i, "hash": h} for i, h in self.hashes.items()]}


@dataclass(frozen=True)
class GoldenSplit:
    """The frozen goldens sorted against the current suite and baseline."""

    counted: tuple[str, ...]  # ids to gate on
    stale: dict[str, str]  # id -> why it is not counted (the baseline fails it now)
    changed: dict[str, str] = field(default_factory=dict)  # id -> how its case changed since it was frozen


def read_goldens(path: Path) -> GoldenSet | None:
    if not path.exists():
        return None
    try:
        data = read_versioned(path, SCHEMA_VERSION, required=("goldens",))
        hashes = {g["id"]: g["hash"] for g in data["goldens"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SuiteError(f"not a readable golden file ({exc}); regenerate it with --ftgate-update-goldens", path) from None
    identity = data.get("baseline_identity")
    origin = None
    if isinstance(data.get("origin"), dict):
        o = data["origin"]
        try:
            origin = Origin.from_json(o)
        except (KeyError, TypeError) as exc:
            raise SuiteError(f"the golden file's origin is damaged ({exc}); restore it from git", path) from None
    dtype = data.get("baseline_dtype")
    definition = data.get("definition") if isinstance(data.get("definition"), dict) else None
    return GoldenSet(path=path, hashes=hashes, baseline=str(data.get("baseline", "")),
                     identity=str(identity) if identity else None, origin=origin, dtype=str(dtype) if dtype else None,
                     definition=definition, name=data.get("baseline_name") or None)


def write_goldens(path: Path, baseline: SuiteResult, definition: dict[str, str] | None = None,
                  kept_origin: Origin | None = None) -> GoldenSet:
    """Freeze the cases this baseline passes. Re-frozen on another model (goldens follow production), the
    file keeps the goldens of the first model they were frozen on, as `origin`, to bound drift."""
    passed = [r.case for r in baseline.results if r.passed]
    previous = read_goldens(path) if path.exists() else None
    identity = baseline.subject.model_identity
    # a file deleted and frozen again (as the "no golden file" error says) keeps the origin a promotion recorded
    origin = previous.origin if previous is not None else kept_origin
    if previous is not None and origin is None and previous.identity and previous.identity != identity:
        origin = as_origin(previous, json.loads(path.read_text(encoding="utf-8")).get("frozen_at", ""))
    data = {
        "schema_version": SCHEMA_VERSION,
        "suite": baseline.suite,
        "baseline": baseline.subject.fingerprint,
        "baseline_identity": identity,
        "baseline_name": baseline.subject.name,
        "baseline_dtype": baseline.subject.details.get("dtype"),
        "frozen_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_cases": baseline.n,
        "definition": definition,
        "goldens": [{"id": c.id, "hash": c.content_hash} for c in passed],
    }
    if origin is not None:
        data["origin"] = origin.to_json()
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return GoldenSet(path=path, hashes={c.id: c.content_hash for c in passed}, baseline=data["baseline"],
                     identity=identity, origin=origin, dtype=data["baseline_dtype"], definition=definition,
                     name=baseline.subject.name)


def as_origin(golden: GoldenSet, frozen_at: str = "") -> Origin:
    """A golden set as the first frozen goldens of the models after it."""
    return golden.origin or Origin(golden.identity, golden.name or "", frozen_at, dict(golden.hashes), golden.dtype)


def split_goldens(golden: GoldenSet, baseline: SuiteResult) -> GoldenSplit:
    by_id = {r.case.id: r for r in baseline.results}
    now = baseline.subject.details.get("dtype")
    fails = f"the baseline fails it now, in {now} (frozen in {golden.dtype})" if dtype_changed(golden, baseline) else \
        "the baseline fails it now"
    counted: list[str] = []
    stale: dict[str, str] = {}
    changed: dict[str, str] = {}
    for case_id, frozen_hash in golden.hashes.items():
        result = by_id.get(case_id)
        if result is None:
            changed[case_id] = "removed from the suite"
        elif result.case.content_hash != frozen_hash:
            where = f" ({result.case.file}:{result.case.line})" if result.case.file and result.case.line else ""
            changed[case_id] = f"edited{where}"
        elif result.passed is False:
            stale[case_id] = fails
        else:
            counted.append(case_id)
    return GoldenSplit(tuple(counted), stale, changed)


def dtype_changed(golden: GoldenSet, baseline: SuiteResult) -> bool:
    now = baseline.subject.details.get("dtype")
    return bool(golden.dtype and now and golden.dtype != now)
