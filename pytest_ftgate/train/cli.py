"""`ftgate train` and `ftgate data check`: the trainer's face on the command line.

Reached only from the `ftgate` command (pytest_ftgate.cli): the gate never imports the trainer.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import EXIT_BLOCKED


def _train(args: argparse.Namespace) -> int:
    from .config import load_recipe, recipe_warnings

    recipe = load_recipe(args.recipe, args.set, method=args.method)
    if os.environ.get("RANK", "0") == "0":  # once, not once per process under accelerate or torchrun
        for warning in recipe_warnings(recipe):  # before any model loads: a wasted run costs more than a line
            print(f"warning: {warning.message}", flush=True)
    from .trainer import train

    result = train(recipe, resume=not args.no_resume)
    m = result.manifest
    if not result.main_process or m is None:
        return 0
    if result.steps_trained == 0 and result.resumed_from:
        print(f"nothing trained: {result.resumed_from} is already at the end of this run, so the adapter in "
              f"{result.output_dir} and its manifest are as that run left them (train loss {m.final_train_loss}, "
              f"{m.wall_s:.0f} s, {m.gpu_hours:.3f} GPU-hours). To train again from scratch, add --no-resume.")
    else:
        print(f"adapter: {result.output_dir} (train loss {m.final_train_loss}, eval loss {m.final_eval_loss}, "
              f"{m.wall_s:.0f} s, {m.gpu_hours:.3f} GPU-hours)")
    if args.gate:
        from dataclasses import replace

        from ..stores.manifest import write_manifest
        from .select import format_verdicts, gate_checkpoints, selection_record

        verdicts = gate_checkpoints(result.output_dir, Path(args.gate), m.base_model.path)
        for line in format_verdicts(verdicts):
            print(line)
        m = replace(m, gate_selection=selection_record(verdicts))
        write_manifest(result.output_dir, m)
        return 0 if m.gate_selection and m.gate_selection["best_passing"] else EXIT_BLOCKED
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from ..files.datacheck import check_data, summary_lines, write_outputs

    path = Path(args.data)
    report, rows, converted = check_data(path, Path(args.suites) if args.suites else None, args.near,
                                         label_key=args.label_key,
                                         production=Path(args.production) if args.production else None)
    for line in summary_lines(report, path):
        print(line)
    log = Path(args.rejected) if args.rejected else path.with_name(f"{path.stem}.rejected.jsonl")
    for out in write_outputs(report, rows, converted, path, log, args.split, args.seed):
        print(f"wrote {out}")
    return 0 if report.ok else EXIT_BLOCKED


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add `train` and `data` to the `ftgate` command's subcommands."""
    train = sub.add_parser("train", help="train a candidate adapter (QLoRA SFT or DPO) from a recipe")
    train.add_argument("method", choices=["sft", "dpo"])
    train.add_argument("recipe", help="recipe YAML, e.g. training/cpu-small.yaml")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe key, e.g. training.epochs=1")
    train.add_argument("--no-resume", action="store_true", help="start over even if output_dir holds checkpoints")
    train.add_argument("--gate", metavar="SUITES", help="gate every checkpoint on these suites and name the best that passes")
    train.set_defaults(func=_train)
    data = sub.add_parser("data", help="training data tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check_data = data_sub.add_parser("check", help="validate, dedupe, scan for PII and for leakage into the suites; "
                                                      "warn where the data leave the field guides' figures")
    check_data.add_argument("data", help="training JSONL")
    check_data.add_argument("--suites", help="suite directory to check for train/eval leakage (not checked without it)")
    check_data.add_argument("--near", type=float, default=0.8, help="near-duplicate Jaccard threshold (default 0.8)")
    check_data.add_argument("--rejected", help="rejected-rows log (default DATA.rejected.jsonl)")
    check_data.add_argument("--split", type=float, help="also write DATA.train.jsonl / DATA.eval.jsonl of clean rows")
    check_data.add_argument("--seed", type=int, default=42)
    check_data.add_argument("--label-key", metavar="KEY",
                            help="the answers are JSON objects and their field KEY is the row's label (default: the "
                                 "whole answer is the label when the answers take a few distinct values)")
    check_data.add_argument("--production", metavar="FILE",
                            help="production.jsonl from `ftgate logs import`: warn when the training labels' mix "
                                 "differs from production's (default: not compared)")
    check_data.set_defaults(func=_data_check)
