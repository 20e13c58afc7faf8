"""Shared fixtures: tiny random-weight models built locally once per session (seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

# pytester's inline runs drop modules first imported inside them; C extensions such as numpy
# cannot be imported twice in one process, so load what the plugin imports lazily up front.
import numpy  # noqa: F401
import scipy.stats  # noqa: F401
import tqdm.auto  # noqa: F401


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures.tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-base")


@pytest.fixture(scope="session")
def tiny_adapter(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures.tiny_models import build_tiny_adapter

    return build_tiny_adapter(tiny_base, tmp_path_factory.mktemp("adapters") / "tiny-adapter")


@pytest.fixture(scope="session")
def other_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A base model of another shape (hidden size 48): adapters of tiny_base do not fit it."""
    from fixtures.tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("models") / "other-base", hidden_size=48, seed=3)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
