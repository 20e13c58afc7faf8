"""Blind human evaluation, export side: a gate report becomes a blind A/B sheet and a separate key.

    ftgate human export out/report.json --out human/       sheet.csv, sheet.html (for the raters), key.json (not)

Each case shows its input, the reference if any, and the two outputs labelled A and B. Which of
them is the candidate is drawn per case, half each way within a suite, from a recorded seed; only
key.json says which. The sheet never names the subjects. Ratings come back through
pytest_ftgate.human.ratings (`ftgate human import`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..files.versioned import read_versioned
from ..errors import HumanEvalError

KEY_SCHEMA_VERSION = 1
BLIND_COLUMNS = ("case", "suite", "input", "reference", "output_a", "output_b")
RATING_COLUMNS = ("preference", "score_a", "score_b", "comment", "rater", "sheet")
COLUMNS = BLIND_COLUMNS + RATING_COLUMNS
PREFERENCES = ("A", "B", "tie")
SCORE_RANGE = (1, 5)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): model
# output is untrusted, so such cells get a leading apostrophe, and so does one that starts with it.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


@dataclass(frozen=True)
class SheetRow:
    """One case as the raters see it: nothing in it says which output is which."""

    case: str
    suite: str
    input: str
    reference: str
    output_a: str
    output_b: str

    def blind_hash(self) -> str:
        return _digest([normalise_cell(v) for v in asdict(self).values()])[:16]


@dataclass(frozen=True)
class ExportResult:
    sheet_csv: Path
    sheet_html: Path
    key: Path
    sheet_id: str
    seed: int
    rows: int
    candidate_as_a: int
    identical: int  # cases left out: both outputs the same text, nothing to compare
    suites: tuple[str, ...]


@dataclass(frozen=True)
class Key:
    """key.json, read back: which side is the candidate in each case, and what each row said."""

    path: Path
    data: dict[str, Any]
    candidate_side: dict[tuple[str, str], str]  # (suite, case) -> "A" | "B"
    row_hashes: dict[tuple[str, str], str]

    @property
    def sheet_id(self) -> str:
        return self.data["sheet"]["id"]


def read_key(path: Path) -> Key:
    try:
        data = read_versioned(path, KEY_SCHEMA_VERSION, kind="ftgate-human-key",
                              what="a key written by `ftgate human export`")
        side = {(c["suite"], c["case"]): c["candidate"] for c in data["cases"]}
        hashes = {(c["suite"], c["case"]): c["row_hash"] for c in data["cases"]}
        if not isinstance(data["sheet"]["id"], str):
            raise TypeError("its sheet id is not a string")
    except FileNotFoundError:
        raise HumanEvalError("no such key file: give the key.json that `ftgate human export` wrote", path) from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise HumanEvalError(f"not a usable key ({exc}); export the sheet again", path) from None
    return Key(Path(path), data, side, hashes)


def normalise_cell(text: str) -> str:
    """What a round trip through a spreadsheet keeps of a cell: line ends and trailing spaces may change."""
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")).strip()


def guard_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def unguard_cell(text: str) -> str:
    return text.removeprefix("'")


def _digest(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def load_report(path: Path) -> dict[str, Any]:
    """A gate run's report.json, checked for what a blind sheet needs (a candidate, cases with outputs)."""
    from ..errors import OptionError
    from ..report.record import read_report

    try:
        report = read_report(path)
    except OptionError as exc:
        raise HumanEvalError(str(exc)) from None
    if not (report["subjects"] or {}).get("candidate"):
        raise HumanEvalError("this report has no candidate (a baseline-only run): there is nothing to compare. "
                             "Export the report of a run with --candidate", path)
    return report


def _pick_suites(report: dict[str, Any], names: list[str] | None, path: Path) -> list[dict[str, Any]]:
    suites = report["suites"]
    if not names:
        return suites
    known = [s["name"] for s in suites]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise HumanEvalError(f"--suite {', '.join(unknown)}: not in this report; its suites are {', '.join(known)}",
                             path)
    return [s for s in suites if s["name"] in names]


