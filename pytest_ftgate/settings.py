"""Frozen settings of one session, derived from pytest options and ini keys (or built by hand)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from .gate import Threshold, parse_threshold, parse_thresholds
from .runner import RunConfig
from .subjects import SubjectOptions


@dataclass(frozen=True)
class Settings:
    candidate: str | None
    baseline: str | None
    base: Path | None
    suites_dir: Path
    report_dir: Path
    cache_dir: Path | None  # None: --ftgate-no-cache
    ini_thresholds: tuple[Threshold, ...]
    cli_thresholds: tuple[Threshold, ...]
    update_goldens: bool
    load_in_4bit: bool
    batch_size: int
    openai_base_url: str | None
    seed: int
    progress: bool
    pricing: Path | None = None

    @property
    def active(self) -> bool:
        """True when a subject was given: only then does the plugin do any work."""
        return bool(self.candidate or self.baseline)

    def run_config(self) -> RunConfig:
        return RunConfig(
            candidate=self.candidate,
            baseline=self.baseline,
            subject_options=SubjectOptions(
                base=self.base, load_in_4bit=self.load_in_4bit, batch_size=self.batch_size,
                openai_base_url=self.openai_base_url,
            ),
            cache_dir=self.cache_dir,
            thresholds=(self.ini_thresholds, self.cli_thresholds),
            update_goldens=self.update_goldens,
            progress=self.progress,
            seed=self.seed,
            pricing=self.pricing,
        )


def threshold_arg(text: str) -> Threshold:
    """argparse `type=` converter for --ftgate-fail."""
    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def ini_thresholds(lines: list[str]) -> tuple[Threshold, ...]:
    return parse_thresholds(lines)
