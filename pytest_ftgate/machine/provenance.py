"""Where a result came from: library versions, the git commit, the machine. Light: no heavy imports."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any

from .hardware import cpu_features

GATE_LIBRARIES = ("pytest-ftgate", "torch", "transformers", "peft", "openai")
TRAIN_LIBRARIES = ("pytest-ftgate", "torch", "transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate")


def library_versions(names: tuple[str, ...] = GATE_LIBRARIES) -> dict[str, str]:
    """Installed versions of the named distributions (missing ones left out)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    """HEAD of the repository the process runs in, or None outside one."""
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
        return proc.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict[str, Any]:
    return {
        "node": platform.node(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        # which vector kernels torch, bitsandbytes and llama.cpp pick: a small model's greedy text can differ between them
        "cpu_features": cpu_features(),
    }
