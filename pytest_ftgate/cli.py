"""The `ftgate` command: check suite files, or run a gate outside pytest.

    ftgate check suites/                         validate every suite file (exit 4 on errors)
    ftgate gate suites/ --candidate=adapter/     evaluate and gate, write reports
    ftgate human export|import ...               blind human evaluation (pytest_ftgate.human.export)
    ftgate suite import FILE --format F --out S  an attack set you hold, as a suite (pytest_ftgate.importers.attack_sets)
    ftgate pricing > pricing.yaml                the bundled prices, to edit and pass as --ftgate-pricing
    ftgate promote REPORT.json                   record what ships: later gates compare against it
    ftgate export ADAPTER OUT                    merge an adapter into a full model, gated for agreement with it
    ftgate history / ftgate compare A B          the runs so far; the cases that flipped between two reports
    ftgate logs import LOGS --format F --out D   production logs in: a shadow run, failures, failure modes

`ftgate gate` takes the same options as the pytest plugin (pytest_ftgate.settings.options), and exits as
pytest does: 0 promoted, 1 blocked, 4 bad suites or options, 6 the gate could not run, 7 partial. The
trainer (`ftgate train`) and data checks (`ftgate data check`) plug in from pytest_ftgate.train.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import EXIT_GATE_ERROR, EXIT_USAGE, FtgateError, internal_error
from .settings.extensions import load_all
from .settings.options import HISTORY_FILE, SUITES_DIR


def _check(args: argparse.Namespace) -> int:
    from .gating.suite import find_suite_files, load_suite

    bad = 0
    # each directory named is checked as a suites directory: every YAML file in it is a suite
    files = [f for p in map(Path, args.paths) for f in find_suite_files([p], p if p.is_dir() else None)]
    for f in files:
        try:
            s = load_suite(f)
            print(f"ok    {f}: {s.kind} suite {s.name!r}, {len(s.cases)} cases, scorers {[x.name for x in s.scorers]}")
        except FtgateError as exc:
            bad += 1
            print(f"error {exc}", file=sys.stderr)
            continue
        judge = s.options.get("judge")
        if judge is not None and not judge.model:
            print(f"note  {f}: no judge.model: gating this suite needs --ftgate-judge=SUBJECT (there is no default judge)")
    return EXIT_USAGE if bad else 0


def _gate(args: argparse.Namespace) -> int:
    from .settings.config import build_run_config
    from .report import publish, terminal_lines
    from .report.formats import chosen_formats
    from .gating.runner import run_gate
    from .gating.suite import find_suite_files, load_suite

    overrides = {}
    if args.ftgate_suites is None and len(args.paths) == 1 and Path(args.paths[0]).is_dir():
        overrides["suites_dir"] = Path(args.paths[0])  # `ftgate gate DIR`: DIR is the project's suites directory
    config = build_run_config(vars(args), Path.cwd(), **overrides)
    chosen_formats(config.report_formats)  # a report format named wrong stops the gate before any work
    suites = [load_suite(f) for f in find_suite_files(args.paths, config.suites_dir)]
    run = run_gate(suites, config)
    view, paths = publish(run, config)
    for line in terminal_lines(view, verbose=args.verbose):
        print(line)
    for p in paths:
        print(f"report: {p}")
    return run.exit_status(config.allow_partial)


def _promote(args: argparse.Namespace) -> int:
    """Record the candidate of a promoted run as what ships; later gates compare against it by default."""
    import hashlib
    import os

    from .errors import GateRunError, OptionError, SubjectError
    from .machine.provenance import git_commit
    from .stores.cache import Cache
    from .gating.contract import golden_origins, shipped_prompts
    from .stores.promotion import Promotion, now, read_promotion, relative_spec, write_promotion
    from .subjects import Resolver, SubjectOptions, subject_option_fields
    from .report.record import read_report
    from .subjects.endpoint.client import strip_credentials

    report = Path(args.report)
    data = read_report(report)
    verdict, candidate = data["verdict"], (data["subjects"] or {}).get("candidate")
    suites = Path(args.suites)
    if not suites.is_dir():
        raise OptionError(f"--suites={suites}: no such directory; the record is written beside the suites it gated")
    from .gating.contract import Breach, refusal, report_breaches, same_model
    from .settings.options import history_path

    breaches = report_breaches(data, report, suites, history_path(args.history), read_promotion(suites))
    if verdict != "promoted" or candidate is None:
        why = "\n" + refusal(report, breaches) if breaches else ""
        raise OptionError(f"{report}: its verdict is {verdict!r}, not 'promoted': only a run that gated every criterion, "
                          f"passed, and met the promotion contract may be promoted{why}")
    if breaches:
        raise OptionError(refusal(report, breaches))
    details = candidate.get("details") or {}
    fields = subject_option_fields()
    options = {k: details[d] for k, d in (("base", "base_model"), ("load_in_4bit", "load_in_4bit"),
                                           ("openai_base_url", "base_url")) if k in fields and d in details}
    if strip_credentials(os.environ.get("OPENAI_BASE_URL", "")) == options.get("openai_base_url"):
        options["openai_base_url"] = os.environ["OPENAI_BASE_URL"]  # the same endpoint, with the credentials it needs
    spec = candidate.get("spec") or candidate["name"]
    try:
        found = Resolver(SubjectOptions(options), Cache(None)).build(spec, "candidate").info
    except (SubjectError, GateRunError) as exc:
        raise OptionError(f"{report}: its candidate cannot be found again ({exc}); promote from where it was gated") from None
    changed = same_model(f"the candidate {candidate['name']}", "that was gated", candidate["fingerprint"],
                         details.get("served"), found)
    if changed is not None:
        raise OptionError(refusal(report, [Breach(changed.clause, changed.reason + ". Gate it again, then promote that run")]))
    earlier = read_promotion(suites)
    previous = ([{k: v for k, v in earlier.to_json().items() if k != "previous"}, *earlier.previous] if earlier else [])
    record = Promotion(
        spec=relative_spec(spec, suites.resolve()), kind=candidate["kind"], name=candidate["name"],
        fingerprint=candidate["fingerprint"],
        report={"path": relative_spec(str(report.resolve()), suites.resolve()),
                "sha256": hashlib.sha256(report.read_bytes()).hexdigest(), "verdict": verdict,
                "finished_at": (data.get("run") or {}).get("finished_at")},
        promoted_at=now(), git_commit=git_commit(), base_model=details.get("base_model"), previous=previous,
        prompts=shipped_prompts(suites), origins=golden_origins(suites), served=details.get("served"),
        export=_export_of(args.export, candidate) if args.export else None)
    path = write_promotion(suites, record)
    from .stores.history import mark_promoted

    mark_promoted(args.history, report, record, suites)
    print(f"promoted {candidate['name']} (fingerprint {candidate['fingerprint'][:12]}); wrote {path}")
    if earlier:
        print(f"  it replaces {earlier.name}, promoted {earlier.promoted_at} (kept in the record's `previous`)")
    print("next:")
    print(f"  git add {path}        # later gates compare against it by default (--baseline=base: the base model)")
    print(f"  pytest {suites} --baseline=promoted --ftgate-update-goldens   # goldens follow production: re-freeze them")
    print("     on the promoted model (the first frozen goldens stay in the golden file, to bound drift), review and commit")
    return 0


def _history(args: argparse.Namespace) -> int:
    import json

    from .settings.options import history_path
    from .stores.history import runs

    path = history_path(args.history)
    if path is None:
        print("ftgate: the history store is off (FTGATE_HISTORY=off)", file=sys.stderr)
        return EXIT_USAGE
    found = runs(path, args.suite, args.limit)
    if args.json:
        print(json.dumps(found, indent=1))
        return 0
    if not found:
        print(f"no gate runs recorded in {path}" + (f" for suite {args.suite}" if args.suite else ""))
        return 0
    print(f"{'run':>4}  {'finished':<25} {'verdict':<13} {'candidate':<28} {'against':<28} suites")
    for r in found:
        cells = ", ".join(f"{s['suite']} {_measure(s)} {s['decision']}" + (f" ({s['regressions']} regressed)" if s["regressions"] else "")
                          for s in r["suites"])
        mark = "*" if r["promoted"] else " "
        cand = _clip(r["candidate"] or "(baseline only)", 28)
        against = _clip(r["baseline"], 28) if r["candidate"] else ""
        print(f"{r['id']:>4}{mark} {r['finished_at']:<25} {r['verdict']:<13} {cand:<28} {against:<28} {cells}")
    print("* promoted (ftgate promote); `against` is the baseline each candidate was gated against")
    return 0


def _share(text: str) -> float:
    """argparse `type=` for a share of rows: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a share from 0 to 1 (0.2 for 20%), got {text}")
    return value


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _measure(s: dict) -> str:
    value = s["candidate"] if s["candidate"] is not None else s["baseline"]
    return f"{s['measure']} {'—' if value is None else f'{100 * value:.1f}%'}"


