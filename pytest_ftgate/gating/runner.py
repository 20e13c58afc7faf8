"""One gate run: plan generation jobs, serve them from the cache or the subject, score, decide.

Usable without pytest:

    from pytest_ftgate import load_suite, run_gate, RunConfig
    run = run_gate([load_suite("suites/routing.yaml")], RunConfig(candidate="adapter/"))
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from ..settings.config import RunConfig
from .contract import PRODUCTION, as_shipped, check_promoted_reachable, promotion_for_contract, run_terms, same_model
from ..errors import (EXIT_BLOCKED, EXIT_GATE_ERROR, EXIT_PARTIAL, GenerationError,
                     JudgeRefused, OptionError, SubjectError)
from .gate import check_targets, criteria, decide, effective_gate
from ..kinds import get_kind
from ..kinds.sampling import expanded, nondeterminism_notice, reduce_result, sample_params
from ..machine.provenance import git_commit, library_versions, machine
from ..cost.budgets import run_budgets
from ..stores.cache import Cache, cache_key
from ..subjects import Job, Resolver, Subject
from ..types import (CaseResult, GateDecision, Output, Request, Score, SubjectInfo, Suite, SuiteOutcome,
                    SuiteResult)

Subjects = tuple[Subject, Subject | None]  # (baseline, candidate)


@dataclass(frozen=True)
class GateRun:
    outcomes: tuple[SuiteOutcome, ...]
    baseline: SubjectInfo
    candidate: SubjectInfo | None
    info: dict[str, Any]
    tco: Any = None  # tco.TCO
    not_run: tuple[str, ...] = ()  # "suite::criterion" of criteria deselected (-k, -m, --deselect)
    evaluation: tuple[Any, ...] = ()  # judging.service.JudgeUsage of each judge used: an evaluation cost
    notices: tuple[str, ...] = ()  # what every report must say about the run as a whole
    checks: tuple[GateDecision, ...] = ()  # decisions about the run as a whole (leakage), beside the suites' own
    contract: Any = None  # contract.Terms of a run with a candidate: what a promotion needs, and its breaches

    def outcome(self, suite_path: Path) -> SuiteOutcome:
        for o in self.outcomes:
            if o.suite.path.resolve() == suite_path.resolve():
                return o
        raise KeyError(suite_path)

    @property
    def decisions(self) -> list[GateDecision]:
        return [*self.checks, *(d for o in self.outcomes for d in o.decisions)]

    @property
    def blocked(self) -> bool:
        return any(d.blocks for d in self.decisions)

    @property
    def errored(self) -> bool:
        """The gate could not decide some criterion: not a verdict on the candidate."""
        return any(d.status == "error" for d in self.decisions)

    @property
    def unchecked(self) -> list[str]:
        """"suite::criterion" of criteria that ran but checked nothing (with a candidate: nothing to compare)."""
        if self.candidate is None:
            return []
        return [f"{d.suite}::{d.criterion}" for d in self.decisions if d.status == "skipped"]

    def exit_status(self, allow_partial: bool = False) -> int:
        """6 could not run, 1 blocked, 7 partial, else 0. `allow_partial` forgives criteria deselected on purpose,
        never a criterion that checked nothing."""
        if self.errored:
            return EXIT_GATE_ERROR
        if self.blocked:
            return EXIT_BLOCKED
        if self.verdict == "partial" and (self.unchecked or not allow_partial):
            return EXIT_PARTIAL
        return 0

    @property
    def breaches(self) -> tuple[Any, ...]:
        """The clauses of the promotion contract (pytest_ftgate.gating.contract) this run does not meet."""
        return tuple(self.contract.breaches) if self.contract is not None else ()

    @property
    def verdict(self) -> str:
        """error | blocked | baseline-only | partial | promoted. Only a full, clean run promotes: a
        criterion deselected, one that checked nothing, or a clause of the promotion contract not met
        makes it partial."""
        if self.errored:
            return "error"
        if self.candidate is None:
            return "baseline-only"
        if self.blocked:
            return "blocked"
        if self.not_run or self.unchecked or not self.decisions or self.breaches:
            return "partial"
        return "promoted"


def generate_all(
    subject: Subject, jobs: Sequence[Job], cache: Cache, progress: bool = True
) -> list[Output]:
    """Outputs for every job: cache hits first, then one batched pass over the unique misses. A subject
    whose outputs may not be reused (`Subject.reuse`) generates every job; what it answers is stored (under
    the same keys, replaced each run) for a run that is told it may reuse them."""
    keys = [cache_key(subject.info.cache_key, j.request.key) for j in jobs]
    found = cache.get_many(keys) if subject.cacheable and subject.reuse else {}
    todo: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key not in found and key not in todo:
            todo[key] = i
    if todo:
        todo_keys = list(todo)
        todo_jobs = [jobs[todo[k]] for k in todo_keys]

        def on_batch(batch: list[tuple[int, Output]]) -> None:
            items = [(todo_keys[i], out) for i, out in batch]
            found.update(items)
            if subject.cacheable:
                cache.put_many(subject.info.cache_key, items)

        bar = None
        if progress and subject.cacheable:
            from .progress import progress as progress_display

            suites = sorted({j.suite for j in todo_jobs})
            where = suites[0] if len(suites) == 1 else f"{len(suites)} suites"
            bar = progress_display(len(todo_jobs), f"{subject.info.role} ({where})")
        try:
            subject.run(todo_jobs, on_batch, bar)
        finally:
            if bar is not None:
                bar.close()
    return [found[k] for k in keys]


def rerun_differences(subject: Subject, jobs: Sequence[Job]) -> list[tuple[Job, str, str]]:
    """Generate the greedy jobs twice, past the cache; the jobs whose two outputs differ."""
    greedy = [j for j in jobs if j.request.params.greedy]
    runs: list[dict[int, str]] = [{}, {}]
    for run in runs:
        subject.run(greedy, lambda batch, run=run: run.update((i, o.text) for i, o in batch))
    return [(j, runs[0][i], runs[1][i]) for i, j in enumerate(greedy) if runs[0][i] != runs[1][i]]


def check_determinism(subject: Subject, jobs: Sequence[Job], n: int) -> None:
    """--ftgate-rerun-check: a serving stack whose greedy outputs change between two identical runs
    makes every verdict irreproducible; that is an infrastructure error, not a gate result."""
    if not subject.cacheable:
        return  # outputs made elsewhere: nothing here generates
    differing = rerun_differences(subject, list(jobs)[:n])
    if differing:
        shown = "; ".join(f"{j.suite}/{j.case.id}: {a[:40]!r} then {b[:40]!r}" for j, a, b in differing[:5])
        raise GenerationError(
            f"{subject.info.name} is not deterministic: {len(differing)} of {min(n, len(jobs))} greedy case(s) gave "
            f"different outputs in two identical runs ({shown}). Its verdicts would not be reproducible: make the "
            "serving stack deterministic (batch-invariant kernels, a fixed batch size, one replica) before gating"
        )


def _jobs(suites: Sequence[Suite], prompt: str, *, samples: bool = True) -> list[Job]:
    """One job per case and sample (kinds.sampling), its chat rendered with the suite's `prompt` ("baseline" or
    "candidate"); `samples=False`: the first sample only."""
    return [Job(s.name, c, Request(s.prompts[prompt].render(c), sample_params(s.params, i), c.tools, c.tool_choice), i)
            for s in suites for c in s.cases for i in range(s.sampling.samples if samples else 1)]


def _perplexities(subject: Subject, suites: Sequence[Suite], jobs: list[Job]) -> dict[tuple[str, str], float | None]:
    """The subject's perplexity of `expected` for the cases of suites that score it."""
    wanted = {s.name for s in suites if any(x.needs_perplexity for x in s.scorers)}
    todo = [j for j in jobs if j.suite in wanted and j.case.expected is not None]
    if not todo:
        return {}
    targets = [j.case.expected if isinstance(j.case.expected, str) else str(j.case.expected) for j in todo]
    values = subject.perplexity(todo, targets)
    return {(j.suite, j.case.id): v for j, v in zip(todo, values)}


