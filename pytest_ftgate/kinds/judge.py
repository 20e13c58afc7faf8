"""`kind: judge`: an LLM judge scores the answers against a rubric, or compares them pairwise.

    judge:
      mode: rubric | pairwise
      criteria: "The answer is correct, complete and polite."
      steps: [...]            # optional evaluation steps
      scale: [1, 5]           # rubric: a case passes at a score >= pass_score
      pass_score: 4
      model: openai:gpt-4o-mini   # --ftgate-judge overrides it
      max_unscored: 0.05      # unscored cases never pass; above this share the suite errors
      self_test: true         # the judge must pass a built-in check first
      min_kappa: 0.4          # optional: least agreement with the cases' human labels
    gate: {min_pass_rate: 0.8}    # rubric (and not_below_baseline); pairwise: {min_win_rate: 0.5}

Human labels come from a case's `human` key or from SUITE.human.jsonl beside the suite (written
by `ftgate human import`): {"preference": candidate|baseline|tie, "score_candidate": n, "score_baseline": n}.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import JudgeRefused, OptionError
from ..human.ratings import output_digest, read_labels
from ..judging.protocol import (
    PairVerdict,
    Rubric,
    RubricVerdict,
    SelfTest,
    judge_pair,
    judge_rubric,
    self_test,
)
from ..stats import Agreement, cohen_kappa, wilson_interval
from ..types import CaseResult, GateDecision, Interval, Score, SuiteOutcome, SuiteResult
from .base import (
    Criterion,
    DecisionContext,
    GateKey,
    Headline,
    ReportSection,
    Scored,
    ScoringContext,
    SuiteKey,
    SuiteKind,
    boolean,
    fraction,
    pct,
    rate_headline,
    register_kind,
)
from .task import gates_something, rate_and_baseline_criteria

JUDGE_KEYS = ("mode", "criteria", "steps", "scale", "pass_score", "model", "max_unscored", "self_test", "min_kappa")
RUBRIC_GATE, PAIRWISE_GATE = {"min_pass_rate", "not_below_baseline"}, {"min_win_rate", "min_decided"}
OUTCOME_VALUE = {"win": 1.0, "tie": 0.5, "loss": 0.0}


@dataclass(frozen=True)
class JudgeSpec:
    mode: str
    criteria: str
    steps: tuple[str, ...] = ()
    scale: tuple[int, int] = (1, 5)
    pass_score: int = 4
    model: str | None = None
    max_unscored: float = 0.05
    self_test: bool = True
    min_kappa: float | None = None

    @property
    def rubric(self) -> Rubric:
        return Rubric(self.criteria, self.steps, self.scale, self.pass_score)


def parse_spec(value: Any, suite_path: Path) -> JudgeSpec:
    if not isinstance(value, dict):
        raise ValueError("a judge suite needs `judge:` with at least `mode:` (rubric or pairwise) and `criteria:`")
    unknown = sorted(set(value) - set(JUDGE_KEYS))
    if unknown:
        raise ValueError(f"unknown judge key {unknown[0]!r}; allowed: {', '.join(JUDGE_KEYS)}")
    mode = value.get("mode")
    if mode not in ("rubric", "pairwise"):
        raise ValueError(f"judge.mode must be rubric or pairwise, got {mode!r}")
    criteria = value.get("criteria")
    if not isinstance(criteria, str) or not criteria.strip():
        raise ValueError("judge.criteria must say, in words, what a good answer is")
    steps = value.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        raise ValueError("judge.steps must be a list of strings")
    scale = value.get("scale", [1, 5])
    if (not isinstance(scale, list) or len(scale) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in scale)
            or not 0 <= scale[0] < scale[1] <= 9):
        raise ValueError(f"judge.scale must be [low, high], integers with 0 <= low < high <= 9 (one token each), got {scale!r}")
    pass_score = value.get("pass_score", scale[1] - 1)
    if isinstance(pass_score, bool) or not isinstance(pass_score, int) or not scale[0] < pass_score <= scale[1]:
        raise ValueError(f"judge.pass_score must be an integer in ({scale[0]}, {scale[1]}], got {pass_score!r}")
    model = value.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise ValueError("judge.model must be openai:MODEL or a local model directory")
    max_unscored = value.get("max_unscored", 0.05)
    if (problem := fraction(max_unscored)) is not None:
        raise ValueError(f"judge.max_unscored {problem}")
    if not isinstance(value.get("self_test", True), bool):
        raise ValueError("judge.self_test must be true or false")
    min_kappa = value.get("min_kappa")
    if min_kappa is not None and (isinstance(min_kappa, bool) or not isinstance(min_kappa, (int, float)) or not -1 <= min_kappa <= 1):
        raise ValueError(f"judge.min_kappa must be a number in [-1, 1], e.g. 0.4, got {min_kappa!r}")
    return JudgeSpec(mode, criteria.strip(), tuple(steps), (scale[0], scale[1]), pass_score, model, float(max_unscored),
                     value.get("self_test", True), None if min_kappa is None else float(min_kappa))


def check(data: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    """Keys that would silently do nothing are refused: the other mode's gate keys, and scorers."""
    mode = (data.get("judge") or {}).get("mode") if isinstance(data.get("judge"), dict) else None
    gate = data.get("gate") if isinstance(data.get("gate"), dict) else {}
    wrong = {"rubric": PAIRWISE_GATE, "pairwise": RUBRIC_GATE}.get(mode, set()) & set(gate)
    right = RUBRIC_GATE if mode == "rubric" else PAIRWISE_GATE
    problems = [(f"gate key {key!r} does not apply to a {mode} judge suite; use {', '.join(sorted(right))}", ("gate", key))
                for key in sorted(wrong)]
    if mode == "rubric":
        problems += gates_something("min_pass_rate")(data)
    if "scorers" in data:
        problems.append(("a judge suite is scored by its judge, so `scorers:` would be ignored; put format checks in "
                         "a format suite of their own", ("scorers",)))
    return problems


