"""`ftgate data check DATA.jsonl --suites suites/`: is this training file safe to train on?

Checks, each with the line it concerns, over the whole file in one pass (a bad line is rejected
with its reason and the check goes on):
- lines: every line a JSON object (bad JSON and non-objects are rejected, not fatal);
- format: every row valid for SFT or DPO (the trainer's own validation), in the file's format
  (that of its first row with a known format);
- duplicates: exact (after normalisation) and near (MinHash over word 3-grams, datasketch);
- PII: emails, phone numbers, card numbers (Luhn-checked), SSN-like and IBAN-like numbers;
- leakage: any suite case whose input appears, exactly or nearly, in the training data, which
  would make the gate lie (only with --suites: without it, leakage is reported as not checked).
Rejected rows go to a log (JSONL) with their reasons; the exit status is 1 when any row is rejected.
Then the rows that passed are measured against the field guides' figures (size, labels, answer lengths,
duplicate answers, the label mix against production, agreement between annotators): warnings, each with
its figure and reason, that reject nothing (pytest_ftgate.files.data_stats).
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..scoring.scorers import normalize
from .data_stats import DataProfile, profile_data, profile_lines
from .training import Row, known_format, scan_jsonl, validate_row

PII_PATTERNS = {
    "email": re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"),
    # a phone number stands alone: no digit group right before or after it (that would be a longer number)
    "phone": re.compile(
        r"(?<!\d)(?<!\d[\s.-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}(?![\s.-]?\d)"
    ),
    "ssn": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}\b"),
}
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){13,19}(?!\d)")


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_pii(text: str) -> list[str]:
    found = []
    for m in CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            found.append("card")
            text = text.replace(m.group(), " ")  # a card number is not also a phone number
    found += [kind for kind, pattern in PII_PATTERNS.items() if pattern.search(text)]
    return found


def row_text(row: dict[str, Any]) -> str:
    parts = []
    for key in ("prompt", "completion", "chosen", "rejected"):
        for m in row.get(key, []):
            parts.append(m["content"])
    return "\n".join(parts)


def user_text(row: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in row.get("prompt", []) if m["role"] == "user")


def _minhash(text: str, num_perm: int = 128):
    from datasketch import MinHash

    words = normalize(text).split()
    grams = {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}
    mh = MinHash(num_perm=num_perm, seed=1)
    for g in grams:
        mh.update(g.encode())
    return mh


@dataclass
class CheckReport:
    rows: int = 0
    rejected: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    near_duplicates: list[tuple[int, int]] = field(default_factory=list)
    leaks: list[tuple[str, int, str]] = field(default_factory=list)  # (suite/case, line, exact|near)
    leakage_checked: bool = False
    profile: DataProfile | None = None  # the field guides' warnings over the rows that passed

    @property
    def ok(self) -> bool:
        return not self.rejected


def check_data(path: Path, suites_dir: Path | None = None, near_threshold: float = 0.8, *, label_key: str | None = None,
               production: Path | None = None) -> tuple[CheckReport, list[Row], dict[int, dict]]:
    from datasketch import MinHashLSH

    report = CheckReport()
    rows, bad = scan_jsonl(path)
    report.rows = len(rows) + len(bad)
    if not report.rows:
        raise DataError(f"{path}: no rows; a training file holds one JSON object per line")
    for b in bad:
        report.rejected[b.line].append(b.reason)
    fmt = next((f for f in map(known_format, rows) if f is not None), None)
    converted: dict[int, dict] = {}
    for r in rows:
        try:
            converted[r.line] = validate_row(r, fmt or "chat", path)
        except DataError as exc:
            report.rejected[r.line].append("format: " + str(exc).split(": ", 1)[-1])

    seen: dict[str, int] = {}
    lsh = MinHashLSH(threshold=near_threshold, num_perm=128)
    for line, row in converted.items():
        text = row_text(row)
        key = normalize(text)
        if key in seen:
            report.rejected[line].append(f"duplicate of line {seen[key]}")
            continue
        seen[key] = line
        mh = _minhash(text)
        for other in lsh.query(mh):
            report.near_duplicates.append((int(other), line))
        lsh.insert(str(line), mh)
        pii = find_pii(text)
        if pii:
            report.rejected[line].append("PII: " + ", ".join(pii))

    if suites_dir is not None:
        _check_leakage(report, converted, suites_dir, near_threshold)
        report.leakage_checked = True
    report.profile = profile_data(rows, converted, set(report.rejected), label_key=label_key, production=production)
    return report, rows, converted


def _check_leakage(report: CheckReport, converted: dict[int, dict], suites_dir: Path, threshold: float) -> None:
    from ..gating.suite import find_suite_files, load_suite

    suites = [load_suite(f) for f in find_suite_files([suites_dir], suites_dir)]
    for name, line, how in find_leaks(converted, suites, threshold):
        report.leaks.append((name, line, how))
        report.rejected[line].append(f"leak: suite case {name} ({how})")


MIN_CONTAINED_WORDS = 4  # a case shorter than this, found inside a longer turn, is a phrase, not a leak


def find_leaks(converted: dict[int, dict], suites: list[Any], threshold: float = 0.8) -> list[tuple[str, int, str]]:
    """Suite cases found in the training rows' user turns, each turn on its own: equal after normalisation
    (`exact`), contained in a longer turn (`contained`: behind a greeting turn, a long preamble, an
    instruction/input layout, "Quick question: ..."), or nearly equal (`near`: MinHash over word 3-grams).
    `trained turn` marks a match on the last user turn, the one the row's loss answers. SFT and DPO rows alike:
    (suite/case, training line, how)."""
    from datasketch import MinHashLSH

    exact: dict[str, tuple[int, bool]] = {}
    turns: list[tuple[str, int, bool]] = []  # (normalised turn, line, whether it is the trained turn)
    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    for line, row in converted.items():
        users = [m["content"] for m in row.get("prompt", []) if m["role"] == "user"]
        for i, text in enumerate(users):
            key, last = normalize(text), i == len(users) - 1
            if key not in exact or (last and not exact[key][1]):
                exact[key] = (line, last)
            turns.append((key, line, last))
            lsh.insert(f"u{line}:{i}", _minhash(text))
    n_users = {line: sum(1 for m in row.get("prompt", []) if m["role"] == "user") for line, row in converted.items()}
    leaks: list[tuple[str, int, str]] = []
    for suite in suites:
        for case in suite.cases:
            asked = [m["content"] for m in case.messages if m["role"] == "user"]
            text = normalize(asked[-1]) if asked else ""
            if not text:
                continue
            name = f"{suite.name}/{case.id}"
            found = _match(text, exact, turns)
            if found is not None:
                line, how, last = found
                leaks.append((name, line, f"{how}, trained turn" if last else how))
                continue
            for key in lsh.query(_minhash(asked[-1])):
                line, _, index = key[1:].partition(":")
                near = "near, trained turn" if int(index) == n_users[int(line)] - 1 else "near"
                leaks.append((name, int(line), near))
    return leaks


def _match(text: str, exact: dict[str, tuple[int, bool]], turns: list[tuple[str, int, bool]]) -> tuple[int, str, bool] | None:
    """The training line where a case's (normalised) text is a turn, or is contained in one; trained turns first."""
    if text in exact:
        line, last = exact[text]
        return line, "exact", last
    if len(text.split()) < MIN_CONTAINED_WORDS:
        return None
    padded = f" {text} "  # whole words: a case inside another word is no match
    hits = [(line, last) for turn, line, last in turns if padded in f" {turn} "]
    if not hits:
        return None
    line, last = next((h for h in hits if h[1]), hits[0])
    return line, "contained", last


