"""The embedded default model, for real (slow: converts the packaged GGUF, about a minute)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_smollm2_loads_offline_from_the_package_and_answers_a_golden(tmp_path):
    pytest.importorskip("gguf")
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from pathlib import Path\n"
        "from fixtures.smollm2 import ensure_model\n"
        "from pytest_ftgate.cache import Cache\n"
        "from pytest_ftgate.subjects import SubjectOptions, resolve_subjects\n"
        "model = ensure_model(Path(%r))\n"
        "base, _ = resolve_subjects(None, str(model), SubjectOptions(), Cache(None))\n"
        "print('ANSWER', base.generate('What is the capital of France?', max_new_tokens=16))\n"
    ) % (str(ROOT), str(tmp_path / "smollm2"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Paris" in proc.stdout
    saved = tmp_path / "smollm2"
    assert (saved / "model.safetensors").exists() and (saved / "chat_template.jinja").exists()