Generated = dict[Path, tuple[list[Output], dict[str, float | None]]]  # suite -> outputs in case order, perplexities


def _generate(suites: Sequence[Suite], subject: Subject, prompt: str, cache: Cache, progress: bool) -> Generated:
    jobs = _jobs(suites, prompt)
    outputs = generate_all(subject, jobs, cache, progress)
    ppl = _perplexities(subject, suites, _jobs(suites, prompt, samples=False))
    it = iter(outputs)
    return {s.path: ([next(it) for _ in range(len(s.cases) * s.sampling.samples)],
                     {c.id: ppl.get((s.name, c.id)) for c in s.cases}) for s in suites}


def apply_scorers(suite: Suite, info: SubjectInfo, outputs: list[Output], ppl: dict[str, float | None]) -> SuiteResult:
    """The suite's own scorers on each output (the default for kinds that do not score themselves)."""
    rows = []
    for case, out in zip(suite.cases, outputs):
        scores = tuple(scorer(case, ppl.get(case.id)) if scorer.needs_perplexity else scorer(case, out.text)
                       for scorer in suite.scorers)
        rows.append(CaseResult(case, out, scores))
    return SuiteResult(suite.name, info, tuple(rows))


class Services:
    """What kinds may use during a run: its config, the resolver (and its cache), and the judges."""

    def __init__(self, config: RunConfig, resolver: Resolver):
        self.config, self.resolver = config, resolver
        self._judges: dict[str, Any] = {}

    @property
    def cache(self) -> Cache:
        return self.resolver.cache

    def judge(self, spec: str) -> Any:
        """The judge for a spec, resolved like the candidate and baseline (sharing their loads), built once."""
        if spec not in self._judges:
            from ..judging.service import CachedJudge

            self._judges[spec] = CachedJudge(self.resolver.judge(spec), self.cache, spec)
        return self._judges[spec]

    @property
    def usage(self) -> tuple[Any, ...]:
        return tuple(j.usage for j in self._judges.values())

    def judge_notices(self, candidate: Subject | None) -> list[str]:
        """A judge with the candidate's own weights grades its own answers: said in every report."""
        if candidate is None:
            return []
        return [f"the judge {spec} is the candidate itself (fingerprint {candidate.info.fingerprint[:12]}): it grades its "
                "own answers, which judges are known to favour; prefer an independent judge"
                for spec, j in self._judges.items() if j.subject.info.fingerprint == candidate.info.fingerprint]


