"""The run configuration, built in one place for every face: the pytest plugin, `ftgate gate` and
the trainer's checkpoint sweep all call `build_run_config` with option values keyed by the `dest`
of pytest_ftgate.options.OPTIONS.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import OptionError
from .options import INI_DEFAULTS, positive_int_arg

if TYPE_CHECKING:
    from .gate import Threshold


@dataclass(frozen=True)
class SubjectOptions:
    """How to build subjects (pytest_ftgate.subjects)."""

    base: str | None = None  # a local directory or a Hub id, overriding the adapter's own
    load_in_4bit: bool = False
    batch_size: int = 16
    openai_base_url: str | None = None  # None: $OPENAI_BASE_URL, else OpenAI's
    openai_concurrency: int = 8  # requests in flight per endpoint
    openai_timeout_s: float = 120.0  # per request, before it is retried
    openai_retries: int = 5  # after a 429, 5xx, timeout or connection error


@dataclass(frozen=True)
class RunConfig:
    """Everything a gate run needs besides the suites. Frozen: one per session."""

    candidate: str | None = None
    baseline: str | None = None
    subject_options: SubjectOptions = field(default_factory=SubjectOptions)
    suites_dir: Path = Path("suites")
    report_dir: Path | None = Path(".ftgate/report")
    cache_dir: Path | None = Path(".ftgate/cache")
    thresholds: tuple[tuple[Threshold, ...], ...] = ()  # override layers: ini, then command line
    update_goldens: bool = False
    progress: bool = True
    seed: int = 0
    rerun_check: int = 0  # greedy baseline cases generated twice before the gate: outputs must not differ
    pricing: Path | None = None  # None: the bundled defaults (pytest_ftgate/data/pricing.yaml)
    judge: str | None = None  # the judge of `kind: judge` suites: openai:MODEL or a local model dir
    judge_base_url: str | None = None  # its endpoint; None: the openai: subjects' endpoint

    @property
    def active(self) -> bool:
        """True when a subject was given: only then does the plugin do any work."""
        return bool(self.candidate or self.baseline)

    @property
    def all_thresholds(self) -> tuple[Threshold, ...]:
        return tuple(t for layer in self.thresholds for t in layer)


def build_run_config(
    values: Mapping[str, Any],
    root: Path,
    ini: Callable[[str], Any] | None = None,
    progress: bool = True,
) -> RunConfig:
    """A RunConfig from option values (keyed by dest), ini values, and the directory relative paths start from.

    Options win over ini keys, which win over the defaults. OptionError names the key at fault."""
    def get(name: str) -> Any:
        return values.get(name)

    def from_ini(key: str) -> Any:
        value = ini(key) if ini is not None else None
        return value if value not in (None, "", []) else INI_DEFAULTS[key]

    def path(value: str | Path | None) -> Path | None:
        if value in (None, ""):
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else root / p

    ini_fail: tuple[Threshold, ...] = ()
    if from_ini("ftgate_fail"):  # the threshold language (and the suite machinery) only when used
        from .gate import parse_thresholds

        try:
            ini_fail = parse_thresholds(from_ini("ftgate_fail"))
        except ValueError as exc:
            raise OptionError(f"ini key ftgate_fail: {exc}") from None

    def int_from_ini(key: str) -> int:
        try:
            return positive_int_arg(from_ini(key))
        except argparse.ArgumentTypeError as exc:
            raise OptionError(f"ini key {key}: {exc}") from None

    batch = get("ftgate_batch_size") or int_from_ini("ftgate_batch_size")
    concurrency = get("ftgate_openai_concurrency") or int_from_ini("ftgate_openai_concurrency")
    timeout, retries = get("ftgate_openai_timeout"), get("ftgate_openai_retries")
    openai_url = get("ftgate_openai_base_url") or None
    base = get("ftgate_base")
    base_local = path(base) if base else None
    return RunConfig(
        candidate=get("ftgate_candidate"),
        baseline=get("ftgate_baseline") or from_ini("ftgate_baseline") or None,
        subject_options=SubjectOptions(
            # a base that is not a local path is a Hub id, resolved later
            base=str(base_local) if base_local is not None and base_local.exists() else base,
            load_in_4bit=bool(get("ftgate_4bit")), batch_size=batch, openai_base_url=openai_url,
            openai_concurrency=concurrency,
            openai_timeout_s=SubjectOptions.openai_timeout_s if timeout is None else timeout,
            openai_retries=SubjectOptions.openai_retries if retries is None else retries,
        ),
        suites_dir=path(get("ftgate_suites") or from_ini("ftgate_suites")),
        report_dir=path(get("ftgate_report_dir") or from_ini("ftgate_report_dir")),
        cache_dir=None if get("ftgate_no_cache") else path(get("ftgate_cache_dir") or from_ini("ftgate_cache_dir")),
        thresholds=(ini_fail, tuple(get("ftgate_fail") or ())),
        update_goldens=bool(get("ftgate_update_goldens")),
        progress=progress,
        seed=get("ftgate_seed") or 0,
        rerun_check=get("ftgate_rerun_check") or 0,
        pricing=path(get("ftgate_pricing") or from_ini("ftgate_pricing")),
        judge=get("ftgate_judge") or None,
        judge_base_url=get("ftgate_judge_base_url") or os.environ.get("FTGATE_JUDGE_BASE_URL") or openai_url,
    )
