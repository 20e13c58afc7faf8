"""Blind human evaluation, import side: validate raters' sheets, unblind them with the key, summarise.

    ftgate human import alice.csv bob.csv --key human/key.json      win rates, agreement, SUITE.human.jsonl

The candidate's human win rate is (wins + ties/2) / n over cases, each case scored by the mean of
its raters' votes (candidate 1, tie 1/2, baseline 0). Its interval is the Wilson score interval
of that tie-split proportion (pytest_ftgate.stats.wilson_interval, "wilson, ties half" where ties
make it fractional).

A partly rated sheet is accepted: a row without a preference counts nowhere (win rate, agreement,
labels), and the import names each file's unrated cases. A sheet with no rating at all is an error.

The labels are merged per rater. Each line of SUITE.human.jsonl keeps every rater's verdict on the
case ("ratings", by rater: the rater column, else the file's name without .csv) beside the case's
consensus ("human": the raters' mean vote and mean scores, as for the win rate), which is the one
label the judge calibrates on. Importing bob.csv after alice.csv adds bob's labels and keeps
alice's; importing alice.csv again replaces only hers. Earlier labels of other answers than the
sheet's (an earlier candidate's) and labels that name no rater (written by hand, or by an ftgate
that kept no per-rater verdicts) are replaced, and the import says which.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import HumanEvalError
from ..files.jsonl import iter_jsonl
from ..stats import Agreement, cohen_kappa, fleiss_kappa, wilson_interval
from ..types import Interval
from .export import BLIND_COLUMNS, COLUMNS, PREFERENCES, SCORE_RANGE, Key, SheetRow, read_key, unguard_cell

REQUIRED_COLUMNS = (*BLIND_COLUMNS, "preference", "sheet")
VOTE = {"candidate": Fraction(1), "tie": Fraction(1, 2), "baseline": Fraction(0)}
LABELS = ("candidate", "baseline", "tie")
MAX_PROBLEMS_SHOWN = 50
MAX_CASES_SHOWN = 10
# Kappa below this while the raters agree on at least HIGH_AGREEMENT of the cases: the prevalence effect.
LOW_KAPPA, HIGH_AGREEMENT = 0.4, 0.7


@dataclass(frozen=True)
class Rating:
    """One rater's verdict on one case, unblinded."""

    rater: str
    suite: str
    case: str
    preference: str  # candidate | baseline | tie
    chose: str  # what the rater ticked: A | B | tie
    score_candidate: int | None
    score_baseline: int | None
    digests: tuple[str, str] = ("", "")  # output_digest of the candidate's and the baseline's answer


def output_digest(text: str) -> str:
    """What a label was rated on: the answer's text, its whitespace collapsed (a spreadsheet round trip
    may change line endings). The judge uses a label only for the outputs it describes."""
    import hashlib

    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class WinRate:
    scope: str  # a suite name, or "overall"
    cases: int
    votes: dict[str, int]  # label -> ratings
    rate: float
    interval: Interval


@dataclass(frozen=True)
class Unrated:
    """A ratings file's rows without a preference: not counted anywhere."""

    path: Path
    rows: int  # the file's rows, rated or not
    cases: tuple[str, ...]  # "suite/case" of each unrated row, in file order


class _Problems(list):
    """The problems found so far, each a HumanEvalError with file:line."""

    def add(self, message: str, path: Path, line: int | None = None) -> None:
        self.append(HumanEvalError(message, path, line))


