"""One gate run: plan generation jobs, serve them from the cache or the subject, score, decide.

Usable without pytest:

    from pytest_ftgate import load_suite, run_gate, RunConfig
    run = run_gate([load_suite("suites/routing.yaml")], RunConfig(candidate="adapter/"))
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .cache import Cache, cache_key
from .gate import Threshold, decide, effective_gate
from .goldens import GoldenSet, read_goldens, write_goldens
from .subjects import Job, Subject, SubjectOptions, resolve_subjects
from .suite import Suite
from .types import CaseResult, Comparison, GateDecision, Output, SubjectInfo, SuiteResult


@dataclass(frozen=True)
class RunConfig:
    """Everything a gate run needs besides the suites."""

    candidate: str | None = None
    baseline: str | None = None
    subject_options: SubjectOptions = field(default_factory=SubjectOptions)
    cache_dir: Path | None = Path(".ftgate/cache")
    thresholds: tuple[tuple[Threshold, ...], ...] = ()  # override layers: ini, then command line
    update_goldens: bool = False
    progress: bool = True
    seed: int = 0
    pricing: Path | None = None  # None: the bundled defaults (pytest_ftgate/data/pricing.yaml)


@dataclass(frozen=True)
class SuiteOutcome:
    suite: Suite
    gate: dict[str, Any]
    baseline: SuiteResult
    candidate: SuiteResult | None
    comparison: Comparison | None
    decisions: tuple[GateDecision, ...]
    goldens: GoldenSet | None
    goldens_written: bool = False


@dataclass(frozen=True)
class GateRun:
    outcomes: tuple[SuiteOutcome, ...]
    baseline: SubjectInfo
    candidate: SubjectInfo | None
    info: dict[str, Any]
    tco: Any = None  # tco.TCO

    def outcome(self, suite_path: Path) -> SuiteOutcome:
        for o in self.outcomes:
            if o.suite.path.resolve() == suite_path.resolve():
                return o
        raise KeyError(suite_path)

    @property
    def decisions(self) -> list[GateDecision]:
        return [d for o in self.outcomes for d in o.decisions]

    @property
    def blocked(self) -> bool:
        return any(d.blocks for d in self.decisions)


def generate_all(
    subject: Subject, jobs: Sequence[Job], cache: Cache, progress: bool = True
) -> list[Output]:
    """Outputs for every job: cache hits first, then one batched pass over the unique misses."""
    keys = [cache_key(subject.info.fingerprint, j.request.key) for j in jobs]
    found = cache.get_many(keys) if subject.cacheable else {}
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
                cache.put_many(subject.info.fingerprint, items)

        bar = None
        if progress and subject.cacheable:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo_jobs), desc=f"ftgate {subject.info.role}", unit="case", file=sys.stderr, leave=False)
        try:
            subject.run(todo_jobs, on_batch, bar)
        finally:
            if bar is not None:
                bar.close()
    return [found[k] for k in keys]


def _jobs(suites: Sequence[Suite], role: str) -> list[Job]:
    from .types import Request

    return [
        Job(s.name, c, Request(s.prompts[role].render(c), s.params))
        for s in suites
        for c in s.cases
    ]


def _perplexities(subject: Subject, suites: Sequence[Suite], jobs: list[Job]) -> dict[tuple[str, str], float | None]:
    """The subject's perplexity of `expected` for the cases of suites that score it."""
    wanted = {s.name for s in suites if any(x.needs_perplexity for x in s.scorers)}
    todo = [j for j in jobs if j.suite in wanted and j.case.expected is not None]
    if not todo:
        return {}
    targets = [j.case.expected if isinstance(j.case.expected, str) else str(j.case.expected) for j in todo]
    values = subject.perplexity(todo, targets)
    return {(j.suite, j.case.id): v for j, v in zip(todo, values)}


def _score(suites: Sequence[Suite], subject: Subject, role: str, cache: Cache, progress: bool) -> dict[str, SuiteResult]:
    jobs = _jobs(suites, role)
    outputs = generate_all(subject, jobs, cache, progress)
    ppl = _perplexities(subject, suites, jobs)
    results: dict[str, SuiteResult] = {}
    it = iter(outputs)
    for s in suites:
        rows = []
        for case in s.cases:
            out = next(it)
            scores = tuple(
                scorer(case, ppl.get((s.name, case.id))) if scorer.needs_perplexity else scorer(case, out.text)
                for scorer in s.scorers
            )
            rows.append(CaseResult(case, out, scores))
        results[str(s.path)] = SuiteResult(s.name, subject.info, tuple(rows))
    return results


def run_gate(suites: Sequence[Suite], config: RunConfig) -> GateRun:
    """Evaluate baseline (and candidate) on the suites and decide every gate criterion."""
    from .tco import compute_tco, load_pricing

    started = time.time()
    pricing = load_pricing(config.pricing)  # a bad pricing file fails before any model loads
    cache = Cache(config.cache_dir)
    try:
        baseline, candidate = resolve_subjects(config.candidate, config.baseline, config.subject_options, cache)
        base_results = _score(suites, baseline, "baseline", cache, config.progress)
        cand_results = None
        if candidate is not None:
            cand_results = _score(suites, candidate, "candidate", cache, config.progress)
    finally:
        cache.close()

    outcomes = []
    for s in suites:
        gate = effective_gate(s, *config.thresholds)
        b = base_results[str(s.path)]
        c = cand_results[str(s.path)] if cand_results else None
        written = False
        golden = None
        if s.kind == "golden":
            if config.update_goldens:
                golden, written = write_goldens(s.goldens_path, b), True
            else:
                golden = read_goldens(s.goldens_path)
        decisions, cmp = decide(s, gate, b, c, golden)
        if written:
            decisions = [
                GateDecision(s.name, d.criterion, "passed", f"froze {len(golden.hashes)} goldens to {s.goldens_path}", d.figures)
                if d.criterion == "regressions" and c is None else d
                for d in decisions
            ]
        outcomes.append(SuiteOutcome(s, gate, b, c, cmp, tuple(decisions), golden, written))
    info = run_info(config, time.time() - started)
    run = GateRun(tuple(outcomes), baseline.info, candidate.info if candidate else None, info)
    return replace(run, tco=compute_tco(run, pricing))


def run_info(config: RunConfig, duration_s: float) -> dict[str, Any]:
    """Provenance of the run: when, where, what code, which library versions."""
    from importlib import metadata

    versions = {}
    for dist in ("pytest-ftgate", "torch", "transformers", "peft", "openai"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(duration_s, 3),
        "seed": config.seed,
        "git_commit": commit,
        "machine": {"node": platform.node(), "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": versions,
        "thresholds": [str(t) for layer in config.thresholds for t in layer],
    }
