"""Sampled decoding: each case generated `generate.samples` times, its samples reduced to one outcome.

Sample i of a case is the request with seed `generate.seed + i`, so each sample has its own cache
entry: raising `samples: 5` to 8 generates three more per case. The scorers (or the kind) score
every sample; the case's reducer (`reduce:` on the case, else `generate.reduce`) makes one outcome
of them, and every statistic after that counts the case once, never once per sample.

What the reports show: how often each case's samples disagreed (flaky cases first), and, at
temperature 0, the subjects whose samples differ: a nondeterministic serving stack.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, replace
from ..types import CaseResult, GenerationParams, Score, Suite, SuiteOutcome, SuiteResult
from .base import FeatureSection, clip, pct

SCORER = "samples"


def sample_params(params: GenerationParams, index: int) -> GenerationParams:
    """The decoding parameters of sample `index`: its own seed (sample 0 is the suite's own request)."""
    return params if index == 0 else replace(params, seed=params.seed + index)


def expanded(suite: Suite) -> Suite:
    """The suite with each case repeated once per sample, in sample order: what the scorers or the kind score."""
    k = suite.sampling.samples
    return replace(suite, cases=tuple(c for c in suite.cases for _ in range(k)))


def _answer(text: str) -> str:
    return " ".join(text.split()).casefold()


def reduce_case(samples: list[CaseResult], how: str) -> CaseResult:
    """One outcome from a case's scored samples. A sample that could not be scored leaves the case unscored:
    an outcome decided on part of its samples would not be the one asked for."""
    first = samples[0]
    k, passed = len(samples), sum(1 for s in samples if s.passed)
    unscored = [s for s in samples if s.passed is None]
    if unscored:
        why = f"{len(unscored)} of {k} samples could not be scored ({unscored[0].failure_detail or 'no score'})"
        return CaseResult(first.case, first.output, (Score.unscored(why, SCORER),), tuple(samples))
    if how == "majority":
        votes = Counter(_answer(s.output.text) for s in samples)
        top = max(votes.values())
        chosen = next(s for s in samples if votes[_answer(s.output.text)] == top)  # ties: the earliest sample
        outcome, value = bool(chosen.passed), chosen.value
        said = (f"the most frequent answer ({top} of {k} samples) {'passes' if outcome else 'fails'}" if top > 1 else
                f"no two of the {k} samples agree, so the first sample's answer decides: it "
                f"{'passes' if outcome else 'fails'}")
    else:
        outcome = {"mean": passed * 2 >= k, "pass_at_k": passed > 0, "pass_all": passed == k}[how]
        values = [s.value for s in samples]
        value = sum(values) / k if how == "mean" and None not in values else passed / k
        chosen = next(s for s in samples if bool(s.passed) == outcome)
        said = f"{passed} of {k} samples passed"
    why = "" if outcome else f"; e.g. sample {samples.index(chosen)}: {chosen.failure_detail}"
    label = next((x.label for x in chosen.scores if x.label is not None), None)
    score = Score(outcome, value, f"{said} ({how}){why}", SCORER, label)
    return CaseResult(first.case, chosen.output, (score,), tuple(samples))


def reduce_result(suite: Suite, result: SuiteResult) -> SuiteResult:
    """The expanded suite's scored rows, k per case in case order, reduced to one row per case."""
    k = suite.sampling.samples
    rows = result.results
    if len(rows) != k * len(suite.cases):
        raise ValueError(f"suite {suite.name}: {len(rows)} scored samples for {len(suite.cases)} cases x {k}")
    reduced = tuple(reduce_case(list(rows[i * k:(i + 1) * k]), case.reduce or suite.sampling.reduce)
                    for i, case in enumerate(suite.cases))
    return replace(result, results=reduced)


# ---- what the reports show -----------------------------------------------------------------------

@dataclass(frozen=True)
class CaseSamples:
    case_id: str
    role: str
    reduce: str
    passed: int
    samples: int
    answers: int  # distinct answers (whitespace and case ignored)
    outcome: bool | None

    @property
    def flaky(self) -> bool:
        """Some samples passed and some failed: the case's verdict depends on the draw."""
        return 0 < self.passed < self.samples


@dataclass(frozen=True)
class SamplesView:
    suite: str
    samples: int
    reduce: str
    temperature: float
    cases: tuple[CaseSamples, ...]  # flaky first
    nondeterministic: dict[str, int]  # role -> cases whose samples differ at temperature 0

    def flaky(self, role: str) -> list[CaseSamples]:
        return [c for c in self.cases if c.role == role and c.flaky]

    @property
    def roles(self) -> list[str]:
        return [r for r in ("baseline", "candidate") if any(c.role == r for c in self.cases)]


def case_samples(result: SuiteResult, default: str) -> list[CaseSamples]:
    return [CaseSamples(r.case.id, result.subject.role, r.case.reduce or default, sum(1 for s in r.samples if s.passed),
                        len(r.samples), len({_answer(s.output.text) for s in r.samples}), r.passed)
            for r in result.results if r.samples]


def nondeterministic(suite: Suite, result: SuiteResult | None) -> list[str]:
    """Ids of the cases whose samples gave different answers at temperature 0 (none when the suite samples)."""
    if result is None or not suite.params.greedy or suite.sampling.samples < 2:
        return []
    return [c.case_id for c in case_samples(result, suite.sampling.reduce) if c.answers > 1]


def nondeterminism_notice(suite: Suite, result: SuiteResult | None) -> str:
    """What every report says of a subject whose greedy samples differ ('' when they agree)."""
    ids = nondeterministic(suite, result)
    if not ids or result is None:
        return ""
    return (f"{result.subject.name} ({result.subject.role}) is nondeterministic: at temperature 0 its "
            f"{suite.sampling.samples} samples gave different answers on {len(ids)} of {result.n} case(s) of suite "
            f"{suite.name} ({', '.join(ids[:5])}{', …' if len(ids) > 5 else ''}); a single greedy run of it is not "
            "reproducible, so gate it with samples and a reducer")


def section(outcome: SuiteOutcome) -> FeatureSection | None:
    """The samples section of a sampled suite's reports: per subject, how many cases' samples disagreed."""
    s = outcome.suite
    if s.sampling.samples < 2:
        return None
    results = [r for r in (outcome.baseline, outcome.candidate) if r is not None]
    cases = [c for r in results for c in case_samples(r, s.sampling.reduce)]
    cases.sort(key=lambda c: (not c.flaky, c.role != "candidate", c.case_id))
    view = SamplesView(s.name, s.sampling.samples, s.sampling.reduce, s.params.temperature, tuple(cases),
                       {r.subject.role: len(nondeterministic(s, r)) for r in results if nondeterministic(s, r)})
    data = {"samples": view.samples, "reduce": view.reduce, "temperature": view.temperature,
            "flaky": {role: len(view.flaky(role)) for role in view.roles},
            "nondeterministic": view.nondeterministic, "cases": [{**asdict(c), "flaky": c.flaky} for c in cases]}
    return FeatureSection("samples", data, lambda verbose, most: terminal_lines(view, verbose, most),
                          lambda most: markdown_lines(view, most), "samples.html.j2", view)


def _summary(v: SamplesView, role: str) -> str:
    n = sum(1 for c in v.cases if c.role == role)
    flaky = len(v.flaky(role))
    odd = f"; nondeterministic at temperature 0 on {v.nondeterministic[role]}" if role in v.nondeterministic else ""
    return f"{role}: samples disagreed on {flaky} of {n} case(s) ({pct(flaky / n) if n else '—'}){odd}"


def terminal_lines(v: SamplesView, verbose: int = 0, most: int = 10) -> list[str]:
    lines = [f"samples in {v.suite}: {v.samples} per case at temperature {v.temperature:g}, reduced by {v.reduce}; "
             + "; ".join(_summary(v, role) for role in v.roles)]
    flaky = [c for c in v.cases if c.flaky]
    shown = flaky if verbose > 0 else flaky[:most]
    for c in shown:
        lines.append(f"  [{c.role}] {c.case_id}: {c.passed}/{c.samples} samples passed, {c.answers} distinct answer(s); "
                     f"{c.reduce}: {'pass' if c.outcome else 'fail'}")
    if len(shown) < len(flaky):
        lines.append(f"  … {len(flaky) - len(shown)} more flaky case(s) (use -v, or see report.md)")
    return lines


def markdown_lines(v: SamplesView, most: int = 50) -> list[str]:
    out = ["", f"**Samples in {v.suite}**: {v.samples} per case at temperature {v.temperature:g}, reduced by "
           f"`{v.reduce}`. " + "; ".join(_summary(v, role) for role in v.roles)]
    flaky = [c for c in v.cases if c.flaky]
    if flaky:
        out += ["", f"<details><summary>{len(flaky)} flaky case(s): their samples disagreed</summary>", "",
                "| case | subject | samples passed | distinct answers | reducer | outcome |", "|---|---|---:|---:|---|---|"]
        out += [f"| `{clip(c.case_id, 60)}` | {c.role} | {c.passed}/{c.samples} | {c.answers} | {c.reduce} | "
                f"{'pass' if c.outcome else 'fail'} |" for c in flaky[:most]]
        out += ["", "</details>"]
    return out