@dataclass
class JudgeState:
    """How the judging went, for the reports: never silent about fallbacks or doubts."""

    mode: str
    judge: str
    fingerprint: str
    form: str | None = None
    methods: Counter[str] = field(default_factory=Counter)  # logprobs | parsed | unscored
    self_test: SelfTest | None = None  # None: opted out
    agreement: Agreement | None = None
    outcomes: Counter[str] = field(default_factory=Counter)  # pairwise: win | tie | loss | unscored
    inconsistent: int = 0  # pairwise: cases where the order changed the verdict
    position_driven: int = 0  # pairwise: of those, cases where each order named the answer in one position (unscored)
    stale_labels: int = 0  # human labels of other answers than these, not used
    by_length: dict[str, list[float]] = field(default_factory=lambda: {"longer": [], "shorter": []})

    def notes(self) -> list[str]:
        out = [f"judge {self.judge} (reply form: {self.form or 'none needed'})"]
        out.append("self-test: opted out (judge.self_test: false)" if self.self_test is None else
                   "self-test: passed (" + "; ".join(name for name, _, _ in self.self_test.checks) + ")")
        if self.mode == "rubric":
            out.append("scores: " + ", ".join(f"{n} by {m}" for m, n in sorted(self.methods.items()))
                       + (" (parsed = no usable log-probabilities: the integer the judge wrote)" if self.methods["parsed"] else ""))
        else:
            n = sum(self.outcomes.values())
            out.append(f"pairwise, both orders: {self.outcomes['win']} won, {self.outcomes['tie']} tied, {self.outcomes['loss']} lost"
                       f", {self.outcomes['unscored']} unscored; the order changed the verdict in {self.inconsistent}/{n} "
                       f"({pct(self.inconsistent / n) if n else '—'}) cases")
            if self.position_driven:
                out.append(f"position bias: in {self.position_driven}/{n} case(s) the judge picked the same position in "
                           "both orders; they are unscored, and above judge.max_unscored the suite cannot gate")
            for side, values in self.by_length.items():
                if values:
                    out.append(f"win rate when the candidate's answer is {side}: {pct(sum(values) / len(values))} (n={len(values)})")
        if self.agreement is not None and self.agreement.cases:
            a = self.agreement
            kappa = "—" if a.kappa is None else f"{a.kappa:.2f}{' (quadratic)' if 'quadratic' in a.method else ''}"
            out.append(f"agreement with people: {a.cases} labels, accuracy {pct(a.observed)}, Cohen's kappa {kappa}")
        if self.stale_labels:
            out.append(f"{self.stale_labels} human label(s) were of other answers (an earlier candidate?) and not used")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "judge": self.judge, "fingerprint": self.fingerprint, "form": self.form,
                "methods": dict(self.methods), "outcomes": dict(self.outcomes), "inconsistent": self.inconsistent,
                "position_driven": self.position_driven,
                "self_test": None if self.self_test is None else [list(c) for c in self.self_test.checks],
                "agreement": None if self.agreement is None else {
                    "n": self.agreement.cases, "accuracy": self.agreement.observed, "kappa": self.agreement.kappa,
                    "weights": "quadratic" if "quadratic" in self.agreement.method else ""},
                "win_rate_by_length": {k: (sum(v) / len(v) if v else None) for k, v in self.by_length.items()}}


