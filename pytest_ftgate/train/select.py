"""`ftgate train ... --gate SUITES`: gate every saved checkpoint and name the best one that passes.

The best checkpoint by eval loss is rarely the best by the gate: a later epoch may pass the
format suite while an earlier one keeps the goldens. Each checkpoint is gated against the same
baseline (the base with the adapter off), served from one cache, so the baseline is generated once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CheckpointVerdict:
    path: Path
    step: int
    eval_loss: float | None
    passed: bool
    blocking: tuple[str, ...]


def _eval_losses(output_dir: Path) -> dict[int, float]:
    losses: dict[int, float] = {}
    for state in output_dir.glob("checkpoint-*/trainer_state.json"):
        for entry in json.loads(state.read_text()).get("log_history", []):
            if "eval_loss" in entry:
                losses[int(entry["step"])] = float(entry["eval_loss"])
    return losses


def gate_checkpoints(output_dir: Path, suites_dir: Path, base: str, cache_dir: Path | None = None) -> list[CheckpointVerdict]:
    """Run the suites over each checkpoint; the list is sorted best first (passing, then eval loss)."""
    from ..settings.config import build_run_config
    from ..gating.runner import run_gate
    from ..gating.suite import find_suite_files, load_suite

    suites = [load_suite(f) for f in find_suite_files([suites_dir], suites_dir)]
    losses = _eval_losses(output_dir)
    verdicts = []
    checkpoints = sorted((int(p.name.removeprefix("checkpoint-")), p) for p in output_dir.glob("checkpoint-*")
                         if p.name.removeprefix("checkpoint-").isdigit())
    for step, ckpt in checkpoints:
        config = build_run_config({}, Path.cwd(), progress=False, candidate=str(ckpt), base=base, suites_dir=suites_dir,
                                  cache_dir=str(cache_dir or output_dir / ".ftgate-cache"))
        run = run_gate(suites, config)
        blocking = tuple(f"{d.suite}::{d.criterion}" for d in run.decisions if d.blocks)
        verdicts.append(CheckpointVerdict(ckpt, step, losses.get(step), run.verdict == "promoted", blocking))
    return sorted(verdicts, key=lambda v: (not v.passed, v.eval_loss if v.eval_loss is not None else float("inf"), -v.step))


def format_verdicts(verdicts: list[CheckpointVerdict]) -> list[str]:
    lines = [f"{'checkpoint':<20} {'eval loss':>10}  gate"]
    for v in sorted(verdicts, key=lambda v: v.step):
        loss = f"{v.eval_loss:.4f}" if v.eval_loss is not None else "—"
        lines.append(f"{v.path.name:<20} {loss:>10}  {'PASS' if v.passed else 'BLOCK: ' + ', '.join(v.blocking)}")
    best = verdicts[0] if verdicts and verdicts[0].passed else None
    lines.append(f"best checkpoint that passes every gate: {best.path}" if best else "no checkpoint passes every gate")
    return lines


def selection_record(verdicts: list[CheckpointVerdict]) -> dict[str, Any]:
    best = verdicts[0] if verdicts and verdicts[0].passed else None
    return {
        "best_passing": str(best.path) if best else None,
        "checkpoints": [
            {"path": str(v.path), "step": v.step, "eval_loss": v.eval_loss, "passed": v.passed, "blocking": list(v.blocking)}
            for v in verdicts
        ],
    }