def _compare(args: argparse.Namespace) -> int:
    import json

    from .report.diff import compare_reports, diff_json, diff_lines

    diffs = compare_reports(Path(args.a), Path(args.b))
    print(json.dumps(diff_json(diffs), indent=1) if args.json else "\n".join(diff_lines(diffs, Path(args.a), Path(args.b))))
    return 0


def _logs_import(args: argparse.Namespace) -> int:
    from .importers.logs import import_lines, import_logs

    result = import_logs(args.logs, args.format, args.out, train_out=args.train_out, field_name=args.field,
                         low_confidence=args.low_confidence, clusters=args.clusters, seed=args.seed, force=args.force,
                         max_rejected=args.max_rejected)
    print("\n".join(import_lines(result, Path(args.logs))))
    return 0


def _export_of(out: str, candidate: dict) -> dict:
    """What a promotion records of an accepted export of the promoted adapter."""
    from .errors import OptionError
    from .gating.export import read_export

    record = read_export(Path(out))
    if record["verdict"] != "accepted":
        raise OptionError(f"--export {out}: that export was refused ({'; '.join(record.get('why') or [])}); "
                          "an export is recorded with a promotion only once it agrees with the adapter")
    if record["adapter_fingerprint"] != candidate["fingerprint"]:
        raise OptionError(f"--export {out}: it was exported from another adapter (fingerprint "
                          f"{record['adapter_fingerprint'][:12]}) than the candidate promoted ({candidate['fingerprint'][:12]})")
    return {"path": str(Path(out).resolve()), "fingerprint": record["fingerprint"], "dtype": record["dtype"],
            "agreement": record["agreement"]}