def _records(path: Path, problems: _Problems) -> tuple[list[str], list[tuple[int, list[str]]]] | None:
    """The header and (first line, cells) of each record; None, with a problem, when the file cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return problems.add("no such ratings file", path)
    except UnicodeDecodeError:
        return problems.add("not UTF-8 text: save it from the spreadsheet as 'CSV UTF-8'", path)
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)  # a spreadsheet in some locales saves with ';'
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)  # lines split as the csv module wants
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        return problems.add(f"not valid CSV ({exc})", path, start)
    if not records:
        return problems.add("empty file: expected the sheet's header and rows", path)
    header = [h.strip() for h in records[0][1]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        return problems.add(f"no column {', '.join(missing)}: a ratings file is the sheet from `ftgate human export` "
                            f"with its rating columns filled, header {','.join(COLUMNS)}", path, 1)
    return header, records[1:]


def _score(text: str, column: str, path: Path, line: int, problems: _Problems) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    low, high = SCORE_RANGE
    if not value.is_integer() or not low <= value <= high:
        return problems.add(f"{column} {text!r} is not a whole number from {low} to {high} (or empty)", path, line)
    return int(value)


def _rating(row: dict[str, str], path: Path, line: int, key: Key, problems: _Problems) -> Rating | str | None:
    """One row unblinded; "unrated" for a row without a preference; None, with a problem, for a bad row."""
    suite, case = row["suite"].strip(), row["case"].strip()
    name = f"case {case!r} of suite {suite!r}"
    if row["sheet"].strip() != key.sheet_id:
        return problems.add(f"this row is from sheet {row['sheet'].strip() or '(none)'}, but the key {key.path} is "
                            f"for sheet {key.sheet_id}: import each sheet's ratings with the key.json exported "
                            "beside it", path, line)
    if (suite, case) not in key.candidate_side:
        return problems.add(f"{name} is not in the sheet this key unblinds", path, line)
    if SheetRow(case, suite, *(row[c] for c in BLIND_COLUMNS[2:])).blind_hash() != key.row_hashes[(suite, case)]:
        return problems.add(f"{name}: its input or answers differ from the exported sheet (edited, or from another "
                            "export): a rating must be of the text the key describes; rate the exported sheet",
                            path, line)
    scores = [_score(row.get(f"score_{s}", ""), f"score_{s}", path, line, problems) for s in "ab"]
    chose = row["preference"].strip()
    if not chose:
        if scores != [None, None]:
            return problems.add(f"{name} has scores but no preference: choose A, B or tie", path, line)
        return "unrated"
    matched = {p.lower(): p for p in PREFERENCES}.get(chose.lower())
    if matched is None:
        return problems.add(f"preference {chose!r} for {name} is not A, B or tie", path, line)
    candidate_side = key.candidate_side[(suite, case)]
    preference = "tie" if matched == "tie" else "candidate" if matched == candidate_side else "baseline"
    score_candidate, score_baseline = scores if candidate_side == "A" else scores[::-1]
    rater = row.get("rater", "").strip() or Path(path).stem  # a stable name: the labels are merged by rater
    a, b = (output_digest(row[c]) for c in ("output_a", "output_b"))
    digests = (a, b) if candidate_side == "A" else (b, a)
    return Rating(rater, suite, case, preference, matched, score_candidate, score_baseline, digests)


def read_ratings(paths: list[Path], key: Key) -> tuple[list[Rating], list[Unrated]]:
    """Every rated row of every file, unblinded, and each file's unrated rows (files with none left out).
    Raises HumanEvalError listing every problem found, each with file:line."""
    problems = _Problems()
    ratings: list[Rating] = []
    first_seen: dict[tuple[str, str, str], str] = {}
    given: dict[Path, Path] = {}
    unrated: list[Unrated] = []
    for path in map(Path, paths):
        if path.resolve() in given:
            problems.add(f"given twice (also as {given[path.resolve()]}): give each rater's file once", path)
            continue
        given[path.resolve()] = path
        opened = _records(path, problems)
        if opened is None:
            continue
        header, records = opened
        rated_here, problems_before, unrated_here = 0, len(problems), []
        for line, cells in records:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                problems.add(f"{len(cells)} cells where the header has {len(header)}", path, line)
                continue
            raw = ("preference", "score_a", "score_b", "sheet")
            row = {h: c if h in raw else unguard_cell(c) for h, c in zip(header, cells)}
            rating = _rating(row, path, line, key, problems)
            if rating == "unrated":
                unrated_here.append(f"{row['suite'].strip()}/{row['case'].strip()}")
            elif isinstance(rating, Rating):
                first = first_seen.setdefault((rating.rater, rating.suite, rating.case), f"{path}:{line}")
                if first != f"{path}:{line}":
                    problems.add(f"rater {rating.rater!r} rated case {rating.case!r} of suite {rating.suite!r} twice "
                                 f"(first at {first}); keep one row (a rater is named by the rater column, "
                                 "else by the file's name)", path, line)
                    continue
                ratings.append(rating)
                rated_here += 1
        if rated_here == 0 and len(problems) == problems_before:
            problems.add("no row has a preference: fill the preference column (A, B or tie), "
                         "or download the ratings from sheet.html", path)
        elif unrated_here:
            unrated.append(Unrated(path, rated_here + len(unrated_here), tuple(unrated_here)))
    if problems:
        shown = "\n".join(f"  {p}" for p in problems[:MAX_PROBLEMS_SHOWN])
        if len(problems) > MAX_PROBLEMS_SHOWN:
            shown += f"\n  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more"
        raise HumanEvalError(f"{len(problems)} problem(s) in the ratings; nothing was imported:\n{shown}",
                             problems=list(problems))
    return ratings, unrated


def case_scores(ratings: list[Rating]) -> dict[tuple[str, str], Fraction]:
    """Each rated case's score: the mean of its raters' votes (candidate 1, tie 1/2, baseline 0)."""
    votes: dict[tuple[str, str], list[Fraction]] = defaultdict(list)
    for r in ratings:
        votes[(r.suite, r.case)].append(VOTE[r.preference])
    return {k: sum(v, Fraction(0)) / len(v) for k, v in votes.items()}


def win_rates(ratings: list[Rating]) -> list[WinRate]:
    """Per suite (in order of first appearance), then overall."""
    scores = case_scores(ratings)
    out = []
    for scope in [*dict.fromkeys(r.suite for r in ratings), "overall"]:
        chosen = [s for (suite, _), s in scores.items() if scope in ("overall", suite)]
        votes = Counter(r.preference for r in ratings if scope in ("overall", r.suite))
        total = sum(chosen, Fraction(0))
        out.append(WinRate(scope, len(chosen), {label: votes[label] for label in LABELS}, float(total / len(chosen)),
                           wilson_interval(total, len(chosen))))
    return out


def agreement(ratings: list[Rating]) -> Agreement | None:
    """Cohen's kappa for two raters, Fleiss' for more, over the cases every rater rated (pytest_ftgate.stats)."""
    raters = tuple(dict.fromkeys(r.rater for r in ratings))
    if len(raters) < 2:
        return None
    by_case: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for r in ratings:
        by_case[(r.suite, r.case)][r.rater] = r.preference
    common = [[labels[rater] for rater in raters] for labels in by_case.values() if len(labels) == len(raters)]
    if len(raters) == 2:
        return cohen_kappa([(a, b) for a, b in common], (raters[0], raters[1]))
    return fleiss_kappa(common, raters)


def case_labels(ratings: list[Rating]) -> dict[tuple[str, str], dict[str, Any]]:
    """The human label of each case, in the format the judge kind calibrates on."""
    grouped: dict[tuple[str, str], list[Rating]] = defaultdict(list)
    for r in ratings:
        grouped[(r.suite, r.case)].append(r)

    def mean_score(values: list[int | None]) -> int | None:
        given = [v for v in values if v is not None]
        return math.floor(sum(given) / len(given) + 0.5) if given else None  # the raters' mean, rounded half up

    labels = {}
    for k, score in case_scores(ratings).items():
        rs = grouped[k]
        preference = "candidate" if score > Fraction(1, 2) else "baseline" if score < Fraction(1, 2) else "tie"
        labels[k] = {"preference": preference, "score_candidate": mean_score([r.score_candidate for r in rs]),
                     "score_baseline": mean_score([r.score_baseline for r in rs]), "raters": len(rs),
                     "outputs": {"candidate": rs[0].digests[0], "baseline": rs[0].digests[1]}}
    return labels


def label_files(key: Key, suites: list[str], suites_dir: Path | None) -> dict[str, Path]:
    """SUITE_STEM.human.jsonl beside each suite file: in --suites, else where the export found the suite."""
    out: dict[str, Path] = {}
    for name in suites:
        info = key.data["suites"].get(name) or {}
        recorded = Path(info.get("path") or f"{name}.yaml")
        places = [suites_dir / recorded.name] if suites_dir is not None else [
            Path(p) for p in (info.get("resolved"), info.get("path")) if p]
        found = next((p for p in places if p.is_file()), None)
        if found is None:
            raise HumanEvalError(f"suite {name!r}: its file {recorded} is not at {' or '.join(map(str, places))}; "
                                 "the human labels are written beside it, so give its directory with --suites DIR",
                                 key.path)
        out[name] = found.with_name(f"{found.stem}.human.jsonl")
    return out


def read_labels(path: Path) -> dict[str, dict[str, Any]]:
    """A SUITE.human.jsonl as case id -> its line ({"id": ..., "human": {...}}); empty when there is none."""
    entries: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in iter_jsonl(path):
            if line.error or not isinstance(line.value, dict) or "id" not in line.value:
                raise HumanEvalError(f"{line.error or 'not an object with an id'}: fix or remove this line; "
                                     "nothing was written", path, line.number)
            entries[str(line.value["id"])] = line.value
    return entries


def _stored(line: dict[str, Any], suite: str, case: str) -> list[tuple[Rating, dict[str, Any]]] | None:
    """The per-rater verdicts a label line keeps, each with its record; None when it names no rater
    (written by hand, or by an ftgate that kept only the consensus) or its records are not readable."""
    records, human = line.get("ratings"), line.get("human")
    outputs = human.get("outputs") if isinstance(human, dict) else None
    if not (isinstance(records, dict) and records and isinstance(outputs, dict)):
        return None
    digests = (str(outputs.get("candidate", "")), str(outputs.get("baseline", "")))
    out = []
    for rater, rec in records.items():
        scores = [rec.get(f"score_{s}") if isinstance(rec, dict) else None for s in ("candidate", "baseline")]
        if not (isinstance(rec, dict) and rec.get("preference") in VOTE
                and all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in scores)):
            return None
        out.append((Rating(str(rater), suite, case, rec["preference"], "", *scores, digests), rec))
    return out


@dataclass(frozen=True)
class Written:
    """What an import did to one SUITE.human.jsonl, counted in (rater, case) labels."""

    path: Path
    cases: int  # cases this import labels
    new: int  # of them, cases the file held no label for
    added: dict[str, int]  # rater -> labels on cases the rater had not labelled
    replaced: dict[str, int]  # rater -> their earlier labels, replaced (rated again)
    kept: dict[str, int]  # rater -> their earlier labels on these cases, kept (not rated in this import)
    stale: dict[str, list[str]]  # rater -> cases whose earlier label rated other answers: dropped
    unattributed: list[str]  # cases whose earlier label named no rater: replaced


def write_labels(path: Path, suite: str, ratings: list[Rating], sheet: str) -> Written:
    """Merge one suite's ratings into its SUITE.human.jsonl, per rater and case: a rater's new verdict
    replaces only their own; other raters' verdicts on the same answers stay. Each line's "human" is
    the consensus of the verdicts it keeps, in the format the judge kind calibrates on."""
    entries = read_labels(path)
    by_case: dict[str, list[Rating]] = defaultdict(list)
    for r in ratings:
        by_case[r.case].append(r)
    added, replaced, kept = Counter[str](), Counter[str](), Counter[str]()
    stale: dict[str, list[str]] = defaultdict(list)
    unattributed: list[str] = []
    new = 0
    for case, fresh in by_case.items():
        old = entries.get(case)
        earlier = _stored(old, suite, case) if old is not None else []
        if earlier is None:
            unattributed.append(case)
        new += old is None
        rating_now = {r.rater for r in fresh}
        keep: list[tuple[Rating, dict[str, Any]]] = []
        for r, rec in earlier or ():
            if r.rater in rating_now:
                replaced[r.rater] += 1
            elif r.digests != fresh[0].digests:
                stale[r.rater].append(case)
            else:
                kept[r.rater] += 1
                keep.append((r, rec))
        added.update(r.rater for r in fresh if r.rater not in {e.rater for e, _ in earlier or ()})
        records = [(r, rec) for r, rec in keep] + [
            (r, {"preference": r.preference, "score_candidate": r.score_candidate,
                 "score_baseline": r.score_baseline, "sheet": sheet}) for r in fresh]
        human = case_labels([r for r, _ in records])[(suite, case)]
        entries[case] = {"id": case} | (old or {}) | {"human": human, "ratings": {r.rater: rec for r, rec in records}}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries.values()), encoding="utf-8")
    os.replace(tmp, path)
    return Written(path, len(by_case), new, dict(added), dict(replaced), dict(kept), dict(stale), unattributed)


@dataclass(frozen=True)
class ImportResult:
    key: Key
    ratings: list[Rating]
    unrated: int
    win_rates: list[WinRate]
    agreement: Agreement | None
    written: list[Written]
    unrated_rows: tuple[Unrated, ...] = ()  # per file, those with rows left unrated


def import_ratings(paths: list[Path], key_path: Path, suites_dir: Path | None = None) -> ImportResult:
    """Validate and unblind the ratings, summarise them, and merge the labels into SUITE.human.jsonl files."""
    key = read_key(key_path)
    ratings, unrated = read_ratings(paths, key)
    suites = list(dict.fromkeys(r.suite for r in ratings))
    files = label_files(key, suites, suites_dir)  # every file found before any is written
    for path in files.values():  # and every existing one readable
        read_labels(path)
    written = [write_labels(files[suite], suite, [r for r in ratings if r.suite == suite], key.sheet_id)
               for suite in suites]
    return ImportResult(key, ratings, sum(len(u.cases) for u in unrated), win_rates(ratings), agreement(ratings),
                        written, tuple(unrated))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _listed(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(names[:MAX_CASES_SHOWN]) + (", …" if len(names) > MAX_CASES_SHOWN else "")


def _agreement_lines(a: Agreement) -> list[str]:
    kappa = "undefined (every rating has the same label)" if a.kappa is None else f"{a.kappa:.2f}"
    name = "Cohen's" if a.method == "cohen" else "Fleiss'"
    observed = f" (raw agreement {_pct(a.observed)})" if a.cases else ""
    lines = [f"agreement: {name} kappa {kappa} over the {a.cases} case(s) all {len(a.raters)} raters rated{observed}"]
    if a.cases and a.dominant and a.kappa is None:
        lines.append(f"  why kappa is undefined: every rating is {a.dominant[0]!r}, so agreement expected by chance is "
                     f"p_e = {_pct(a.chance)} and kappa = (p_o - p_e) / (1 - p_e) is 0/0; rate cases where the "
                     "answers differ more to measure agreement")
    elif a.cases and a.dominant and a.kappa < LOW_KAPPA and a.observed >= HIGH_AGREEMENT:
        lines.append(f"  why kappa is low: one label dominates ({a.dominant[0]!r} in {_pct(a.dominant[1])} of the "
                     f"ratings), so agreement expected by chance is already high (p_e = {_pct(a.chance)}); kappa "
                     "counts only agreement beyond chance, (p_o - p_e) / (1 - p_e), so it is low although the raters "
                     "mostly agree")
    return lines


def _written_lines(w: Written) -> list[str]:
    changes = []
    for rater in dict.fromkeys([*w.added, *w.replaced]):
        done = []
        if rater in w.added:
            done.append(f"{w.added[rater]} added")
        if rater in w.replaced:
            done.append(f"{w.replaced[rater]} replaced (rated again)")
        changes.append(f"{rater}'s labels {', '.join(done)}")
    if w.kept:
        kept = ", ".join(f"{rater}'s on {n}" for rater, n in w.kept.items())
        changes.append(f"kept {kept} (not rated in this import); each case's label is the consensus of its raters")
    lines = [f"labels: {w.path}: {w.cases} case(s) ({w.new} new): {'; '.join(changes)}"]
    lines += [f"  dropped {rater}'s earlier labels on {len(cases)} case(s) ({_listed(cases)}): they rate other answers "
              "than this sheet's (an earlier candidate's or baseline's)" for rater, cases in w.stale.items()]
    if w.unattributed:
        lines.append(f"  replaced {len(w.unattributed)} earlier label(s) that name no rater "
                     f"({_listed(w.unattributed)}): written by hand, or by an ftgate that did not keep labels "
                     "per rater")
    return lines


def import_lines(result: ImportResult) -> list[str]:
    """The terminal summary of an import."""
    key, ratings, overall = result.key, result.ratings, result.win_rates[-1]
    raters = list(dict.fromkeys(r.rater for r in ratings))
    subjects = key.data.get("subjects", {})

    def subject(role: str) -> str:
        s = subjects.get(role) or {}
        return f"{s.get('name')} [{s.get('kind')} {str(s.get('fingerprint') or '')[:12]}]"

    skipped = f"; {result.unrated} unrated row(s) skipped" if result.unrated else ""
    lines = [
        (f"human ratings: {len(raters)} rater(s) ({', '.join(raters)}), {len(ratings)} ratings of {overall.cases} "
         f"cases; sheet {key.sheet_id}, seed {key.data.get('seed')}{skipped}"),
        f"  candidate {subject('candidate')} vs baseline {subject('baseline')}",
        *(f"{u.path}: {len(u.cases)} of {u.rows} rows unrated ({_listed(u.cases)}): they are not counted (rate them "
          "and import this file again to add them)" for u in result.unrated_rows),
        f"{'suite':<22} {'cases':>5} {'ratings':>7} {'cand':>5} {'tie':>5} {'base':>5} {'win rate':>9}  95% CI",
        "-" * 84,
    ]
    for w in result.win_rates:
        lines.append(f"{w.scope:<22} {w.cases:>5} {sum(w.votes.values()):>7} {w.votes['candidate']:>5} "
                     f"{w.votes['tie']:>5} {w.votes['baseline']:>5} {_pct(w.rate):>9}  "
                     f"{_pct(w.interval.low)}–{_pct(w.interval.high)} ({w.interval.method})")
    if overall.interval.low > 0.5:
        verdict = "the raters prefer the candidate (the interval lies above 50%)"
    elif overall.interval.high < 0.5:
        verdict = "the raters prefer the baseline (the interval lies below 50%)"
    else:
        verdict = "no preference shown at 95% (the interval contains 50%)"
    lines.append(f"human win rate of the candidate: {_pct(overall.rate)} = (wins + ties/2) / cases, raters averaged "
                 f"per case: {verdict}")
    if result.agreement is None:
        lines.append("agreement: one rater; give several raters' files to measure it (Cohen's or Fleiss' kappa)")
    else:
        lines += _agreement_lines(result.agreement)
    decisive = [r for r in ratings if r.chose != "tie"]
    if decisive:
        chose_a = sum(r.chose == "A" for r in decisive)
        lines.append(f"position: answer A chosen in {chose_a} of {len(decisive)} decisive ratings "
                     f"({_pct(chose_a / len(decisive))}); the candidate was A in "
                     f"{key.data.get('order', {}).get('candidate_as_a')} of {key.data['sheet'].get('rows')} cases")
    for w in result.written:
        lines += _written_lines(w)
    if any(w.kept for w in result.written):
        lines.append("  the win rates and agreement above count this import's files only; to count every rater, "
                     "import all their files together")
    return lines
