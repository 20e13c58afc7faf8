"""Shared fixtures: tiny random-weight models built locally once per session (seconds), and a real
OpenAI-compatible llama.cpp server on 127.0.0.1 (tests/helpers/llama_server.py), shared by the endpoint tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# pytester's inline runs drop modules first imported inside them; C extensions such as numpy
# cannot be imported twice in one process, so load what the plugin imports lazily up front.
import numpy  # noqa: F401
import pytest
import scipy.stats  # noqa: F401
import tqdm.auto  # noqa: F401


@pytest.fixture(autouse=True)
def own_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's gate runs append to a history store of its own, never to the checkout's .ftgate/."""
    path = tmp_path / "history.sqlite"
    monkeypatch.setenv("FTGATE_HISTORY", str(path))
    return path


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    """A test that fails while the llama.cpp server it talks to has died says so, with the end of the server's
    log: "Server disconnected" alone hides a crash."""
    report = yield
    if report.failed:
        from tests.helpers.llama_server import died

        for message in died():
            report.sections.append(("llama.cpp server", message))  # shown under the failure, whatever -s or --tb
    return report


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An OpenAI-compatible llama.cpp server for SmolLM2 on a free loopback port: its /v1 URL.

    `make test` installs llama-cpp-python[server] and sets FTGATE_REQUIRE_SERVER=1: there it cannot skip."""
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        if os.environ.get("FTGATE_REQUIRE_SERVER"):
            pytest.fail(f"llama-cpp-python[server] is required here ({exc}): pip install 'llama-cpp-python[server]'")
        pytest.skip("llama-cpp-python[server] is not installed (make test installs it)")
    from tests.helpers.llama_server import llama_server

    try:
        with llama_server(tmp_path_factory.mktemp("server") / "server.log") as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


@contextmanager
def scripted_subject(name: str, fingerprint: Callable[[str], str], answer: Callable[[Any], str]) -> Iterator[type]:
    """A subject kind `NAME:...` registered for one test: `fingerprint(spec)` identifies it, `answer(job)` answers
    each job. The kind is removed afterwards."""
    from pytest_ftgate.cost.pricing import ServingCost
    from pytest_ftgate.subjects import Subject, base, register_subject
    from pytest_ftgate.types import Output, SubjectInfo

    @register_subject
    class Scripted(Subject):
        kind = name

        @classmethod
        def claims(cls, spec: str) -> bool:
            return spec.startswith(f"{name}:")

        @classmethod
        def build(cls, spec: str, role: Any, ctx: Any) -> Subject:
            subject, key = cls(), fingerprint(spec)
            subject.info = SubjectInfo(role, name, spec, key, identity=key, spec=spec)
            return subject

        @classmethod
        def serving_cost(cls, info: SubjectInfo, usage: Any, pricing: Any) -> ServingCost:
            return ServingCost.unknown("a test subject")

        def run(self, jobs: Any, on_batch: Any, progress: Any = None) -> None:
            on_batch([(i, Output(answer(job))) for i, job in enumerate(jobs)])

    try:
        yield Scripted
    finally:
        base._KINDS.pop(name, None)