def _export(args: argparse.Namespace) -> int:
    from .gating.export import export_adapter, export_lines

    result = export_adapter(Path(args.adapter), Path(args.out), suites_dir=Path(args.suites), dtype=args.dtype,
                            base=args.base, min_agreement=args.min_agreement)
    print("\n".join(export_lines(result)))
    return 0 if result.accepted else 1


def _pricing(args: argparse.Namespace) -> int:
    from .cost.pricing import DEFAULT_PRICING

    sys.stdout.write(DEFAULT_PRICING.read_text(encoding="utf-8"))
    return 0


def _human_export(args: argparse.Namespace) -> int:
    from .human.export import export_lines, export_sheet

    result = export_sheet(Path(args.report), Path(args.out), suites=args.suite, seed=args.seed,
                          only_flips=args.only_flips)
    print("\n".join(export_lines(result)))
    return 0


def _human_import(args: argparse.Namespace) -> int:
    from .human.ratings import import_lines, import_ratings

    result = import_ratings(list(map(Path, args.ratings)), Path(args.key), Path(args.suites) if args.suites else None)
    print("\n".join(import_lines(result)))
    return 0


def _suite_import(args: argparse.Namespace) -> int:
    from .importers.attack_sets import import_attack_set, import_lines

    result = import_attack_set(args.file, args.format, args.out, include_harmful=args.include_harmful, benign=args.benign,
                               expect=args.expect, seed=args.seed, force=args.force)
    print("\n".join(import_lines(result)))
    return 0


