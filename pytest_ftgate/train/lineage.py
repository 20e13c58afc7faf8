"""What a training run puts into the manifest (pytest_ftgate.stores.manifest.Manifest, read and written there).

Besides the provenance, the manifest carries the cost of the training that produced the weights,
which the gate's TCO reads. A run resumed from a checkpoint continues earlier runs, so each
checkpoint records the time spent up to it (`ftgate-cost.json`), and the resumed run adds its own;
and the training data of every run that led to it (`ftgate-lineage.json`), which the manifest carries
as `data.lineage` for the gate's leakage check: resuming with other data does not forget the first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..stores.manifest import BaseModel, Manifest
from ..machine.provenance import TRAIN_LIBRARIES, git_commit, library_versions, machine

if TYPE_CHECKING:
    from .config import Recipe

COST_FILE = "ftgate-cost.json"  # in each checkpoint directory
LINEAGE_FILE = "ftgate-lineage.json"  # in each checkpoint directory: the data of every run that led to it


@dataclass(frozen=True)
class Cost:
    """Training time spent on a set of weights, over every run that led to them."""

    wall_s: float = 0.0
    gpu_hours: float = 0.0

    def plus(self, seconds: float, gpus: int) -> Cost:
        return Cost(self.wall_s + seconds, self.gpu_hours + seconds * gpus / 3600)


def read_cost(checkpoint: Path) -> Cost | None:
    """The cost recorded in a checkpoint, or None for one written without it (by another tool or version)."""
    path = Path(checkpoint) / COST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Cost(float(data["wall_s"]), float(data["gpu_hours"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_cost(checkpoint: Path, cost: Cost) -> None:
    (Path(checkpoint) / COST_FILE).write_text(json.dumps(asdict(cost)) + "\n", encoding="utf-8")


def read_lineage(checkpoint: Path) -> list[dict[str, Any]] | None:
    """The training data of every run that led to a checkpoint (path, sha256, rows), or None where unrecorded."""
    try:
        data = json.loads((Path(checkpoint) / LINEAGE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else None


def write_lineage(checkpoint: Path, lineage: list[dict[str, Any]]) -> None:
    (Path(checkpoint) / LINEAGE_FILE).write_text(json.dumps(lineage, indent=1) + "\n", encoding="utf-8")


def extend_lineage(earlier: list[dict[str, Any]], data: dict[str, Any]) -> list[dict[str, Any]]:
    """The lineage of weights trained on `data` after `earlier`: each data set once, in the order first used."""
    seen = {(d.get("path"), d.get("sha256")) for d in earlier}
    return [*earlier, *([data] if (data.get("path"), data.get("sha256")) not in seen else [])]


def epoch_evals(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-epoch evaluations during training (not the final re-evaluation of the best model)."""
    out = []
    for h in history:
        if "train_runtime" in h:
            break
        if "eval_loss" in h:
            out.append({"epoch": h.get("epoch"), "step": h.get("step"), "eval_loss": h["eval_loss"]})
    return out


def device_info(device: str, processes: int) -> dict[str, Any]:
    info: dict[str, Any] = {"kind": device, "processes": processes, **machine()}
    if device == "cuda":
        import torch

        info["gpu"] = torch.cuda.get_device_name()
    return info


def build_manifest(recipe: Recipe, base: BaseModel, device: dict[str, Any], *, metrics: dict[str, Any],
                   log_history: list[dict[str, Any]], cost: Cost, **measured: Any) -> Manifest:
    """The manifest of a finished run; `measured` holds the remaining Manifest fields (data, checks, ...)."""
    return Manifest(
        method=recipe.method,
        base_model=base,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        recipe_file=recipe.source,
        config={k: v for k, v in asdict(recipe).items() if k != "source"},
        seed=recipe.training.seed,
        versions=library_versions(TRAIN_LIBRARIES),
        git_commit=git_commit(),
        device=device,
        metrics=metrics,
        final_train_loss=metrics.get("train_loss"),
        final_eval_loss=metrics.get("eval_loss"),
        eval_losses=epoch_evals(log_history),
        wall_s=cost.wall_s,
        gpu_hours=cost.gpu_hours,
        **measured,
    )
