"""The `ftgate` command: check suite files, or run a gate outside pytest.

    ftgate check suites/                       validate every suite file (exit 4 on errors)
    ftgate gate suites/ --candidate adapter/   evaluate and gate, write reports (exit 1 if blocked)

The trainer (`ftgate train`) and data checks (`ftgate data check`) plug in here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import FtgateError
from .suite import find_suite_files

EXIT_BLOCKED, EXIT_USAGE = 1, 4


def _check(args: argparse.Namespace) -> int:
    from .suite import load_suite

    bad = 0
    for f in find_suite_files(args.paths):
        try:
            s = load_suite(f)
            print(f"ok    {f}: {s.kind} suite {s.name!r}, {len(s.cases)} cases, scorers {[x.name for x in s.scorers]}")
        except FtgateError as exc:
            bad += 1
            print(f"error {exc}", file=sys.stderr)
    return EXIT_USAGE if bad else 0


def _gate(args: argparse.Namespace) -> int:
    from .gate import parse_thresholds
    from .report import terminal_lines, write_reports
    from .runner import RunConfig, run_gate
    from .subjects import SubjectOptions
    from .suite import load_suite

    suites = [load_suite(f) for f in find_suite_files(args.paths)]
    config = RunConfig(
        candidate=args.candidate,
        baseline=args.baseline,
        subject_options=SubjectOptions(base=Path(args.base) if args.base else None, load_in_4bit=args.four_bit, batch_size=args.batch_size),
        cache_dir=None if args.no_cache else Path(args.cache_dir),
        thresholds=(parse_thresholds(args.fail),),
        update_goldens=args.update_goldens,
        pricing=Path(args.pricing) if args.pricing else None,
    )
    run = run_gate(suites, config)
    for line in terminal_lines(run, verbose=args.verbose):
        print(line)
    for p in write_reports(run, Path(args.report_dir)):
        print(f"report: {p}")
    return EXIT_BLOCKED if run.blocked else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ftgate", description="Fine-tuning as test-driven development.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate suite files")
    check.add_argument("paths", nargs="+", help="suite files or directories")
    check.set_defaults(func=_check)
    gate = sub.add_parser("gate", help="evaluate baseline and candidate on suites and gate the candidate")
    gate.add_argument("paths", nargs="+", help="suite files or directories")
    gate.add_argument("--candidate")
    gate.add_argument("--baseline")
    gate.add_argument("--base", help="local base model for the adapter")
    gate.add_argument("--fail", action="append", default=[], help="threshold override, e.g. golden:5%%")
    gate.add_argument("--update-goldens", action="store_true")
    gate.add_argument("--report-dir", default=".ftgate/report")
    gate.add_argument("--cache-dir", default=".ftgate/cache")
    gate.add_argument("--no-cache", action="store_true")
    gate.add_argument("--4bit", dest="four_bit", action="store_true")
    gate.add_argument("--batch-size", type=int, default=16)
    gate.add_argument("--pricing", help="pricing YAML for the TCO report (default: bundled, dated prices)")
    gate.add_argument("-v", "--verbose", action="count", default=0)
    gate.set_defaults(func=_gate)
    from .train.cli import add_parsers

    add_parsers(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (FtgateError, ValueError) as exc:
        print(f"ftgate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