def _score_suite(s: Suite, generated: dict[str, Generated], infos: dict[str, SubjectInfo], services: Services) -> Any:
    """Each subject's outputs scored by the suite's scorers, or by its kind; a sampled suite's samples are each
    scored, then reduced to one outcome per case (kinds.sampling)."""
    from ..kinds.base import Scored

    if s.sampling.samples == 1:
        return _score_once(s, generated, infos, services)
    scored = _score_once(expanded(s), generated, infos, services)
    reduced = {role: reduce_result(s, getattr(scored, role)) for role in ("baseline", "candidate")
               if getattr(scored, role) is not None}
    return Scored(reduced["baseline"], reduced.get("candidate"), scored.state)


def _score_once(s: Suite, generated: dict[str, Generated], infos: dict[str, SubjectInfo], services: Services) -> Any:
    from ..kinds.base import Scored, ScoringContext

    kind = get_kind(s.kind)
    if kind.score is None:
        results = {role: apply_scorers(s, infos[role], *g[s.path]) for role, g in generated.items()}
        return Scored(results["baseline"], results.get("candidate"))
    outputs = {role: g[s.path][0] for role, g in generated.items()}
    try:
        return kind.score(ScoringContext(s, outputs, {r: infos[r] for r in outputs}, services))
    except JudgeRefused as exc:  # this suite cannot be scored; the others still are
        unscored = {role: SuiteResult(s.name, infos[role], tuple(CaseResult(c, o, (Score.unscored(str(exc), s.kind),))
                                                                  for c, o in zip(s.cases, outs)))
                    for role, outs in outputs.items()}
        return Scored(unscored["baseline"], unscored.get("candidate"), exc)


