"""Every option of a gate run, declared once: the pytest plugin registers them with their ini keys,
and `ftgate gate` registers the same flags, so a hint that names a flag is right in both.

Light on purpose: `pytest --help` imports this and nothing heavier.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .gate import Threshold


def threshold_arg(text: str) -> Threshold:
    """argparse `type=` converter for --ftgate-fail."""
    from .gate import parse_threshold

    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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


@dataclass(frozen=True)
class Option:
    """One option: its flag, where its value goes, its ini key, and how argparse reads it."""

    flag: str
    dest: str
    help: str
    default: Any = None
    metavar: str | None = None
    type: Callable[[str], Any] | None = None
    action: str | None = None
    ini: str | None = None  # the ini key that sets it when the flag is not given
    ini_type: str = "string"

    def argparse_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"dest": self.dest, "help": self.help, "default": self.default}
        if self.action:
            kwargs["action"] = self.action
        if self.metavar and self.action not in ("store_true",):
            kwargs["metavar"] = self.metavar
        if self.type:
            kwargs["type"] = self.type
        return kwargs


OPTIONS: tuple[Option, ...] = (
    Option("--candidate", "ftgate_candidate", metavar="SPEC",
           help="candidate to gate: PEFT adapter dir, model dir or Hub id, openai:MODEL or outputs .jsonl. Default: none (baseline only)"),
    Option("--baseline", "ftgate_baseline", metavar="SPEC", ini="ftgate_baseline",
           help="baseline: model dir or Hub id, openai:MODEL or outputs .jsonl. Default: the candidate adapter's base model"),
    Option("--ftgate-base", "ftgate_base", metavar="DIR_OR_ID",
           help="base model for the adapter (a directory or a Hub id in the cache), overriding adapter_config.json. Default: from the adapter"),
    Option("--ftgate-suites", "ftgate_suites", metavar="DIR", ini="ftgate_suites",
           help="directory of suite YAML files gated when no path is given. Default: ini ftgate_suites or suites"),
    Option("--ftgate-fail", "ftgate_fail", metavar="TARGET:VALUE", action="append", type=threshold_arg, default=[],
           ini="ftgate_fail", ini_type="linelist",
           help="override a threshold, e.g. golden:5%% or routing:95%% (repeatable; TARGET is a kind or a suite name; wins over suite and ini). Default: none"),
    Option("--ftgate-update-goldens", "ftgate_update_goldens", action="store_true", default=False,
           help="freeze the cases the baseline passes as each golden suite's golden file. Default: off"),
    Option("--ftgate-report-dir", "ftgate_report_dir", metavar="DIR", ini="ftgate_report_dir",
           help="where report.json, report.md and report.html go. Default: ini ftgate_report_dir or .ftgate/report"),
    Option("--ftgate-cache-dir", "ftgate_cache_dir", metavar="DIR", ini="ftgate_cache_dir",
           help="generation cache directory. Default: ini ftgate_cache_dir or .ftgate/cache"),
    Option("--ftgate-no-cache", "ftgate_no_cache", action="store_true", default=False,
           help="regenerate everything and store nothing. Default: off"),
    Option("--ftgate-4bit", "ftgate_4bit", action="store_true", default=False,
           help="load local models in 4-bit NF4 (bitsandbytes). Default: off"),
    Option("--ftgate-batch-size", "ftgate_batch_size", metavar="N", type=positive_int_arg, ini="ftgate_batch_size",
           help="generation batch size for local models; latency and cost are measured at it. Default: ini ftgate_batch_size or 16"),
    Option("--ftgate-openai-base-url", "ftgate_openai_base_url", metavar="URL",
           help="base URL of the OpenAI-compatible endpoint for openai: subjects (the key comes from $OPENAI_API_KEY; "
                "neither is ever shown). Default: $OPENAI_BASE_URL, else https://api.openai.com/v1"),
    Option("--ftgate-openai-concurrency", "ftgate_openai_concurrency", metavar="N", type=positive_int_arg,
           ini="ftgate_openai_concurrency",
           help="requests in flight at once to each OpenAI-compatible endpoint (candidate, baseline, judge). "
                "Default: ini ftgate_openai_concurrency or 8"),
    Option("--ftgate-openai-timeout", "ftgate_openai_timeout", metavar="S", type=seconds_arg,
           help="seconds to wait for one endpoint reply before it counts as failed and is retried. Default: 120"),
    Option("--ftgate-openai-retries", "ftgate_openai_retries", metavar="N", type=count_arg,
           help="retries of a request after a 429, 5xx, timeout or connection error, with backoff and jitter "
                "(Retry-After honoured). Default: 5"),
    Option("--ftgate-judge", "ftgate_judge", metavar="SUBJECT",
           help="judge for `kind: judge` suites: openai:MODEL or a local model dir. Default: none"),
    Option("--ftgate-judge-base-url", "ftgate_judge_base_url", metavar="URL",
           help="base URL of the judge's OpenAI-compatible endpoint. Default: $FTGATE_JUDGE_BASE_URL, else the "
                "openai: subjects' endpoint (--ftgate-openai-base-url, $OPENAI_BASE_URL)"),
    Option("--ftgate-pricing", "ftgate_pricing", metavar="FILE", ini="ftgate_pricing",
           help="pricing YAML for the TCO report. Default: ini ftgate_pricing or the bundled, dated defaults"),
    Option("--ftgate-rerun-check", "ftgate_rerun_check", metavar="N", type=count_arg, default=0,
           help="first generate N greedy cases of the baseline twice, uncached; if the outputs differ, the serving "
                "stack is not deterministic and the gate stops with an error naming the cases. Default: 0 (off)"),
    Option("--ftgate-seed", "ftgate_seed", metavar="N", type=int, default=0,
           help="seed recorded in every report's provenance (sampling suites set theirs in generate.seed). Default: 0"),
)
INI_DEFAULTS = {
    "ftgate_suites": "suites", "ftgate_report_dir": ".ftgate/report", "ftgate_cache_dir": ".ftgate/cache",
    "ftgate_batch_size": "16", "ftgate_baseline": "", "ftgate_pricing": "", "ftgate_fail": [],
    "ftgate_openai_concurrency": "8",
}


