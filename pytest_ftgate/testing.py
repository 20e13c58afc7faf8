"""Helpers for hand-written tests (the `ftgate` fixture)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from .runner import GateRun, run_gate
from .settings import Settings
from .suite import Suite, load_suite


class FtgateHelper:
    """Load suites, run them against the session's subjects and assert their gates."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def suite(self, path: str | Path) -> Suite:
        return load_suite(path)

    def run(self, *suites: str | Path | Suite, candidate: str | None = None, baseline: str | None = None) -> GateRun:
        loaded: Sequence[Suite] = [s if isinstance(s, Suite) else load_suite(s) for s in suites]
        config = self.settings.run_config()
        config = replace(config, candidate=candidate or config.candidate, baseline=baseline or config.baseline)
        return run_gate(loaded, config)

    def assert_promoted(self, run: GateRun) -> None:
        """Fail the test, listing every blocking criterion, unless the run promotes the candidate."""
        __tracebackhide__ = True
        blocking = [d for d in run.decisions if d.blocks]
        if blocking:
            pytest.fail("\n".join(f"{d.suite}::{d.criterion}: {d.status}: {d.summary}" for d in blocking), pytrace=False)