def run_gate(
    suites: Sequence[Suite],
    config: RunConfig,
    resolver: Resolver | None = None,
    selection: Mapping[Path, frozenset[str]] | None = None,
) -> GateRun:
    """Evaluate baseline (and candidate) on the suites and decide every gate criterion.

    `resolver` builds the subjects and judges and holds the cache (the plugin's session shares one:
    one model load per session); by default the run makes its own from the config. `selection`
    keeps only the named criteria of each suite (a suite it does not name is not evaluated); the
    others are recorded as not run, and the verdict says partial."""
    from ..cost.pricing import load_pricing
    from ..cost.tco import compute_tco
    from ..stores.cache import Cache

    started = time.time()
    check_targets(config.all_thresholds, suites, "--ftgate-fail/ftgate_fail")
    pricing = load_pricing(config.pricing)  # a bad pricing file fails before any model loads
    gated = [s for s in suites if selection is None or selection.get(s.path)]
    not_run = [f"{s.name}::{c}" for s in suites if s not in gated for c in criteria(s, effective_gate(s, *config.thresholds))]
    own = resolver is None
    resolver = resolver or Resolver(config.subject_options, Cache(config.cache_dir))
    cache = resolver.cache
    try:
        promotion = promotion_for_contract(config) if config.candidate else None
        baseline, candidate, origin, served_with = pick_subjects(config, resolver)
        prompts = {"baseline": served_with, "candidate": "candidate"}
        shipped = ""
        if served_with == "candidate" and promotion is not None and promotion.prompts:
            gated, shipped = as_shipped(gated, promotion, config.suites_dir)
            prompts["baseline"] = PRODUCTION
        services = Services(config, resolver)
        for s in gated:  # what a suite needs besides the subjects (a judge) is found before anything generates
            kind = get_kind(s.kind)
            if kind.preflight is not None:
                kind.preflight(s, services)
        leakage = None
        if candidate is not None:  # before anything generates: a candidate trained on its eval cases would lie
            from ..files.leakage import check_leakage

            leakage = check_leakage(candidate, gated, config.train_data, [Path.cwd(), config.suites_dir.parent])
        same = _same_subject(baseline, candidate)
        if config.rerun_check:
            check_determinism(baseline, _jobs(gated, prompts["baseline"], samples=False), config.rerun_check)
        generated = {"baseline": _generate(gated, baseline, prompts["baseline"], cache, config.progress)}
        infos = {"baseline": baseline.info}
        if candidate is not None:
            generated["candidate"] = _generate(gated, candidate, prompts["candidate"], cache, config.progress)
            infos["candidate"] = candidate.info
        roles = {"baseline": baseline, **({"candidate": candidate} if candidate is not None else {})}
        outcomes = []
        for s in gated:
            scored = _score_suite(s, generated, infos, services)
            features = _run_features(s, roles, scored, cache, config, prompts, selection)
            outcome, skipped = _decide_suite(s, config, selection, scored, features, same, prompts, pricing)
            outcomes.append(outcome)
            not_run += skipped
    finally:
        if own:
            resolver.close()
            cache.close()
    info = run_info(config, time.time() - started)
    if config.rerun_check:
        info["rerun_check"] = {"cases": min(config.rerun_check, len(_jobs(gated, prompts["baseline"], samples=False))), "differing": 0,
                               "subject": baseline.info.name}
    unchecked = leakage.summary if leakage is not None and not leakage.checked else ""
    erratic = [nondeterminism_notice(o.suite, r) for o in outcomes for r in (o.baseline, o.candidate)]
    data = leakage.data_warnings if leakage is not None else ()
    notices = tuple(n for n in (origin, shipped, same, unchecked, *data, *erratic, *services.judge_notices(candidate)) if n)
    check = leakage.decision(config.require_leakage_check) if leakage is not None else None
    checks = ((check,) if check is not None else ()) + tuple(run_budgets(config, outcomes, pricing))
    terms = None
    if candidate is not None:
        full = [s for s in gated if not any(n.startswith(f"{s.name}::") for n in not_run)]
        terms = run_terms(config.suites_dir, full, baseline=baseline.info, promotion=promotion,
                          based_on=config.baseline or "the candidate's base model", froze_goldens=config.update_goldens)
    run = GateRun(tuple(outcomes), baseline.info, candidate.info if candidate else None, info, not_run=tuple(not_run),
                  evaluation=services.usage, notices=notices, checks=checks,
                  contract=terms)
    return replace(run, tco=compute_tco(run, pricing))


class Picked(NamedTuple):
    """The run's subjects, what the reports say of the baseline, and the prompt it answers with."""

    baseline: Subject
    candidate: Subject | None
    said: str = ""
    baseline_prompt: str = "baseline"  # "candidate" for a promoted model: it shipped with the candidate's prompt


def pick_subjects(config: RunConfig, resolver: Resolver) -> Picked:
    """The baseline and candidate of a run. With a promotion record beside the suites and
    no --baseline, the baseline is the promoted model; `--baseline=base` is the adapter's base model,
    `--baseline=promoted` the record's model. A promoted model whose files changed is an error. The
    promoted model is served as it was promoted: with the suites' candidate prompts (see `baseline_prompt`)."""
    from ..stores.promotion import BASE, PROMOTED, read_promotion, record_path

    wanted = config.baseline
    promotion = read_promotion(config.suites_dir) if wanted == PROMOTED or (wanted is None and config.candidate) else None
    if wanted == PROMOTED and promotion is None:
        where = record_path(config.suites_dir)
        raise OptionError(f"--baseline=promoted: there is no promotion record at {where}. Promote a gated run first "
                          "(`ftgate promote REPORT.json`), or name the baseline")
    if wanted == BASE or promotion is None:
        return Picked(*resolver.pair(config.candidate, None if wanted == BASE else wanted))
    where = record_path(config.suites_dir)
    spec = promotion.resolved_spec(where.parent)
    check_promoted_reachable(promotion, spec, where)
    baseline, candidate = resolver.pair(config.candidate, spec)
    changed = same_model(f"the promoted model {promotion.name} ({where})", "that was promoted", promotion.fingerprint,
                         promotion.served, baseline.info)
    if changed is not None:
        raise SubjectError(f"promotion contract, {changed}. Restore it, or promote again")
    said = (f"baseline: the promoted model {promotion.name} (promoted {promotion.promoted_at}, {where}), answering "
            "with the prompts it was promoted with; --baseline=base looks against the adapter's base model instead")
    return Picked(baseline, candidate, said, "candidate")


