"""The run configuration, built in one place for every face: the pytest plugin, `ftgate gate` and
the trainer's checkpoint sweep all call `build_run_config`. It reads the one option table
(`all_options()`: the gate's own options, then each subject kind's) without a branch per option.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import OptionError
from .options import CACHE_DIR, OPTIONS, REPORT_DIR, SUITES_DIR, Option
from ..subjects.base import SubjectOptions, subject_kinds

if TYPE_CHECKING:
    from ..types import Threshold

__all__ = ["RunConfig", "SubjectOptions", "all_options", "build_run_config"]


def all_options() -> tuple[Option, ...]:
    """The gate's options, then those each subject kind declares (ours and installed extensions')."""
    return OPTIONS + tuple(o for cls in subject_kinds().values() for o in cls.options)


@dataclass(frozen=True)
class RunConfig:
    """Everything a gate run needs besides the suites. Frozen: one per session."""

    candidate: str | None = None
    baseline: str | None = None
    subject_options: SubjectOptions = field(default_factory=SubjectOptions)
    suites_dir: Path = Path(SUITES_DIR)
    report_dir: Path | None = Path(REPORT_DIR)
    cache_dir: Path | None = Path(CACHE_DIR)
    report_formats: tuple[str, ...] = ()  # besides report.json; () for the defaults (report/formats.py)
    thresholds: tuple[tuple[Threshold, ...], ...] = ()  # override layers: ini, then command line
    update_goldens: bool = False
    allow_partial: bool = False  # a partial run exits 0 (a selection made on purpose)
    progress: bool = True
    seed: int = 0
    rerun_check: int = 0  # greedy baseline cases generated twice before the gate: outputs must not differ
    pricing: Path | None = None  # None: the bundled defaults (pytest_ftgate/data/pricing.yaml)
    judge: str | None = None  # the judge of `kind: judge` suites: a subject spec (openai:MODEL, a model dir)
    history: Path | None = None  # the history store gate runs append to (the plugin and `ftgate gate`); None: off
    train_data: Path | None = None  # the candidate's training data, when its manifest does not name it
    require_leakage_check: bool = False  # leakage that cannot be checked is an error, not a note
    max_p95_latency_s: float | None = None  # serving budgets over every suite's requests (cost.budgets)
    max_cost_per_1k: float | None = None
    max_cost_ratio: float | None = None

    @property
    def active(self) -> bool:
        """True when a subject was given: only then does the plugin do any work."""
        return bool(self.candidate or self.baseline)

    @property
    def all_thresholds(self) -> tuple[Threshold, ...]:
        return tuple(t for layer in self.thresholds for t in layer)


def _from_ini(option: Option, ini: Callable[[str], Any] | None) -> Any:
    """The ini key's value, converted as the flag's would be; None when unset. Errors name the key."""
    if ini is None or option.ini is None:
        return None
    raw = ini(option.ini)
    if raw in (None, "", []):
        return None
    convert = option.ini_converter
    try:
        if option.ini_type == "linelist":  # each line converted as one flag value is
            return [convert(str(line)) if convert else str(line) for line in raw if str(line).strip()]
        return convert(raw) if convert else raw
    except argparse.ArgumentTypeError as exc:
        raise OptionError(f"ini key {option.ini}: {exc}") from None


def build_run_config(
    values: Mapping[str, Any],
    root: Path,
    ini: Callable[[str], Any] | None = None,
    progress: bool = True,
    **overrides: Any,
) -> RunConfig:
    """A RunConfig from option values (keyed by dest), ini values, and the directory relative paths start from.

    The flag wins over the ini key, which wins over the option's default. `overrides` set fields by
    name (`candidate=...`), for callers that build a run in code. OptionError names the key at fault."""
    run_fields = {f.name for f in fields(RunConfig)}
    subject_fields: dict[str, Any] = {}
    chosen: dict[str, Any] = {}
    for option in all_options():
        given = values.get(option.dest)
        from_ini = _from_ini(option, ini)
        if option.ini_relative and isinstance(from_ini, str) and (root / from_ini).exists():
            from_ini = str(root / from_ini)  # written beside the ini file, meant from there
        if option.layered:  # both apply, ini first (thresholds); each value read is a tuple of them
            value: Any = tuple(tuple(item for part in layer or () for item in part) for layer in (from_ini, given))
        else:
            unset = given is None or given is False or (isinstance(given, (list, str)) and not given)  # 0 is a value
            value = from_ini if unset and from_ini is not None else option.default if unset else given
            if option.convert is not None:
                value = option.convert(value, root)
        target = subject_fields if option.field not in run_fields and option.field != "no_cache" else chosen
        target[option.field] = value
    unknown = sorted(set(overrides) - run_fields - set(subject_fields) - {"no_cache"})
    if unknown:
        raise TypeError(f"build_run_config() got unknown field(s) {', '.join(unknown)}")
    by_field = {o.field: o for o in all_options()}
    for name, value in overrides.items():
        option = by_field.get(name)
        if option is not None and option.convert is not None and isinstance(value, str):
            value = option.convert(value, root)
        (subject_fields if name in subject_fields else chosen)[name] = value
    if chosen.pop("no_cache", False):
        chosen["cache_dir"] = None
    chosen["baseline"] = chosen.get("baseline") or None
    chosen["judge"] = chosen.get("judge") or None
    return RunConfig(subject_options=SubjectOptions(subject_fields), progress=progress, **chosen)
