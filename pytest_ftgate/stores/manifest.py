"""The adapter manifest `ftgate.json`: what was trained, on what, how, and at what cost.

Written by the trainer, read by the gate (the base-weights check, provenance, the training cost
in the TCO). This module is the only one that knows its keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import SubjectError

SCHEMA_VERSION = 1
FILENAME = "ftgate.json"
BASE_WEIGHT_PATTERNS = ("config.json", "*.safetensors")


def base_fingerprint(base_dir: Path, file_hash: Callable[[Path], str] | None = None) -> str:
    """sha256 over config.json and every safetensors file of a base model directory.

    The trainer records it and the gate compares it, so both call this; `file_hash` lets the gate
    use its memoised hasher (multi-GB weights hash once).
    """
    if file_hash is None:
        from .cache import sha256_file as file_hash
    parts: dict[str, str] = {}
    for pattern in BASE_WEIGHT_PATTERNS:
        for f in sorted(Path(base_dir).glob(pattern)):
            if f.is_file():
                parts[f.name] = file_hash(f)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class BaseModel:
    path: str  # the resolved local directory the adapter was trained on
    fingerprint: str  # base_fingerprint() of it
    name: str | None = None  # what the recipe named: a path or a Hub id


@dataclass(frozen=True)
class Manifest:
    method: str
    base_model: BaseModel
    created_at: str
    recipe_file: str = ""
    config: dict[str, Any] = field(default_factory=dict)  # the resolved recipe
    seed: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    device: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # paths, sha256 and row counts
    metrics: dict[str, Any] = field(default_factory=dict)
    final_train_loss: float | None = None
    final_eval_loss: float | None = None
    eval_losses: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0  # wall time of the training that produced these weights
    gpu_hours: float = 0.0
    peak_memory_bytes: int | None = None
    chat_template_sha256: str | None = None
    checks: dict[str, Any] = field(default_factory=dict)
    best_checkpoint: str | None = None
    gate_selection: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: Path) -> Manifest:
        if not isinstance(data.get("base_model"), dict):
            raise SubjectError(f"{where}: not an ftgate manifest (its base_model is not an object); delete it or retrain "
                               "the adapter")
        known = {f.name for f in fields(cls)}
        base_known = {f.name for f in fields(BaseModel)}
        values = {k: v for k, v in data.items() if k in known}
        try:
            values["base_model"] = BaseModel(**{k: v for k, v in data["base_model"].items() if k in base_known})
            return cls(**values)
        except TypeError as exc:
            raise SubjectError(f"{where}: the manifest is incomplete ({exc}); retrain the adapter or delete the file") from None


def read_manifest(adapter_dir: Path) -> Manifest | None:
    """The manifest beside an adapter, or None for an adapter trained elsewhere."""
    path = Path(adapter_dir) / FILENAME
    if not path.is_file():
        return None
    from ..files.versioned import read_versioned

    try:
        data = read_versioned(path, SCHEMA_VERSION, required=("base_model",))
    except (OSError, ValueError) as exc:
        raise SubjectError(f"{path}: not a readable ftgate manifest ({exc}); retrain the adapter with this version of "
                           "pytest-ftgate, or delete the file") from None
    return Manifest.from_dict(data, path)


def write_manifest(adapter_dir: Path, manifest: Manifest) -> Path:
    path = Path(adapter_dir) / FILENAME
    path.write_text(json.dumps(manifest.to_dict(), indent=1, default=str) + "\n", encoding="utf-8")
    return path