SAME_PROMPT = "the candidate and the baseline are the same model and this suite gives both the same prompt"


def _same_subject(baseline: Subject, candidate: Subject | None) -> str:
    """A notice when the candidate has the same weights as the baseline ('' when it does not)."""
    if candidate is None or candidate.info.fingerprint != baseline.info.fingerprint:
        return ""
    return (f"the candidate has the same weights as the baseline ({candidate.info.name}, fingerprint "
            f"{candidate.info.fingerprint[:12]}): only prompts differ between them, and a suite that gives both the "
            "same prompt cannot gate (its criteria error). Did you mean another --candidate, or --baseline?")


def _run_features(s: Suite, subjects: dict[str, Subject], scored: Any, cache: Cache, config: RunConfig,
                  prompts: dict[str, str], selection: Mapping[Path, frozenset[str]] | None) -> dict[str, Any]:
    """Each feature the suite declares does its run's work (a perturbation search), unless all its criteria were
    deselected; its generations go through the run's cache, batched like the others."""
    from ..kinds import get_feature
    from ..kinds.base import FeatureRun

    def generate(subject: Subject, jobs: list[Job]) -> list[Output]:
        return generate_all(subject, jobs, cache, config.progress and len(jobs) > 1)

    results = {}
    for key, spec in s.features.items():
        feature = get_feature(key)
        if selection is not None and not any(c.name in selection[s.path] for c in feature.criteria):
            continue
        results[key] = feature.run(FeatureRun(s, spec, subjects, prompts,
                                              {role: getattr(scored, role) for role in subjects}, config.seed, generate))
    return results


def _decide_suite(s: Suite, config: RunConfig, selection: Mapping[Path, frozenset[str]] | None,
                  scored: Any, features: dict[str, Any] | None = None, same: str = "",
                  prompts: Mapping[str, str] | None = None, pricing: Any = None) -> tuple[SuiteOutcome, list[str]]:
    kind = get_kind(s.kind)
    gate = effective_gate(s, *config.thresholds)
    b, c = scored.baseline, scored.candidate
    state = (kind.prepare(s, b, config.update_goldens) if kind.prepare
             else kind.summary(s, b, c) if kind.summary else scored.state)
    prompts = prompts or {"baseline": "baseline", "candidate": "candidate"}
    if same and s.prompts[prompts["baseline"]] == s.prompts[prompts["candidate"]]:
        why = (f"suite {s.name}: {SAME_PROMPT} ({b.subject.name}): a gate of a model against itself measures nothing. "
               "Pass the candidate you mean with --candidate, or give it its own prompt (prompt.candidate)")
        decisions, cmp = [GateDecision(s.name, name, "error", why) for name in criteria(s, gate)], None
    elif isinstance(state, JudgeRefused):
        decisions, cmp = [GateDecision(s.name, name, "error", str(state)) for name in criteria(s, gate)], None
    else:
        decisions, cmp = decide(s, gate, b, c, state, features, pricing)
    skipped: list[str] = []
    if selection is not None:
        chosen = selection[s.path]
        skipped = [f"{s.name}::{d.criterion}" for d in decisions if d.criterion not in chosen]
        decisions = [d for d in decisions if d.criterion in chosen]
    return SuiteOutcome(s, gate, b, c, cmp, tuple(decisions), state, dict(features or {})), skipped


def run_info(config: RunConfig, duration_s: float) -> dict[str, Any]:
    """Provenance of the run: when, where, what code, which library versions, which options."""
    return {
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(duration_s, 3),
        "seed": config.seed,
        "batch_size": config.subject_options.batch_size,
        "git_commit": git_commit(),
        "machine": machine(),
        "versions": library_versions(),
        "thresholds": [str(t) for t in config.all_thresholds],
    }
