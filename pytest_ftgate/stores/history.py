"""The history store: every gate run appends a record (SQLite, `.ftgate/history.sqlite` by default;
`--ftgate-history=PATH` or ini `ftgate_history`, `off` for none). `ftgate history` lists the runs,
`ftgate promote` marks the one it promoted, and the HTML report plots each suite's main measure
over the last runs, promotions marked.

A record: when, the verdict, both subjects and their fingerprints, the git commit, the report's
path and sha256, the cost figures, and per suite its main measure, decision and regressed cases.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OptionError
from ..settings.options import history_path
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    finished_at TEXT NOT NULL,
    verdict TEXT NOT NULL,
    baseline TEXT NOT NULL,
    baseline_fingerprint TEXT NOT NULL,
    candidate TEXT,
    candidate_fingerprint TEXT,
    git_commit TEXT,
    report_path TEXT,
    report_sha256 TEXT,
    promoted INTEGER NOT NULL DEFAULT 0,
    cost TEXT
);
CREATE TABLE IF NOT EXISTS suites (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    suite TEXT NOT NULL,
    kind TEXT NOT NULL,
    measure TEXT NOT NULL,
    baseline REAL,
    candidate REAL,
    lower_is_better INTEGER NOT NULL,
    decision TEXT NOT NULL,
    regressions INTEGER NOT NULL,
    regressed_ids TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS suites_by_name ON suites(suite, run_id);
CREATE TABLE IF NOT EXISTS promotions (
    suites_dir TEXT NOT NULL,
    candidate TEXT NOT NULL,
    promoted_at TEXT NOT NULL,
    report_sha256 TEXT
);
"""


@dataclass(frozen=True)
class TrendPoint:
    """One run's value of one suite's main measure, for the trend plot."""

    run_id: int
    finished_at: str
    value: float | None
    promoted: bool
    current: bool = False
    measure: str = ""  # what the value is ("goldens regressed", "baseline passes", ...): one axis draws one measure


@contextmanager
def opened(path: Path) -> Iterator[sqlite3.Connection]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        raise OptionError(f"--ftgate-history={path}: cannot open the history store there "
                          f"({getattr(exc, 'strerror', None) or exc}); point it at a writable file, or pass "
                          "--ftgate-history=off") from None
    try:
        yield db
    finally:
        db.close()


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def record_run(path: Path | None, view: Any, report_path: Path | None, report_sha256: str | None = None) -> int | None:
    """Append a gate run (its report view) to the store; the run's id, or None when the store is off. The report's
    sha256 is `report_sha256` when given (the report is written after its record), else the file's."""
    if path is None:
        return None
    cost = None
    if view.cost is not None:
        cost = json.dumps({s.role: {"usd_per_1k": s.usd_per_1k, "usd_per_month": s.usd_per_month,
                                    "p50_latency_s": s.p50_latency_s, "quality": s.quality} for s in view.cost.rows}
                          | {"break_even": view.cost.tco.break_even_note})
    c = view.candidate
    with opened(path) as db:
        cur = db.execute(
            "INSERT INTO runs (finished_at, verdict, baseline, baseline_fingerprint, candidate, candidate_fingerprint, "
            "git_commit, report_path, report_sha256, cost) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (view.info.get("finished_at", ""), view.verdict, view.baseline.name, view.baseline.fingerprint,
             c.name if c else None, c.fingerprint if c else None, view.info.get("git_commit"),
             str(report_path.resolve()) if report_path else None,
             report_sha256 or (file_sha256(report_path) if report_path else None),
             cost))
        run_id = int(cur.lastrowid or 0)
        for row, detail in zip(view.rows, view.details):
            regressed = [f.case_id for f in detail.flips if f.direction == "regression"]
            db.execute("INSERT INTO suites VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (run_id, row.suite, row.kind, row.measure, row.baseline, row.candidate, int(row.lower_is_better),
                        row.decision, len(regressed), json.dumps(regressed)))
    return run_id


def mark_promoted(path_value: str | None, report: Path, record: Any, suites_dir: Path | None = None) -> bool:
    """Mark the run whose report this is as promoted, and record the promotion for its suites directory; False
    when the store does not hold the run."""
    path = history_path(path_value)
    if path is None or not path.exists():
        return False
    sha = file_sha256(report)
    with opened(path) as db:
        cur = db.execute("UPDATE runs SET promoted = 1 WHERE report_sha256 = ?", (sha,))
        if suites_dir is not None:
            db.execute("INSERT INTO promotions VALUES (?, ?, ?, ?)",
                       (str(Path(suites_dir).resolve()), record.name, record.promoted_at, sha))
        return cur.rowcount > 0


def report_recorded(path: Path, report: Path) -> tuple[bool, bool]:
    """(the store recorded a run whose report had this file's sha256, it recorded a run written to this path)."""
    if not path.exists():
        return False, False
    sha = file_sha256(report)
    with opened(path) as db:
        by_sha = db.execute("SELECT 1 FROM runs WHERE report_sha256 = ? LIMIT 1", (sha,)).fetchone() is not None
        by_path = db.execute("SELECT 1 FROM runs WHERE report_path = ? LIMIT 1",
                             (str(report.resolve()),)).fetchone() is not None
    return by_sha, by_path


def last_promotion(path: Path | None, suites_dir: Path) -> dict[str, Any] | None:
    """The newest promotion the store recorded for this suites directory (the model and when), or None."""
    if path is None or not path.exists():
        return None
    with opened(path) as db:
        row = db.execute("SELECT candidate, promoted_at FROM promotions WHERE suites_dir = ? ORDER BY rowid DESC LIMIT 1",
                         (str(Path(suites_dir).resolve()),)).fetchone()
    return None if row is None else {"candidate": row[0], "promoted_at": row[1]}


def runs(path: Path, suite: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The last runs, newest first, each with its suites (only `suite`'s when given)."""
    if not path.exists():
        return []
    with opened(path) as db:
        db.row_factory = sqlite3.Row
        query = "SELECT * FROM runs"
        params: tuple[Any, ...] = ()
        if suite is not None:
            query += " WHERE id IN (SELECT run_id FROM suites WHERE suite = ?)"
            params = (suite,)
        found = [dict(r) for r in db.execute(query + " ORDER BY id DESC LIMIT ?", (*params, limit))]
        for run in found:
            rows = db.execute("SELECT * FROM suites WHERE run_id = ?" + (" AND suite = ?" if suite else ""),
                              (run["id"], suite) if suite else (run["id"],))
            run["suites"] = [{k: (json.loads(r[k]) if k == "regressed_ids" else r[k]) for k in r.keys() if k != "run_id"}
                             for r in rows]
            run["cost"] = json.loads(run["cost"]) if run["cost"] else None
            run["promoted"] = bool(run["promoted"])
    return found


def trend(path: Path | None, suites: list[str], limit: int = 20) -> dict[str, list[TrendPoint]]:
    """Each suite's main measure over its last `limit` runs, oldest first (the candidate's, else the baseline's)."""
    if path is None or not path.exists():
        return {}
    out: dict[str, list[TrendPoint]] = {}
    with opened(path) as db:
        for name in suites:
            rows = db.execute(
                "SELECT r.id, r.finished_at, s.baseline, s.candidate, r.promoted, s.measure FROM suites s "
                "JOIN runs r ON r.id = s.run_id WHERE s.suite = ? ORDER BY r.id DESC LIMIT ?", (name, limit)).fetchall()
            out[name] = [TrendPoint(i, at, c if c is not None else b, bool(p), measure=m)
                         for i, at, b, c, p, m in reversed(rows)]
    return out
