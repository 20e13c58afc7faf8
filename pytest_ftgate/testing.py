"""Helpers for hand-written tests (the `ftgate` fixture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .gating.runner import GateRun, run_gate
from .gating.suite import Suite, load_suite


class FtgateHelper:
    """Load suites, run them against the session's subjects and assert their gates."""

    def __init__(self, state: Any):
        self._state = state

    @property
    def config(self) -> Any:
        return self._state.config

    def suite(self, path: str | Path) -> Suite:
        return load_suite(path)

    def run(self, *suites: str | Path | Suite) -> GateRun:
        """Gate the suites against the session's candidate and baseline (one model load per session)."""
        loaded = [s if isinstance(s, Suite) else load_suite(s) for s in suites]
        return run_gate(loaded, self.config, self._state.resolver())

    def assert_promoted(self, run: GateRun) -> None:
        """Fail the test, listing every blocking criterion, unless the run promotes the candidate."""
        __tracebackhide__ = True
        if run.verdict != "promoted":
            blocking = [d for d in run.decisions if d.blocks]
            detail = "\n".join(f"{d.suite}::{d.criterion}: {d.status}: {d.summary}" for d in blocking)
            pytest.fail(f"verdict {run.verdict}\n{detail}".strip(), pytrace=False)
