"""The promotion contract: the one place that says whether a run may make its candidate production.

A gate checks what it was asked to check; the contract checks that it was asked the right things.
It is checked twice, with the same clauses: where a run's verdict is decided (`run_terms` feeds
`GateRun.verdict`), and where `ftgate promote` accepts a report (`report_breaches` re-reads what the
run recorded and holds it against the project as it is now). A run that breaches a clause still
reports what it measured; it is never `promoted` (its verdict is `partial`, exit 7), and each breach
names its clause.

    clause               a run may promote only if
    coverage             it gated every suite of the project (the suites directory), as they are now
    against-production   its baseline was the promoted model, where one was promoted
    no-freeze            it did not write goldens (a run that regenerates its reference checks nothing)
    bound definitions    what decides a pass is what was frozen: enforced where it is read, by the golden kind
                         (stores/goldens.py binds scorers, prompts, decoding) and the promotion record (the
                         prompts production shipped with, `as_shipped` below)
    intact-record        its report.json is the one the history recorded (checked by `ftgate promote`)
    same-model           the model promoted is the one measured, and production the one promoted: their fingerprints
                         (every file that changes what a model generates; an endpoint by what its server reports,
                         subjects/served.py) are the recorded ones (`same_model`, checked by `ftgate promote` and
                         where production is picked as the baseline)

New checks of what a promotion needs are added here as clauses, not scattered across the code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COVERAGE, AGAINST_PRODUCTION, NO_FREEZE, INTACT_RECORD = "coverage", "against-production", "no-freeze", "intact-record"
SAME_MODEL = "same-model"
CLAUSES = {
    COVERAGE: "it gated every suite of the project (the suites directory), as they are now",
    AGAINST_PRODUCTION: "its baseline was the promoted model, where one was promoted",
    NO_FREEZE: "it did not write goldens",
    INTACT_RECORD: "its report.json is the one the history recorded",
    SAME_MODEL: "the model promoted is the one it measured, and production the one that was promoted",
}


@dataclass(frozen=True)
class Breach:
    """One clause a run does not meet, and why."""

    clause: str
    reason: str

    def __str__(self) -> str:
        return f"{self.clause}: {self.reason}"


@dataclass(frozen=True)
class Terms:
    """What a run records about itself for the contract (report.json's `contract`), and its breaches."""

    suites_dir: str  # the project's suites directory, as the run found it
    project: dict[str, str]  # each suite file of the project (relative to suites_dir) -> its suite hash
    gated: dict[str, str]  # each suite file the run gated in full (relative where under suites_dir) -> suite hash
    baseline: str  # "promoted" (the promotion record's model), or what else the run compared against
    promotion: dict[str, Any] | None  # the promotion record's name and fingerprint, where there is one
    breaches: tuple[Breach, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"clauses": dict(CLAUSES), "suites_dir": self.suites_dir, "project": self.project, "gated": self.gated,
                "baseline": self.baseline, "promotion": self.promotion,
                "breaches": [{"clause": b.clause, "reason": b.reason} for b in self.breaches]}


# ---- the project's suites ------------------------------------------------------------------------
def project_suites(suites_dir: Path, loaded: Iterable[Any] = ()) -> dict[str, str]:
    """Every suite file under the suites directory -> its suite hash (what its cases, prompts, decoding and
    scorers are); `loaded` are suites the run already read, not read again. A file that does not load is listed
    with the reason, which no gated hash matches."""
    return {name: suite.hash if not isinstance(suite, Exception) else f"unloadable: {suite}"
            for name, suite in _suite_files(suites_dir, loaded)}


def _suite_files(suites_dir: Path, loaded: Iterable[Any] = ()) -> Iterator[tuple[str, Any]]:
    """(path relative to the suites directory, its Suite, or the SuiteError it raised), for each YAML file under it."""
    from ..errors import SuiteError
    from .suite import is_suite_file, load_suite

    if not Path(suites_dir).is_dir():
        return
    known = {suite_key(s.path, suites_dir): s for s in loaded}
    for path in sorted(p for p in Path(suites_dir).rglob("*") if p.is_file() and is_suite_file(p, suites_dir)):
        key = suite_key(path, suites_dir)
        try:
            yield key, known[key] if key in known else load_suite(path)
        except SuiteError as exc:
            yield key, exc


def suite_key(path: Path, suites_dir: Path) -> str:
    """A suite file as the contract and the promotion record name it: relative to the suites directory."""
    try:
        return path.resolve().relative_to(suites_dir.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


# ---- at the verdict -------------------------------------------------------------------------------
def run_terms(suites_dir: Path, gated: Iterable[Any], *, baseline: Any, promotion: Any, based_on: str,
              froze_goldens: bool) -> Terms:
    """The terms of a run with a candidate: `gated` are the suites it gated in full (every criterion), `baseline`
    the baseline's SubjectInfo, `promotion` the record beside the suites (or None), `based_on` how the baseline
    was chosen ("promoted", "base", or the spec given)."""
    gated = list(gated)
    project = project_suites(suites_dir, gated)
    gated_hashes = {suite_key(s.path, suites_dir): s.hash for s in gated}
    record = None if promotion is None else {"name": promotion.name, "fingerprint": promotion.fingerprint}
    breaches = [*_coverage(project, gated_hashes, suites_dir, "this run")]
    if promotion is not None and baseline.fingerprint != promotion.fingerprint:
        breaches.append(Breach(AGAINST_PRODUCTION, (
            f"the baseline was {baseline.name}{'' if based_on == baseline.name else f' ({based_on})'}, not the promoted "
            f"model {promotion.name}: a candidate is "
            "promoted only against production. --baseline=base and other baselines are for looking; gate without "
            "--baseline (or with --baseline=promoted) to promote")))
    if froze_goldens:
        breaches.append(Breach(NO_FREEZE, (
            "this run wrote goldens (--ftgate-update-goldens): a run that regenerates its reference checks nothing "
            "against it. Review and commit the goldens, then gate again without --ftgate-update-goldens")))
    against = "promoted" if promotion is not None and baseline.fingerprint == promotion.fingerprint else based_on
    return Terms(str(suites_dir), project, gated_hashes, against, record, tuple(breaches))


def breaches_of(breaches: Sequence[Breach], clause: str) -> list[Breach]:
    return [b for b in breaches if b.clause == clause]


def _coverage(project: Mapping[str, str], gated: Mapping[str, str], suites_dir: Path, who: str) -> list[Breach]:
    missing = [name for name in project if name not in gated]
    changed = [name for name in project if name in gated and gated[name] != project[name]]
    breaches = []
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        breaches.append(Breach(COVERAGE, (
            f"{who} did not gate {len(missing)} of the {len(project)} suite(s) in {suites_dir}: {shown}. Naming "
            "suite files (or -k) is for looking; a promotion gates the whole suites directory: name no suite files, "
            "or name the directory")))
    if changed:
        breaches.append(Breach(COVERAGE, (
            f"{len(changed)} suite(s) in {suites_dir} are not what {who} gated (their cases, prompts, decoding or "
            f"scorers changed since): {', '.join(changed[:6])}. Gate them as they are now")))
    return breaches


# ---- production as it shipped -------------------------------------------------------------------------
PRODUCTION = "production"  # the prompt key the promoted model answers with: the one it was promoted with


def as_shipped(suites: Sequence[Any], promotion: Any, suites_dir: Path) -> tuple[list[Any], str]:
    """The suites with the promoted model's prompts as it shipped (the record's), and what the reports say of it."""
    from dataclasses import replace

    from ..stores.promotion import as_prompt

    out, changed, new = [], [], []
    for s in suites:
        recorded = promotion.prompts.get(suite_key(s.path, suites_dir))
        prompt = as_prompt(recorded) if recorded is not None else s.prompts["candidate"]
        if recorded is None:
            new.append(s.name)
        elif prompt != s.prompts["candidate"]:
            changed.append(s.name)
        out.append(replace(s, prompts={**s.prompts, PRODUCTION: prompt}))
    said = []
    if changed:
        said.append(f"the candidate prompt of {', '.join(changed)} changed since {promotion.name} was promoted: "
                    "production answers with the prompt it shipped with (recorded in the promotion record), the "
                    "candidate with the suite's")
    if new:
        said.append(f"{', '.join(new)} did not exist when {promotion.name} was promoted: production answers "
                    "with the suite's candidate prompt there")
    return out, "; ".join(said)


def promotion_for_contract(config: Any) -> Any:
    """The promotion record beside the suites, whatever --baseline says (the contract holds a run to it). A missing
    record where the history shows a promotion is an error: production would silently become the base model."""
    from ..errors import OptionError
    from ..stores.history import last_promotion
    from ..stores.promotion import read_promotion, record_path

    promotion = read_promotion(config.suites_dir)
    if promotion is None and config.baseline is None:
        last = last_promotion(config.history, config.suites_dir)
        if last is not None:
            raise OptionError(
                f"there is no promotion record at {record_path(config.suites_dir)}, but the history "
                f"({config.history}) shows {last['candidate']} promoted for these suites ({last['promoted_at']}): "
                "without the record "
                "this gate would compare against the base model, not production. Restore the record from git "
                f"(git checkout -- {record_path(config.suites_dir)}), or pass --baseline to look against another model")
    return promotion


def check_promoted_reachable(promotion: Any, spec: str, where: Path) -> None:
    """A promoted model named by a path that is not here is said as the record's, not as a --baseline nobody gave."""
    from ..errors import SubjectError
    from ..subjects.hf.hub import looks_like_hub_id

    if ":" in spec.split("/")[0] or Path(spec).exists() or (not Path(spec).is_absolute() and looks_like_hub_id(spec)):
        return
    raise SubjectError(
        f"the promoted model {promotion.name}, which {where} names as production ({promotion.spec!r}, read from "
        f"{where.parent}), is not here: {spec} does not exist. The record names production for every checkout that "
        "gates, so keep production where each finds it: a Hub id (resolved from the HF cache, HF_HUB_OFFLINE "
        "honoured), a path inside the repository, or an artifact store your CI fetches to the recorded path before "
        "the gate. Put it back there, or promote again from where it lives")


# ---- the same model ------------------------------------------------------------------------------------
def same_model(who: str, since: str, fingerprint: str, served: Mapping[str, Any] | None, found: Any) -> Breach | None:
    """A breach where `found` (a SubjectInfo built now) is not the model recorded with `fingerprint` (and, for an
    endpoint, what its server `served` then); `who` names it, `since` says when it was recorded."""
    if found.fingerprint == fingerprint:
        return None
    from ..subjects.endpoint.served import what_changed

    changed = what_changed(served, found.details.get("served"))
    why = (f"its server reports another model: {changed}" if changed else
           "its weights, adapter, tokenizer, chat template, generation config or 4-bit loading changed")
    return Breach(SAME_MODEL, f"{who} is not the model {since}: its fingerprint is {found.fingerprint[:12]} now, "
                              f"{fingerprint[:12]} then ({why})")


# ---- at `ftgate promote` ----------------------------------------------------------------------------
def report_breaches(report: Mapping[str, Any], report_path: Path, suites_dir: Path, history: Path | None,
                    promotion: Any) -> list[Breach]:
    """Every clause a report does not meet, held against the project as it is now: its suites, its promotion
    record (`promotion`, or None) and the history store that recorded the run."""
    terms = report.get("contract")
    if not isinstance(terms, Mapping):
        return [Breach(COVERAGE, "the report records no promotion contract (it was written by an older "
                                 "pytest-ftgate, or by hand): gate the candidate again, then promote that run")]
    breaches = [Breach(str(b.get("clause")), str(b.get("reason"))) for b in terms.get("breaches") or []
                if isinstance(b, Mapping)]
    if not breaches_of(breaches, COVERAGE):
        breaches += _coverage(project_suites(suites_dir), dict(terms.get("gated") or {}), suites_dir, "the gated run")
    recorded = terms.get("promotion") or {}
    if promotion is not None and not breaches_of(breaches, AGAINST_PRODUCTION) and (
            recorded.get("fingerprint") != promotion.fingerprint or terms.get("baseline") != "promoted"):
        breaches.append(Breach(AGAINST_PRODUCTION, (
            f"the run was gated against {terms.get('baseline')!r}, and production is now {promotion.name} "
            f"(promoted {promotion.promoted_at}): gate the candidate against it, then promote that run")))
    breaches += _intact(report_path, history)
    return breaches


def _intact(report_path: Path, history: Path | None) -> list[Breach]:
    from ..stores.history import report_recorded

    if history is None:
        return [Breach(INTACT_RECORD, "no history store to check the report against (the history is off): promote "
                                      "from the checkout whose history recorded the run")]
    by_sha, by_path = report_recorded(history, report_path)
    if by_sha:
        return []
    why = ("it is not the report.json the history recorded for that run: it was edited since" if by_path
           else "the history holds no run that wrote this report")
    return [Breach(INTACT_RECORD, f"{report_path}: {why} ({history}). Gate again, and promote the report that run "
                                  "writes, unedited")]


# ---- what a promotion records besides the model ----------------------------------------------------------
def shipped_prompts(suites_dir: Path) -> dict[str, dict[str, Any]]:
    """Each suite file's candidate prompt, as a promotion records it: production answers with these later."""
    return {name: {"system": s.prompts["candidate"].system, "few_shot": [list(t) for t in s.prompts["candidate"].few_shot]}
            for name, s in _suite_files(suites_dir) if not isinstance(s, Exception)}


def golden_origins(suites_dir: Path) -> dict[str, dict[str, Any]]:
    """Each golden suite's origin as a promotion keeps it: the file's own origin, else its goldens (the first)."""
    from ..errors import SuiteError
    from ..stores.goldens import as_origin, read_goldens

    found: dict[str, dict[str, Any]] = {}
    for name, suite in _suite_files(suites_dir):
        if isinstance(suite, Exception) or suite.kind != "golden":
            continue
        try:
            golden = read_goldens(suite.options["goldens"])
        except SuiteError:
            continue
        if golden is not None:
            frozen_at = str(json.loads(golden.path.read_text(encoding="utf-8")).get("frozen_at", ""))
            found[name] = as_origin(golden, frozen_at).to_json()
    return found


def refusal(report_path: Path, breaches: Sequence[Breach]) -> str:
    """What `ftgate promote` says when it refuses: every clause that failed."""
    lines = [f"{report_path}: not promoted: the run does not meet {len(breaches)} clause(s) of the promotion contract:"]
    lines += [f"  - {b}" for b in breaches]
    return "\n".join(lines)
