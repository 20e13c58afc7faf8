"""The adapter manifest `ftgate.json`: what was trained, on what, how, and at what cost."""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Recipe

SCHEMA_VERSION = 1
LIBRARIES = ("pytest-ftgate", "torch", "transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate")


def base_fingerprint(base_dir: Path) -> str:
    """The same hash the gate computes for a base: config.json and every safetensors file."""
    from ..cache import Cache
    from ..hf import HFEngine

    return HFEngine(base_dir.resolve(), None, False, Cache(None)).base_weights_hash()


def _epoch_evals(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-epoch evaluations during training (not the final re-evaluation of the best model)."""
    out = []
    for h in history:
        if "train_runtime" in h:
            break
        if "eval_loss" in h:
            out.append({"epoch": h.get("epoch"), "step": h.get("step"), "eval_loss": h["eval_loss"]})
    return out


def _versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return out


def _git_commit() -> str | None:
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
        return proc.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_manifest(output_dir: Path, *, recipe: Recipe, device: str, **fields: Any) -> dict[str, Any]:
    base = Path(recipe.model.base)
    config = {k: v for k, v in asdict(recipe).items() if k != "source"}
    metrics = fields.pop("metrics", {})
    history = fields.pop("log_history", [])
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "method": recipe.method,
        "recipe_file": recipe.source,
        "base_model": {"path": str(base.resolve()), "fingerprint": base_fingerprint(base)},
        "config": config,
        "seed": recipe.training.seed,
        "versions": _versions(),
        "git_commit": _git_commit(),
        "device": {"kind": device, "machine": platform.machine(), "node": platform.node()},
        "final_train_loss": metrics.get("train_loss"),
        "final_eval_loss": metrics.get("eval_loss"),
        "metrics": metrics,
        "eval_losses": _epoch_evals(history),
        **fields,
    }
    (output_dir / "ftgate.json").write_text(json.dumps(manifest, indent=1, default=str) + "\n", encoding="utf-8")
    return manifest
