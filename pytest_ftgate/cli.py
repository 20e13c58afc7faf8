"""The `ftgate` command: check suite files, or run a gate outside pytest.

    ftgate check suites/                         validate every suite file (exit 4 on errors)
    ftgate gate suites/ --candidate=adapter/     evaluate and gate, write reports

`ftgate gate` takes the same options as the pytest plugin (pytest_ftgate.options), and exits as
pytest does: 0 promoted, 1 blocked, 4 bad suites or options, 6 the gate could not run. The
trainer (`ftgate train`) and data checks (`ftgate data check`) plug in from pytest_ftgate.train.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import EXIT_BLOCKED, EXIT_GATE_ERROR, EXIT_USAGE, FtgateError
from .options import OPTIONS


def _check(args: argparse.Namespace) -> int:
    from .suite import find_suite_files, load_suite

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
    from .config import build_run_config
    from .report import build_view, terminal_lines, write_reports
    from .runner import run_gate
    from .suite import find_suite_files, load_suite

    config = build_run_config(vars(args), Path.cwd())
    suites = [load_suite(f) for f in find_suite_files(args.paths)]
    run = run_gate(suites, config)
    view = build_view(run)
    for line in terminal_lines(view, verbose=args.verbose):
        print(line)
    if config.report_dir is not None:
        for p in write_reports(view, config.report_dir):
            print(f"report: {p}")
    return {"error": EXIT_GATE_ERROR, "blocked": EXIT_BLOCKED}.get(run.verdict, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ftgate", description="Fine-tuning as test-driven development.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate suite files")
    check.add_argument("paths", nargs="+", help="suite files or directories")
    check.set_defaults(func=_check)
    gate = sub.add_parser("gate", help="evaluate baseline and candidate on suites and gate the candidate")
    gate.add_argument("paths", nargs="+", help="suite files or directories")
    for option in OPTIONS:
        gate.add_argument(option.flag, **option.argparse_kwargs())
    gate.add_argument("-v", "--verbose", action="count", default=0, help="show every flipped case")
    gate.set_defaults(func=_gate)
    from .train.cli import add_parsers

    add_parsers(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except FtgateError as exc:
        kind = "the gate could not run" if exc.exit_code == EXIT_GATE_ERROR else "error"
        print(f"ftgate: {kind}: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