def balanced_order(n: int, rng: random.Random) -> list[bool]:
    """n flags 'the candidate is A': half each way, the odd one by a coin, shuffled."""
    flags = [True] * (n // 2) + [False] * (n // 2)
    if n % 2:
        flags.append(rng.random() < 0.5)
    rng.shuffle(flags)
    return flags


def _resolve_suite_path(recorded: str, report_path: Path) -> str | None:
    """Where the suite file is now: as recorded (relative to where the gate ran), else beside the report's ancestors."""
    candidates = [Path(recorded)] + [parent / recorded for parent in Path(report_path).resolve().parents]
    found = next((p for p in candidates if p.is_file()), None)
    return str(found.resolve()) if found else None


def build_sheet(report: dict[str, Any], report_path: Path, seed: int, suite_names: list[str] | None = None,
                only_flips: bool = False) -> tuple[list[SheetRow], dict[str, Any]]:
    """The blind rows, and the key that unblinds them."""
    rows: list[SheetRow] = []
    key_cases: list[dict[str, Any]] = []
    identical: list[dict[str, str]] = []
    suites: dict[str, dict[str, Any]] = {}
    for suite in _pick_suites(report, suite_names, report_path):
        pairs = []
        for case in suite["cases"]:
            base, cand = case.get("baseline"), case.get("candidate")
            if not base or not cand:
                continue
            if only_flips and (base.get("passed") is None or base.get("passed") == cand.get("passed")):
                continue
            if normalise_cell(_text(base["output"])) == normalise_cell(_text(cand["output"])):
                identical.append({"suite": suite["name"], "case": str(case["id"])})
                continue
            pairs.append((case, _text(base["output"]), _text(cand["output"])))
        rng = random.Random(f"ftgate-human:{seed}:{suite['name']}")
        for (case, base_text, cand_text), candidate_is_a in zip(pairs, balanced_order(len(pairs), rng)):
            a, b = (cand_text, base_text) if candidate_is_a else (base_text, cand_text)
            row = SheetRow(str(case["id"]), suite["name"], _text(case.get("input")), _text(case.get("expected")),
                           a, b)
            rows.append(row)
            key_cases.append({"suite": row.suite, "case": row.case, "candidate": "A" if candidate_is_a else "B",
                              "row_hash": row.blind_hash()})
        if pairs:
            suites[suite["name"]] = {"path": suite.get("path"), "suite_hash": suite.get("suite_hash"),
                                     "resolved": _resolve_suite_path(suite.get("path") or "", report_path)}
    if not rows:
        why = " with flipped verdicts" if only_flips else " whose two outputs differ"
        raise HumanEvalError(f"no case{why} in the selected suites: there is nothing for raters to compare",
                             report_path)
    subjects = {role: {k: info.get(k) for k in ("name", "kind", "fingerprint")}
                for role, info in report["subjects"].items() if info}
    key = {
        "schema_version": KEY_SCHEMA_VERSION, "kind": "ftgate-human-key",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": seed, "sheet": {"id": _digest([asdict(r) for r in rows])[:12], "rows": len(rows)},
        "report": {"path": str(Path(report_path).resolve()),
                   "sha256": hashlib.sha256(Path(report_path).read_bytes()).hexdigest(),
                   "verdict": report.get("verdict"), "run": (report.get("run") or {}).get("finished_at")},
        "subjects": subjects, "suites": suites,
        "order": {"candidate_as_a": sum(c["candidate"] == "A" for c in key_cases),
                  "candidate_as_b": sum(c["candidate"] == "B" for c in key_cases)},
        "cases": key_cases, "identical": identical,
    }
    return rows, key


def sheet_csv(rows: list[SheetRow], sheet_id: str) -> str:
    """The sheet as CSV (UTF-8 with a BOM, so spreadsheets read it as UTF-8), rating columns empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([guard_cell(v) for v in asdict(row).values()] + ["", "", "", "", "", sheet_id])
    return "\ufeff" + buf.getvalue()


def sheet_html(rows: list[SheetRow], sheet_id: str) -> str:
    """One self-contained page: the cases, a form per case, and a button that saves the ratings as CSV."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent.parent / "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    data = {"sheet": sheet_id, "columns": list(COLUMNS), "preferences": list(PREFERENCES),
            "scores": list(range(SCORE_RANGE[0], SCORE_RANGE[1] + 1)), "formula_starts": list(_FORMULA_STARTS),
            "rows": [asdict(r) for r in rows]}
    # JSON inside <script>: escape what could end the element or open a comment
    payload = json.dumps(data, ensure_ascii=False)
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return env.get_template("human_sheet.html.j2").render(sheet_id=sheet_id, n=len(rows), payload=payload)


def export_sheet(report_path: Path, out_dir: Path, *, suites: list[str] | None = None,
                 seed: int | None = None, only_flips: bool = False) -> ExportResult:
    """Write OUT/sheet.csv, OUT/sheet.html and OUT/key.json for the report's cases."""
    report_path = Path(report_path)
    report = load_report(report_path)
    # a seed nobody chose: a rater who knows this code cannot rebuild the order from a default
    seed = secrets.randbelow(2**31) if seed is None else seed
    try:
        rows, key = build_sheet(report, report_path, seed, suites, only_flips)
    except (KeyError, TypeError, AttributeError) as exc:
        raise HumanEvalError(f"report.json is not in the shape this version reads ({type(exc).__name__}: {exc}); "
                             "export the report of a gate run made with this version of pytest-ftgate",
                             report_path) from None
    sheet_id = key["sheet"]["id"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, html_path, key_path = out_dir / "sheet.csv", out_dir / "sheet.html", out_dir / "key.json"
    csv_text, html_text = sheet_csv(rows, sheet_id), sheet_html(rows, sheet_id)
    csv_path.write_text(csv_text, encoding="utf-8", newline="")
    html_path.write_text(html_text, encoding="utf-8")
    key["sheet"] |= {"csv_sha256": hashlib.sha256(csv_text.encode()).hexdigest(),
                     "html_sha256": hashlib.sha256(html_text.encode()).hexdigest()}
    key_path.write_text(json.dumps(key, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return ExportResult(csv_path, html_path, key_path, sheet_id, seed, len(rows), key["order"]["candidate_as_a"],
                        len(key["identical"]), tuple(key["suites"]))


def export_lines(result: ExportResult) -> list[str]:
    lines = [
        f"sheet: {result.sheet_csv} and {result.sheet_html}",
        (f"  {result.rows} cases from {', '.join(result.suites)}; sheet {result.sheet_id}; seed {result.seed}: "
         f"the candidate is A in {result.candidate_as_a} and B in {result.rows - result.candidate_as_a}"),
        f"key:   {result.key}: it unblinds the sheet; keep it from the raters",
    ]
    if result.identical:
        lines.append(f"  left out {result.identical} case(s) whose two outputs are the same text (listed in the key)")
    lines.append(f"then: ftgate human import RATINGS.csv [...] --key {result.key}")
    return lines