def main(argv: list[str] | None = None) -> int:
    from .importers import attack_sets
    from .importers import logs as log_import

    parser = argparse.ArgumentParser(prog="ftgate", description="Fine-tuning as test-driven development.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate suite files")
    check.add_argument("paths", nargs="+", help="suite files or directories")
    check.set_defaults(func=_check)
    gate = sub.add_parser("gate", help="evaluate baseline and candidate on suites and gate the candidate")
    gate.add_argument("paths", nargs="+", help="suite files or directories")
    from .settings.config import all_options

    for option in all_options():
        gate.add_argument(option.flag, **option.argparse_kwargs())
    gate.add_argument("-v", "--verbose", action="count", default=0, help="show every flipped case")
    gate.set_defaults(func=_gate)
    promote = sub.add_parser("promote", help="record a promoted run's candidate as what ships (suites/ftgate.promoted.json)")
    promote.add_argument("report", help="report.json of a gate run whose verdict was promoted")
    promote.add_argument("--suites", default=SUITES_DIR, help=f"the suites directory the record goes in. Default: {SUITES_DIR}")
    promote.add_argument("--export", metavar="DIR", help="an accepted `ftgate export` of the candidate adapter, recorded "
                         "with the promotion (its fingerprint and agreement)")
    promote.add_argument("--history", default=None,
                         help=f"the history store to mark the promotion in. Default: $FTGATE_HISTORY or {HISTORY_FILE}")
    promote.set_defaults(func=_promote)
    history = sub.add_parser("history", help="the gate runs recorded so far, newest first")
    history.add_argument("--suite", help="only runs of this suite, with its measure")
    history.add_argument("--json", action="store_true", help="print the runs as JSON")
    history.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    history.add_argument("--history", default=None, help=f"the history store. Default: $FTGATE_HISTORY or {HISTORY_FILE}")
    history.set_defaults(func=_history)
    compare = sub.add_parser("compare", help="the cases whose verdict differs between two gate reports, per suite")
    compare.add_argument("a", help="report.json of one run")
    compare.add_argument("b", help="report.json of another run")
    compare.add_argument("--json", action="store_true", help="print the differences as JSON")
    compare.set_defaults(func=_compare)
    logs = sub.add_parser("logs", help="production logs in: a shadow run, failures as cases, failure modes")
    logs_sub = logs.add_subparsers(dest="logs_command", required=True)
    limport = logs_sub.add_parser("import", help="write a shadow suite, production's outputs, failures and failure modes",
                                  description=(log_import.__doc__ or "").split("\n\n")[1],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    limport.add_argument("logs", help="the JSONL of logged requests")
    limport.add_argument("--format", required=True, choices=log_import.FORMATS, help="how each line is written")
    limport.add_argument("--out", required=True, help="the directory to write the suites and production.jsonl to")
    limport.add_argument("--train-out", help="also write the corrections as training rows (half of them; the other half "
                                             "are eval cases, kept apart by a leakage check)")
    limport.add_argument("--field", help="the JSON field to agree on (default: found in production's answers, else the text)")
    limport.add_argument("--low-confidence", type=float, default=0.5,
                         help="rows below this confidence join the failure modes (default 0.5)")
    limport.add_argument("--clusters", type=int, help="number of failure-mode clusters (default: from the number of rows)")
    limport.add_argument("--seed", type=int, default=0, help="seed of the train/eval split and the clustering (default 0)")
    limport.add_argument("--force", action="store_true", help="write into --out even if it holds files")
    limport.add_argument("--max-rejected", type=_share, default=0.2,
                         help="the largest share of rejected rows a log may have and still be imported (default 0.2)")
    limport.set_defaults(func=_logs_import)
    export = sub.add_parser("export", help="merge an adapter into its base as a full model, gated for agreement with it")
    export.add_argument("adapter", help="the PEFT adapter directory")
    export.add_argument("out", help="a new directory for the merged model (safetensors, tokenizer, chat template)")
    export.add_argument("--suites", default=SUITES_DIR, help=f"the suites the merged model is compared on. Default: {SUITES_DIR}")
    export.add_argument("--dtype", default="float32", help="the merged weights' dtype: float32, bfloat16 or float16. "
                        "Default: float32")
    export.add_argument("--base", help="the base model, overriding adapter_config.json")
    export.add_argument("--min-agreement", type=float, default=0.95, dest="min_agreement",
                        help="least share of each suite's outputs the merged model must answer as the adapter does, "
                             "else the export is refused. Default: 0.95")
    export.set_defaults(func=_export)
    pricing = sub.add_parser("pricing", help="print the bundled pricing file, to copy, edit and pass as --ftgate-pricing")
    pricing.set_defaults(func=_pricing)
    human = sub.add_parser("human", help="blind human evaluation: export an A/B sheet for raters, import their ratings")
    human_sub = human.add_subparsers(dest="human_command", required=True)
    export = human_sub.add_parser("export", help="write sheet.csv and sheet.html (for raters), key.json (not)")
    export.add_argument("report", help="report.json of a gate run with a candidate")
    export.add_argument("--out", required=True, help="directory for sheet.csv, sheet.html and key.json")
    export.add_argument("--suite", action="append", help="only this suite (repeatable; default: every suite)")
    export.add_argument("--seed", type=int, help="seed of the A/B order (default: a random one, recorded in the key)")
    export.add_argument("--only-flips", action="store_true", help="only cases whose verdict flipped (default: all)")
    export.set_defaults(func=_human_export)
    imp = human_sub.add_parser("import", help="check and unblind ratings: win rate, agreement, SUITE.human.jsonl")
    imp.add_argument("ratings", nargs="+", help="ratings CSV files (the sheet, rating columns filled), one per rater")
    imp.add_argument("--key", required=True, help="the key.json written beside the sheet")
    imp.add_argument("--suites", help="directory of the suite files (default: where the export found them)")
    imp.set_defaults(func=_human_import)
    suite = sub.add_parser("suite", help="suite files: import an attack set you hold (CSV or JSONL)")
    suite_sub = suite.add_subparsers(dest="suite_command", required=True)
    from .importers.attack_sets import FORMATS_HELP

    attack = suite_sub.add_parser("import", help="write an adversarial suite (YAML + JSONL) from a CSV or JSONL attack set",
                                  epilog=FORMATS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    attack.add_argument("file", help="the CSV, TSV or JSONL file")
    attack.add_argument("--format", required=True, choices=attack_sets.FORMATS, help="its columns")
    attack.add_argument("--out", required=True, help="the suite file to write (its cases go beside it as .jsonl)")
    attack.add_argument("--include-harmful", action="store_true",
                        help="also import prompts that must be refused (harmful behaviours); default: skipped and counted")
    attack.add_argument("--benign", action="store_true", help="prompt-injections: import the benign rows (over-refusal) instead")
    attack.add_argument("--expect", choices=("refuse", "comply"), help="generic: for rows without an `expect` column")
    attack.add_argument("--seed", type=int, default=0, help="seed of the planted canary (default 0)")
    attack.add_argument("--force", action="store_true", help="overwrite the suite and its cases if they exist")
    attack.set_defaults(func=_suite_import)
    from .train.cli import add_parsers

    add_parsers(sub)
    args = parser.parse_args(argv)
    try:
        if args.command in ("gate", "check"):
            load_all()  # a broken extension is named before any work
        return args.func(args)
    except FtgateError as exc:
        kind = "the gate could not run" if exc.exit_code == EXIT_GATE_ERROR else "error"
        print(f"ftgate: {kind}: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - a bug of ours is exit 6 with its trace, never the exit of a verdict
        if args.command != "gate":
            raise
        print(f"ftgate: the gate could not run: {internal_error(exc)}", file=sys.stderr)
        return EXIT_GATE_ERROR


if __name__ == "__main__":
    sys.exit(main())