def _question(case: Any) -> str:
    if len(case.messages) == 1:
        return case.messages[0]["content"]
    return "\n".join(f"{m['role']}: {m['content']}" for m in case.messages)


def _reference(case: Any) -> str | None:
    return None if case.expected is None else str(case.expected)


def human_labels(suite: Any) -> dict[str, dict[str, Any]]:
    """Human labels by case id: the cases' own `human` keys, then SUITE.human.jsonl beside the suite."""
    labels = {c.id: c.extra["human"] for c in suite.cases if isinstance(c.extra.get("human"), dict)}
    for case_id, line in read_labels(suite.path.with_name(f"{suite.path.stem}.human.jsonl")).items():
        if isinstance(line.get("human"), dict):
            labels[case_id] = line["human"]
    return labels


def _parallel(fn: Callable[[Any], Any], items: list[Any], workers: int) -> list[Any]:
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(fn, items))


def judge_spec_of(suite: Any, services: Any) -> str:
    """The judge of a suite: --ftgate-judge, else its judge.model. None is an error: there is no default judge."""
    spec: JudgeSpec = suite.options["judge"]
    chosen = services.config.judge or spec.model
    if not chosen:
        raise OptionError(f"suite {suite.name} ({suite.path}) has no judge: set judge.model (e.g. openai:gpt-4o-mini "
                          "or a local model directory) in it, or pass --ftgate-judge=SUBJECT. There is no default judge")
    return chosen


def preflight(suite: Any, services: Any) -> None:
    """Find the judge, and build it (an unknown path or kind is an error), before anything generates."""
    services.judge(judge_spec_of(suite, services))


def score(ctx: ScoringContext) -> Scored:
    spec: JudgeSpec = ctx.suite.options["judge"]
    judge = ctx.services.judge(judge_spec_of(ctx.suite, ctx.services))
    state = JudgeState(spec.mode, judge.name, judge.fingerprint)
    if spec.self_test:
        state.self_test = self_test(judge, spec.mode, spec.rubric)
        if not state.self_test.passed:
            raise JudgeRefused(
                f"suite {ctx.suite.name}: judge {judge.name} failed its self-test: {'; '.join(state.self_test.failures)}. "
                "It is not used to score. Use a stronger judge (--ftgate-judge), or opt out with judge.self_test: false"
            )
    scored = (_rubric if spec.mode == "rubric" else _pairwise)(ctx, spec, judge, state)
    state.form = judge.form
    _calibrate(ctx, spec, state, scored)
    return Scored(scored.baseline, scored.candidate, state)


def _rubric(ctx: ScoringContext, spec: JudgeSpec, judge: Any, state: JudgeState) -> Scored:
    tasks = [(role, case, out) for role, outs in ctx.outputs.items() for case, out in zip(ctx.suite.cases, outs)]

    def one(task: tuple[str, Any, Any]) -> RubricVerdict:
        role, case, out = task
        return judge_rubric(judge, spec.rubric, _question(case), out.text, _reference(case), f"judge of {role} on case {ctx.suite.name}/{case.id}")

    verdicts = _parallel(one, tasks, getattr(judge, "concurrency", 1))
    rows: dict[str, list[CaseResult]] = {role: [] for role in ctx.outputs}
    for (role, case, out), v in zip(tasks, verdicts):
        state.methods[v.method] += 1
        if v.score is None:
            s = Score.unscored(f"judge: {v.note}", "judge")
        else:
            why = f"judge score {v.score:.2f} ({v.method}{': ' + v.note if v.note else ''}); {v.reasoning[:200]}"
            s = Score(v.score >= spec.pass_score, v.score, why if v.score < spec.pass_score else "", "judge", label=str(v.raw))
        rows[role].append(CaseResult(case, out, (s,)))
    results = {role: SuiteResult(ctx.suite.name, ctx.subjects[role], tuple(r)) for role, r in rows.items()}
    return Scored(results["baseline"], results.get("candidate"))


