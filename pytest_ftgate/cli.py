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


def _train(args: argparse.Namespace) -> int:
    from .train.config import load_recipe

    recipe = load_recipe(args.recipe, args.set, method=args.method)
    from .train.trainer import train

    result = train(recipe, resume=not args.no_resume)
    if not result.main_process:
        return 0
    m = result.manifest
    print(f"adapter: {result.output_dir} (train loss {m['final_train_loss']}, eval loss {m['final_eval_loss']}, "
          f"{m['wall_s']:.0f} s, {m['gpu_hours']:.3f} GPU-hours)")
    if args.gate:
        import json

        from .train.select import format_verdicts, gate_checkpoints, selection_record

        verdicts = gate_checkpoints(result.output_dir, Path(args.gate), recipe.model.base)
        for line in format_verdicts(verdicts):
            print(line)
        m["gate_selection"] = selection_record(verdicts)
        (result.output_dir / "ftgate.json").write_text(json.dumps(m, indent=1, default=str) + "\n")
        return 0 if m["gate_selection"]["best_passing"] else EXIT_BLOCKED
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from .train.datacheck import check_data, summary_lines, write_outputs

    path = Path(args.data)
    report, rows, converted = check_data(path, Path(args.suites) if args.suites else None, args.near)
    for line in summary_lines(report, path):
        print(line)
    log = Path(args.rejected) if args.rejected else path.with_name(f"{path.stem}.rejected.jsonl")
    for out in write_outputs(report, rows, converted, path, log, args.split, args.seed):
        print(f"wrote {out}")
    return 0 if report.ok else EXIT_BLOCKED


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
    train = sub.add_parser("train", help="train a candidate adapter (QLoRA SFT or DPO) from a recipe")
    train.add_argument("method", choices=["sft", "dpo"])
    train.add_argument("recipe", help="recipe YAML, e.g. training/cpu-small.yaml")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe key, e.g. training.epochs=1")
    train.add_argument("--no-resume", action="store_true", help="start over even if output_dir holds checkpoints")
    train.add_argument("--gate", metavar="SUITES", help="gate every checkpoint on these suites and name the best that passes")
    train.set_defaults(func=_train)
    data = sub.add_parser("data", help="training data tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check_data = data_sub.add_parser("check", help="validate, dedupe, scan for PII and for leakage into the suites")
    check_data.add_argument("data", help="training JSONL")
    check_data.add_argument("--suites", help="suite directory to check for train/eval leakage")
    check_data.add_argument("--near", type=float, default=0.8, help="near-duplicate Jaccard threshold (default 0.8)")
    check_data.add_argument("--rejected", help="rejected-rows log (default DATA.rejected.jsonl)")
    check_data.add_argument("--split", type=float, help="also write DATA.train.jsonl / DATA.eval.jsonl of clean rows")
    check_data.add_argument("--seed", type=int, default=42)
    check_data.set_defaults(func=_data_check)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (FtgateError, ValueError) as exc:
        print(f"ftgate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
