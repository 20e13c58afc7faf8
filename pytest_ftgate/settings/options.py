"""Every option of a gate run, declared once as an `Option`: its flag, its ini key and help, its
default, and the configuration field it sets. The gate's own options are below; each subject kind
declares its own (pytest_ftgate.subjects), and `config.all_options()` joins them. The pytest plugin
and `ftgate gate` register the same table, so a hint that names a flag is right in both, and
`config.build_run_config` reads it without a branch per option.

Light on purpose: `pytest --help` imports this and nothing heavier.
"""

from __future__ import annotations

import argparse
import difflib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..types import Threshold


# where a run reads and writes, relative to its root; written here once (the options, RunConfig, the CLI and
# the history store read them)
SUITES_DIR = "suites"
REPORT_DIR = ".ftgate/report"
CACHE_DIR = ".ftgate/cache"
HISTORY_FILE = ".ftgate/history.sqlite"


def threshold_arg(text: str) -> tuple[Threshold, ...]:
    """argparse `type=` converter for --ftgate-fail and its ini key: one threshold or a comma list."""
    from ..types import Threshold

    try:
        return Threshold.parse_list(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def names_arg(text: str) -> tuple[str, ...]:
    """argparse `type=` converter for a name or a comma list of names."""
    names = tuple(part.strip() for part in str(text).split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names nothing")
    return names


def positive_int_arg(text: str | int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def count_arg(text: str | int) -> int:
    """argparse `type=` converter for a count that may be 0 (e.g. retries)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def seconds_arg(text: str | float) -> float:
    """argparse `type=` converter for a positive duration in seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def positive_float_arg(text: str | float) -> float:
    """argparse `type=` converter for a positive number (a cost, a ratio)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0")
    return value


def bool_arg(text: str | bool) -> bool:
    """An ini value for a switch: true/false, yes/no, on/off, 1/0."""
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def history_path(value: str | Path | None, root: Path | None = None) -> Path | None:
    """Where the history store is: the option's value, else $FTGATE_HISTORY, else the default; None when `off`."""
    chosen = value if value not in (None, "") else os.environ.get("FTGATE_HISTORY") or HISTORY_FILE
    if str(chosen).lower() == "off":
        return None
    path = Path(chosen).expanduser()
    return path if path.is_absolute() or root is None else root / path


def as_path(value: Any, root: Path) -> Path | None:
    """A path relative to `root` (the ini file's directory, else where the run started)."""
    if value in (None, ""):
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else root / p


@dataclass(frozen=True)
class Option:
    """One option: its flag, where its value goes, its ini key, and how argparse reads it.

    The value of a run is the flag's, else the ini key's, else `default`: the one place a default is
    written. `field` names what it sets: a RunConfig field, or a subject option (for the options a
    subject kind declares). `convert` turns the value into the field's, given the directory relative
    paths start from. `layered`: the ini value and the flag's both apply, ini first (thresholds)."""

    flag: str
    dest: str
    help: str
    default: Any = None
    metavar: str | None = None
    type: Callable[[str], Any] | None = None
    action: str | None = None
    ini: str | None = None  # the ini key that sets it when the flag is not given
    ini_type: str = "string"
    ini_help: str = ""
    field: str = ""
    convert: Callable[[Any, Path], Any] | None = None
    layered: bool = False
    ini_relative: bool = False  # an ini value naming a path that exists beside the ini file is taken from there

    def argparse_kwargs(self) -> dict[str, Any]:
        # argparse's default says only "not given": the run's default is resolved with the ini key
        kwargs: dict[str, Any] = {"dest": self.dest, "help": self.help_text}
        kwargs["default"] = [] if self.action == "append" else False if self.action == "store_true" else None
        if self.action:
            kwargs["action"] = self.action
        if self.metavar and self.action not in ("store_true",):
            kwargs["metavar"] = self.metavar
        if self.type:
            kwargs["type"] = self.type
        return kwargs

    @property
    def help_text(self) -> str:
        """The help, with `{default}` filled from the one place the default is written."""
        return self.help.replace("{default}", f"{self.default:g}" if isinstance(self.default, float) else str(self.default))

    @property
    def ini_converter(self) -> Callable[[Any], Any] | None:
        """How an ini value (text) becomes the option's value."""
        if self.action == "store_true":
            return bool_arg
        return self.type


OPTIONS: tuple[Option, ...] = (
    Option("--candidate", "ftgate_candidate", field="candidate", metavar="SPEC",
           help="candidate to gate: PEFT adapter dir, model dir or Hub id, openai:MODEL or outputs .jsonl. Default: none (baseline only)"),
    Option("--baseline", "ftgate_baseline", field="baseline", metavar="SPEC", ini="ftgate_baseline", ini_relative=True,
           ini_help="default baseline spec (--baseline)",
           help="baseline: model dir or Hub id, openai:MODEL or outputs .jsonl. Default: ini ftgate_baseline, else the "
                "candidate adapter's base model"),
    Option("--ftgate-suites", "ftgate_suites", field="suites_dir", metavar="DIR", ini="ftgate_suites", default=SUITES_DIR,
           convert=as_path, ini_help="directory of suite YAML files (--ftgate-suites)",
           help="directory of suite YAML files gated when no path is given. Default: ini ftgate_suites or {default}"),
    Option("--ftgate-fail", "ftgate_fail", field="thresholds", metavar="TARGET:VALUE", action="append", type=threshold_arg,
           ini="ftgate_fail", ini_type="linelist", layered=True, ini_help="threshold overrides, one TARGET:VALUE per line",
           help="override a threshold, e.g. golden:5%% or routing:95%%, or several: golden:1%%,format:90%% (repeatable; "
                "TARGET is a kind or a suite name; wins over suite and ini). Default: none"),
    Option("--ftgate-update-goldens", "ftgate_update_goldens", field="update_goldens", action="store_true", default=False,
           help="freeze the cases the baseline passes as each golden suite's golden file. Default: off"),
    Option("--ftgate-allow-partial", "ftgate_allow_partial", field="allow_partial", action="store_true", default=False,
           ini="ftgate_allow_partial", ini_help="true: exit 0 on a run partial by selection (--ftgate-allow-partial)",
           help="exit 0, not 7, when the run is partial because criteria were deselected (-k, -m) or suites left out: for "
                "a selection made on purpose (a criterion that checked nothing still exits 7). The verdict still says "
                "partial. Default: off"),
    Option("--ftgate-report-dir", "ftgate_report_dir", field="report_dir", metavar="DIR", ini="ftgate_report_dir",
           default=REPORT_DIR, convert=as_path, ini_help="report directory (--ftgate-report-dir)",
           help="where report.json, report.md and report.html go. Default: ini ftgate_report_dir or {default}"),
    Option("--ftgate-report-format", "ftgate_report_format", field="report_formats", metavar="NAME", action="append",
           type=names_arg, convert=lambda v, root: tuple(n for part in v or () for n in part), ini="ftgate_report_formats",
           ini_type="linelist", ini_help="report formats written besides report.json (--ftgate-report-format)",
           help="a report format to write besides report.json, which is always written: markdown, html, github-summary, "
                "or one an installed package adds (repeatable, or a comma list). Default: ini ftgate_report_formats, "
                "else markdown, html and github-summary"),
    Option("--ftgate-cache-dir", "ftgate_cache_dir", field="cache_dir", metavar="DIR", ini="ftgate_cache_dir",
           default=CACHE_DIR, convert=as_path, ini_help="generation cache directory (--ftgate-cache-dir)",
           help="generation cache directory. Default: ini ftgate_cache_dir or {default}"),
    Option("--ftgate-no-cache", "ftgate_no_cache", field="no_cache", action="store_true", default=False,
           help="regenerate everything and store nothing. Default: off"),
    Option("--ftgate-history", "ftgate_history", field="history", metavar="FILE", ini="ftgate_history", convert=history_path,
           ini_help="the history store every gate run appends to (--ftgate-history)",
           help="the SQLite history store every gate run appends to (`ftgate history` lists it; the HTML report plots "
                "its trend); `off` for none. Default: ini ftgate_history, $FTGATE_HISTORY or " + HISTORY_FILE),
    Option("--ftgate-judge", "ftgate_judge", field="judge", metavar="SUBJECT",
           help="judge for `kind: judge` suites: openai:MODEL or a local model dir (the baseline's own model is loaded "
                "once). Default: the suite's judge.model"),
    Option("--ftgate-train-data", "ftgate_train_data", field="train_data", metavar="FILE", convert=as_path,
           help="the candidate's training data (JSONL), checked against the suites for leakage before anything "
                "generates. Default: the data its ftgate.json manifest names"),
    Option("--ftgate-require-leakage-check", "ftgate_require_leakage_check", field="require_leakage_check",
           action="store_true", default=False, ini="ftgate_require_leakage_check",
           ini_help="true: a candidate whose training data cannot be checked for leakage is an error",
           help="make a candidate whose training data cannot be checked for leakage (no manifest, the file missing or "
                "changed) an error (exit 6), not a note in the reports. Default: off"),
    Option("--ftgate-pricing", "ftgate_pricing", field="pricing", metavar="FILE", ini="ftgate_pricing", convert=as_path,
           ini_help="pricing YAML for the TCO report (--ftgate-pricing)",
           help="pricing YAML for the TCO report (copy the bundled one with `ftgate pricing > pricing.yaml` and edit "
                "it). Default: ini ftgate_pricing or the bundled, dated defaults"),
    Option("--ftgate-rerun-check", "ftgate_rerun_check", field="rerun_check", metavar="N", type=count_arg, default=0,
           help="first generate N greedy cases of the baseline twice, uncached; if the outputs differ, the serving "
                "stack is not deterministic and the gate stops with an error naming the cases. Default: 0 (off)"),
    Option("--ftgate-max-p95-latency-s", "ftgate_max_p95_latency_s", field="max_p95_latency_s", metavar="SECONDS",
           type=seconds_arg, ini="ftgate_max_p95_latency_s", ini_help="the run's p95 latency budget in seconds",
           help="block a subject whose p95 latency over all suites' requests is over SECONDS, and say inconclusive when "
                "its bootstrap interval straddles it (a suite may set its own: gate.max_p95_latency_s). Default: none"),
    Option("--ftgate-max-cost-per-1k", "ftgate_max_cost_per_1k", field="max_cost_per_1k", metavar="USD",
           type=positive_float_arg, ini="ftgate_max_cost_per_1k", ini_help="the run's cost budget, USD per 1k requests",
           help="block a subject whose serving cost per 1k requests (the TCO's figure) is over USD; inconclusive when "
                "its interval straddles it (per suite: gate.max_cost_per_1k). Default: none"),
    Option("--ftgate-max-cost-ratio", "ftgate_max_cost_ratio", field="max_cost_ratio", metavar="RATIO",
           type=positive_float_arg, ini="ftgate_max_cost_ratio", ini_help="the most the candidate may cost per request, "
           "as a multiple of the baseline's",
           help="block a candidate whose cost per request is over RATIO times the baseline's (1.0: no dearer); "
                "inconclusive when the paired interval straddles it (per suite: gate.max_cost_ratio). Default: none"),
    Option("--ftgate-seed", "ftgate_seed", field="seed", metavar="N", type=int, default=0,
           help="seed recorded in every report's provenance (sampling suites set theirs in generate.seed). Default: 0"),
)


def ini_keys(options: Iterable[Option]) -> dict[str, Option]:
    return {o.ini: o for o in options if o.ini}


def unknown_ini_keys(present: Iterable[str], options: Iterable[Option], prefix: str = "ftgate") -> list[str]:
    """Messages for ini keys that look like ours (start with `prefix`) but are not: a typo would be ignored."""
    known = ini_keys(options)
    problems = []
    for key in sorted(present):
        if key.lower().startswith(prefix) and key not in known:
            near = difflib.get_close_matches(key.lower(), list(known), n=1, cutoff=0.5)
            hint = f"did you mean {near[0]}?" if near else f"ftgate's ini keys are: {', '.join(sorted(known))}"
            problems.append(f"unknown ini key {key!r}: {hint} An unknown key is ignored by pytest, so a misspelled "
                            "threshold would gate nothing")
    return problems