def _pairwise(ctx: ScoringContext, spec: JudgeSpec, judge: Any, state: JudgeState) -> Scored:
    base_outs = ctx.outputs["baseline"]
    if "candidate" not in ctx.outputs:  # the red phase: nothing to compare
        note = Score(True, None, "not judged: a pairwise suite compares the candidate with the baseline", "judge")
        return Scored(SuiteResult(ctx.suite.name, ctx.subjects["baseline"],
                                  tuple(CaseResult(c, o, (note,)) for c, o in zip(ctx.suite.cases, base_outs))), None)
    items = list(zip(ctx.suite.cases, base_outs, ctx.outputs["candidate"]))

    def one(item: tuple[Any, Any, Any]) -> PairVerdict:
        case, b, c = item
        return judge_pair(judge, spec.criteria, _question(case), b.text, c.text, _reference(case),
                          f"judge of case {ctx.suite.name}/{case.id}")

    base_rows, cand_rows = [], []
    for (case, b, c), v in zip(items, _parallel(one, items, getattr(judge, "concurrency", 1))):
        state.outcomes[v.outcome or "unscored"] += 1
        state.inconsistent += 0 if v.consistent or (v.outcome is None and not v.position_driven) else 1
        state.position_driven += v.position_driven
        detail = f"verdicts {v.orders} (baseline as A, then candidate as A){': ' + v.note if v.note else ''}"
        if v.outcome is None:
            cs = bs = Score.unscored(f"judge: {v.note}", "judge")
        else:
            value = OUTCOME_VALUE[v.outcome]
            cs = Score(v.outcome == "win", value, "" if v.outcome == "win" else detail, "judge", label=v.outcome)
            bs = Score(v.outcome == "loss", 1 - value, detail, "judge", label=v.outcome)
            if len(c.text) != len(b.text):
                state.by_length["longer" if len(c.text) > len(b.text) else "shorter"].append(value)
        base_rows.append(CaseResult(case, b, (bs,)))
        cand_rows.append(CaseResult(case, c, (cs,)))
    return Scored(SuiteResult(ctx.suite.name, ctx.subjects["baseline"], tuple(base_rows)),
                  SuiteResult(ctx.suite.name, ctx.subjects["candidate"], tuple(cand_rows)))


def _calibrate(ctx: ScoringContext, spec: JudgeSpec, state: JudgeState, scored: Scored) -> None:
    labels = human_labels(ctx.suite)
    pairs: list[tuple[Any, Any]] = []
    outputs = {role: {r.case.id: r.output.text for r in res.results}
               for role, res in (("baseline", scored.baseline), ("candidate", scored.candidate)) if res is not None}
    stale = 0
    for role, result in (("baseline", scored.baseline), ("candidate", scored.candidate)):
        for r in result.results if result is not None else ():
            human, label = labels.get(r.case.id), r.scores[0].label
            if human is None or label is None:
                continue
            rated = human.get("outputs") or {}
            if any(rated.get(k) and rated[k] != output_digest(outputs.get(k, {}).get(r.case.id, "")) for k in rated):
                stale += 1  # rated on other answers than these: it says nothing about this judge's verdicts
                continue
            if spec.mode == "rubric" and human.get(f"score_{role}") is not None:
                pairs.append((int(human[f"score_{role}"]), int(label)))
            elif spec.mode == "pairwise" and role == "candidate" and human.get("preference"):
                pairs.append((human["preference"], {"win": "candidate", "loss": "baseline", "tie": "tie"}[label]))
    state.agreement = cohen_kappa(pairs, ("people", "judge"), ordinal=spec.mode == "rubric") if pairs else None
    state.stale_labels = stale
    if spec.min_kappa is None:
        return
    a = state.agreement
    if a is None or a.kappa is None:
        raise JudgeRefused(f"suite {ctx.suite.name}: judge.min_kappa is {spec.min_kappa} but "
                           f"{'no case carries a human label' if a is None else 'the labels do not vary, so kappa is undefined'}: "
                           "the judge's agreement with people cannot be checked. Import ratings with `ftgate human import`")
    if a.kappa < spec.min_kappa:
        raise JudgeRefused(f"suite {ctx.suite.name}: judge {state.judge} agrees with people at Cohen's kappa {a.kappa:.2f} "
                           f"< judge.min_kappa {spec.min_kappa} ({a.cases} labels, accuracy {pct(a.observed)}); it is not used to score")


MIN_DECIDED = 5  # decided (won or lost) cases behind a pairwise win rate, at the least