def training_rows(path: Path) -> dict[int, dict]:
    """The rows of a training file that are valid for SFT or DPO, by line (the others are not training)."""
    rows, _ = scan_jsonl(path)
    fmt = next((f for f in map(known_format, rows) if f is not None), None)
    converted: dict[int, dict] = {}
    for r in rows:
        try:
            converted[r.line] = validate_row(r, fmt or "chat", path)
        except DataError:
            continue
    return converted


def write_outputs(report: CheckReport, rows: list[Row], converted: dict[int, dict], path: Path,
                  rejected_log: Path, split: float | None, seed: int) -> list[Path]:
    written = []
    by_line = {r.line: r.data for r in rows}
    raw: list[str] = []
    if set(report.rejected) - set(by_line):  # lines that are not objects: log their text as it is
        raw = path.read_text(encoding="utf-8").split("\n")
    with rejected_log.open("w", encoding="utf-8") as fh:
        for line in sorted(report.rejected):
            entry: dict[str, Any] = {"line": line, "reasons": report.rejected[line]}
            if line in by_line:
                entry["row"] = by_line[line]
            else:
                entry["text"] = raw[line - 1]
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    written.append(rejected_log)
    if split:
        clean = [r for r in rows if r.line not in report.rejected]
        random.Random(seed).shuffle(clean)
        n_eval = max(1, round(len(clean) * split))
        for name, part in (("eval", clean[:n_eval]), ("train", clean[n_eval:])):
            out = path.with_name(f"{path.stem}.{name}.jsonl")
            out.write_text("".join(json.dumps(r.data, ensure_ascii=False) + "\n" for r in part), encoding="utf-8")
            written.append(out)
    return written


def summary_lines(report: CheckReport, path: Path) -> list[str]:
    lines = [f"{path}: {report.rows} rows, {len(report.rejected)} rejected"]
    for line, reasons in sorted(report.rejected.items()):
        lines.append(f"  {path}:{line}: {'; '.join(reasons)}")
    if report.near_duplicates:
        lines.append(f"  {len(report.near_duplicates)} near-duplicate pair(s) (kept): "
                     + ", ".join(f"{a}~{b}" for a, b in report.near_duplicates[:10]))
    if not report.leakage_checked:
        lines.append("  leakage NOT checked (no suites given): add --suites DIR, e.g. --suites suites/, to find "
                     "suite cases that also appear in the training data and would make the gate lie")
    elif report.leaks:
        lines.append(f"  LEAKAGE: {len(report.leaks)} suite case(s) appear in the training data; the gate would lie")
    else:
        lines.append("  no suite case appears in the training data")
    if report.profile is not None:
        lines += profile_lines(report.profile)
    return lines
