"""Leakage at the gate: a candidate trained on its own eval cases would read green.

Before anything generates, the candidate's training data (named by its manifest, `ftgate.json`, with
its sha256; or by `--ftgate-train-data=PATH` for an adapter trained elsewhere) is checked against the
collected suites with the same exact and near-duplicate test as `ftgate data check --suites`, over
SFT and DPO rows alike. An overlap blocks the candidate, naming the cases and the training lines.
Where the data cannot be checked (no manifest, the file missing, its hash changed), every report
says "leakage not checked" and why; `--ftgate-require-leakage-check` makes that an error (exit 6).
What `ftgate data check` warns of the same rows (too few, duplicate answers, answer-length outliers) is
said in every report too: warnings, never a block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..types import RUN, GateDecision, Suite  # noqa: F401  (RUN re-exported)



@dataclass(frozen=True)
class LeakageCheck:
    checked: bool
    summary: str
    data: str | None = None
    leaks: tuple[tuple[str, str, str], ...] = ()  # (suite/case, training file:line, exact|contained|near ...)
    data_warnings: tuple[str, ...] = ()  # what `ftgate data check` warns of the same data (size, duplicate answers, ...)

    def decision(self, required: bool) -> GateDecision | None:
        """The run-level criterion: blocked by a leak, an error when required and not checked, else none or passed."""
        figures: dict[str, Any] = {"data": self.data, "leaks": len(self.leaks),
                                   "suites": sorted({name.split("/")[0] for name, _, _ in self.leaks})}
        if not self.checked:
            if not required:
                return None
            return GateDecision(RUN, "leakage", "error", f"{self.summary}; ftgate_require_leakage_check is set", figures)
        if self.leaks:
            shown = "; ".join(f"{name} = {where} ({how})" for name, where, how in self.leaks[:8])
            more = f" … {len(self.leaks) - 8} more" if len(self.leaks) > 8 else ""
            reason = (f"{len(self.leaks)} suite case(s) appear in the candidate's training data: {shown}{more}. A gate on "
                      "cases the model was trained on would lie: remove them from the training data (or the suite) "
                      "and train again")
            return GateDecision(RUN, "leakage", "blocked", reason, figures, breaches=(reason,))
        return GateDecision(RUN, "leakage", "passed", self.summary, figures)


def _locate(path: str, roots: Sequence[Path], near: Path | None) -> Path | None:
    """A manifest's relative path: from where the gate runs, the project's root, or the adapter and its parents."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    places = [*roots, *([near, *near.parents] if near is not None else [])]
    return next((p / candidate for p in places if (p / candidate).is_file()), None)


def check_leakage(candidate: Any, suites: Sequence[Suite], explicit: Path | None, roots: Sequence[Path]) -> LeakageCheck:
    """Check the candidate's training data against the suites (see the module's docstring): the data its manifest
    names, and the data of every run it continued (`data.lineage`: resumed checkpoints)."""
    details = candidate.info.details
    data = (details.get("manifest") or {}).get("data") or {}
    train = data.get("train") or {}
    adapter = Path(details["adapter"]) if details.get("adapter") else None
    if explicit is not None:
        if not explicit.is_file():
            return LeakageCheck(False, f"leakage not checked: --ftgate-train-data={explicit} is not a file")
        files: list[tuple[Path, str | None]] = [(explicit, None)]
    elif train.get("path"):
        files = []
        for entry in [train, *(e for e in data.get("lineage") or () if e != train)]:
            found, why = _data_file(entry, roots, adapter)
            if found is None:
                return LeakageCheck(False, f"leakage not checked: {why}")
            files.append(found)
    else:
        return LeakageCheck(False, f"leakage not checked: the candidate {candidate.info.name} names no training data "
                                   "(no ftgate.json manifest); pass --ftgate-train-data=PATH")
    return _check_files(files, suites)


def _data_file(entry: dict[str, Any], roots: Sequence[Path], adapter: Path | None) -> tuple[Any, str]:
    """((path, recorded sha256), "") for a data set of the manifest, or (None, why it cannot be checked)."""
    from ..stores.cache import sha256_file

    if not entry.get("path"):
        return None, (f"the adapter was resumed from {entry.get('resumed_from')}, {entry.get('note')}: what it was "
                      "trained on is unknown; train from scratch, or pass --ftgate-train-data=PATH")
    found = _locate(str(entry["path"]), roots, adapter)
    if found is None:
        return None, (f"the training data its manifest names ({entry['path']}) is not here; run from where it was "
                      "trained, or pass --ftgate-train-data=PATH")
    if entry.get("sha256") and sha256_file(found) != entry["sha256"]:
        return None, (f"{found} is not the file it was trained on (its sha256 differs from the manifest's); restore "
                      "it, or pass --ftgate-train-data=PATH")
    return (found, entry.get("sha256")), ""


def _check_files(files: Sequence[tuple[Path, str | None]], suites: Sequence[Suite]) -> LeakageCheck:
    from .data_stats import profile_data
    from .datacheck import find_leaks, training_rows

    leaks: list[tuple[str, str, str]] = []
    counted, warnings = [], []
    for path, _ in files:
        rows = training_rows(path)
        if not rows:  # nothing read is not "no leak"
            return LeakageCheck(False, f"leakage not checked: {path} holds no valid SFT or DPO row (check it with "
                                       "`ftgate data check`)")
        counted.append(f"{len(rows)} training rows of {path}")
        warnings += [f"the candidate's training data {path}: {w.message} (`ftgate data check {path}` says more)"
                     for w in profile_data([], rows, set()).warnings if w.check == "size"]
        leaks += [(name, f"{path}:{line}", how) for name, line, how in find_leaks(rows, list(suites))]
    n_cases = sum(len(s.cases) for s in suites)
    lineage = f" (the data of {len(files)} runs: this one and the ones it resumed)" if len(files) > 1 else ""
    summary = (f"leakage checked: {' and '.join(counted)}{lineage} against {n_cases} suite cases"
               + ("" if leaks else ": none appears in the training data"))
    return LeakageCheck(True, summary, str(files[0][0]) if len(files) == 1 else ", ".join(str(p) for p, _ in files),
                        tuple(leaks), tuple(warnings))