def _at_least_one(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return f"must be a whole number of cases, 1 or more, got {value!r}"
    return None


def decide_win_rate(ctx: DecisionContext) -> GateDecision:
    if ctx.candidate is None:
        return GateDecision(ctx.suite.name, "win_rate", "skipped", "no --candidate: a pairwise suite has nothing to compare")
    labels = Counter(r.scores[0].label or "unscored" for r in ctx.candidate.results)
    n = ctx.candidate.n
    rate = (labels["win"] + labels["tie"] / 2) / n
    iv = wilson_interval(labels["win"] + labels["tie"] / 2, n)
    threshold = float(ctx.gate.get("min_win_rate", 0.5))
    figures = {"wins": labels["win"], "ties": labels["tie"], "losses": labels["loss"], "unscored": labels["unscored"],
               "n": n, "rate": rate, "wilson": [iv.low, iv.high], "threshold": threshold}
    text = (f"win rate {pct(rate)} = ({labels['win']} won + {labels['tie']} tied / 2) / {n} "
            f"(95% Wilson{', ties half' if labels['tie'] % 2 else ''} {pct(iv.low)}–{pct(iv.high)}; unscored count as lost)")
    decided, needed = labels["win"] + labels["loss"], int(ctx.gate.get("min_decided", MIN_DECIDED))
    figures.update(decided=decided, min_decided=needed)
    if decided == 0:  # every verdict a tie (or unscored): the judge told the answers apart nowhere
        return GateDecision(ctx.suite.name, "win_rate", "error",
                            f"the judge decided no case: {text}. A judge that ties everything (or whose verdicts the "
                            "order changed) has measured nothing; use a stronger judge, or check it with "
                            "judge.self_test: true", figures)
    if decided < needed:  # a win rate carried by ties: 1 win and 3 ties read 62.5% on one decided case
        return GateDecision(ctx.suite.name, "win_rate", "skipped",
                            f"too little signal: the judge decided {decided} of {n} case(s) ({labels['win']} won, "
                            f"{labels['loss']} lost, {labels['tie']} tied, {labels['unscored']} unscored), and a win "
                            f"rate needs at least {needed} decided cases behind it (gate: min_decided); {text}. Add "
                            "cases, or use a judge that tells the answers apart", figures)
    if rate >= threshold:
        return GateDecision(ctx.suite.name, "win_rate", "passed", f"{text} >= {pct(threshold)}", figures)
    reason = f"{text} < required {pct(threshold)}"
    return GateDecision(ctx.suite.name, "win_rate", "blocked", reason, figures, breaches=(reason,))


def criteria(gate: dict[str, Any], suite: Any) -> tuple[Criterion, ...]:
    if suite is not None and suite.options["judge"].mode == "pairwise":
        return (Criterion("win_rate", decide_win_rate),)
    return rate_and_baseline_criteria("pass_rate", "min_pass_rate")(gate)


def headline(outcome: SuiteOutcome) -> Headline:
    if outcome.suite.options["judge"].mode == "rubric":
        return rate_headline("judge pass rate")(outcome)
    decision = next((d for d in outcome.decisions if d.criterion == "win_rate"), None)
    figures = decision.figures if decision is not None else {}
    if "rate" not in figures:
        return Headline("win rate vs baseline", None, None, None)
    return Headline("win rate vs baseline", None, figures["rate"], Interval(*figures["wilson"], "wilson"))


def report(outcome: SuiteOutcome) -> ReportSection:
    """How the judge judged: its reply form, self-test, weighting, position consistency, agreement."""
    state = outcome.state
    if not isinstance(state, JudgeState):  # the judge was refused: its reason is the criteria's error
        return ReportSection()
    return ReportSection(tuple(state.notes()), state.to_json())


JUDGE = register_kind(SuiteKind(
    name="judge",
    description="an LLM judge: rubric scores or pairwise wins against the baseline",
    gate_keys=(
        GateKey("min_pass_rate", fraction, "rubric: least share of cases scored at or above pass_score"),
        GateKey("not_below_baseline", boolean, "rubric: the candidate's pass rate may not fall below the baseline's", True),
        GateKey("min_win_rate", fraction, "pairwise: least (wins + ties/2) / n against the baseline (default 0.5)"),
        GateKey("min_decided", _at_least_one, f"pairwise: least cases the judge must decide (won or lost in both orders) "
                f"for a win rate to count (default {MIN_DECIDED}); fewer checks nothing (partial)"),
    ),
    main_key=lambda suite: "min_win_rate" if suite.options["judge"].mode == "pairwise" else "min_pass_rate",
    criteria=criteria,
    headline=headline,
    report=report,
    suite_keys=(SuiteKey("judge", parse_spec, "mode, criteria, steps, scale, pass_score, model, max_unscored, self_test, min_kappa"),),
    case_keys=("human",),
    check=check,
    score=score,
    preflight=preflight,
    allowed_unscored=lambda suite: suite.options["judge"].max_unscored,
    requires_scorers=False,
    sampled="its judge is calibrated against people's ratings of each answer, and pairwise grading pairs one answer "
            "of each subject; sample in a format, task or golden suite instead",
))
