"""`kind: golden`: cases the baseline already gets right must stay right.

The cases the baseline passes are frozen to a golden file on an explicit --ftgate-update-goldens;
the gate blocks when more than `max_regression` of the frozen goldens fail for the candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import IncompleteDataError, SuiteError
from ..files.paths import beside
from ..stats import exact_interval, exact_upper_bound, max_passing_regressions, min_n_to_resolve, wilson_interval
from ..stores.goldens import GoldenSet, dtype_changed, read_goldens, split_goldens, write_goldens
from ..types import GateDecision, Interval, SuiteOutcome, SuiteResult
from .base import (
    Criterion,
    DecisionContext,
    GateKey,
    Headline,
    ReportSection,
    SuiteKey,
    SuiteKind,
    baseline_only,
    fraction,
    pct,
    register_kind,
)


@dataclass(frozen=True)
class GoldenState:
    golden: GoldenSet | None
    written: bool = False

    def to_json(self) -> dict[str, Any]:
        g = self.golden
        return {"goldens": None if g is None else {"path": str(g.path), "n": len(g.hashes)}, "written": self.written}


def _confidence(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.5 <= value < 1:
        return f"must be in [0.5, 1), e.g. 0.95, got {value!r}"
    return None


def _inconclusive(value: Any) -> str | None:
    return None if value in ("block", "pass") else f"must be `block` or `pass`, got {value!r}"


def _goldens_file(value: Any, suite_path: Path) -> Path:
    if value is None:
        return suite_path.parent / f"{suite_path.stem}.goldens.json"
    if not isinstance(value, str) or not value:
        raise ValueError(f"goldens must be a file name beside the suite, e.g. {suite_path.stem}.goldens.json, got {value!r}")
    try:
        return beside(suite_path.parent, value, "goldens file")
    except SuiteError as exc:
        raise ValueError(exc.reason) from None


def prepare(suite: Any, baseline: SuiteResult, update: bool) -> GoldenState:
    path = suite.options["goldens"]
    if update:
        from ..stores.promotion import kept_origin

        kept = None if path.exists() else kept_origin(suite.path)
        return GoldenState(write_goldens(path, baseline, _definition(suite, baseline), kept), written=True)
    return GoldenState(read_goldens(path))


def decide_regressions(ctx: DecisionContext) -> GateDecision:
    state: GoldenState = ctx.state
    path = ctx.suite.options["goldens"]
    if ctx.candidate is None:
        if state.written:
            return GateDecision(ctx.suite.name, "regressions", "passed", f"froze {len(state.golden.hashes)} goldens to {path}")
        frozen = "frozen" if state.golden else "not frozen yet: run with --ftgate-update-goldens"
        return baseline_only(ctx, "regressions", f"; goldens {frozen}")
    if state.golden is None:
        return GateDecision(
            ctx.suite.name, "regressions", "error",
            f"no golden file at {path}. Freeze the cases the baseline passes with "
            "`pytest --baseline=... --ftgate-update-goldens` and commit the file",
        )
    frozen_on, now = state.golden.identity, ctx.baseline.subject.model_identity
    if frozen_on is None:
        return GateDecision(
            ctx.suite.name, "regressions", "error",
            f"{path} does not record which base model it was frozen on (written by an older pytest-ftgate), so it "
            "cannot be checked against this baseline; refreeze it with --ftgate-update-goldens and commit it",
        )
    if frozen_on != now:
        frozen_name = state.golden.name or "another model"
        return GateDecision(
            ctx.suite.name, "regressions", "error",
            f"{path} was frozen on {frozen_name} (identity {frozen_on[:20]}), and this run's baseline is "
            f"{ctx.baseline.subject.name} (identity {now[:20]}): goldens count only the cases the model they were "
            f"frozen on passes, so they say nothing against another baseline. Gate against {frozen_name} (with a "
            "promotion record, that is the default baseline: drop --baseline). Re-freezing on this baseline with "
            "--ftgate-update-goldens would replace those goldens: do it only to move them on purpose",
        )
    if state.golden.definition is None:
        return GateDecision(
            ctx.suite.name, "regressions", "error",
            f"promotion contract, bound definitions: {path} does not record what decided a pass when it was frozen (the suite's scorers, prompts and "
            "decoding; written by an older pytest-ftgate, or edited), so a change to them would go unnoticed; "
            "refreeze it with --ftgate-update-goldens and commit it")
    rebound = _definition_changes(state.golden, _definition(ctx.suite, ctx.baseline))
    if rebound:
        return GateDecision(
            ctx.suite.name, "regressions", "error",
            f"promotion contract, bound definitions: what decides a pass changed since {path.name} was frozen: the {' and '.join(rebound)}. A golden "
            "counts a case the baseline passed under the definitions it was frozen with; loosened scorers, another "
            "prompt or other decoding would count it under others. Re-freeze on purpose "
            "(`pytest --baseline=... --ftgate-update-goldens`), review the diff, and commit it; or restore the suite",
            {"definition_changed": rebound})
    return decide_goldens(ctx.suite.name, ctx.gate, ctx.baseline, ctx.candidate, state.golden)


def _definition(suite: Any, baseline: SuiteResult) -> dict[str, str]:
    """What decides a pass: the suite's scorers, prompts and decoding, and the baseline's chat template (local models)."""
    template = baseline.subject.details.get("template")
    return {**suite.definition, **({"template": template} if template else {})}


def _definition_changes(golden: GoldenSet, now: dict[str, str]) -> list[str]:
    """Which parts of what decides a pass differ from the ones the goldens were frozen with. A suite part missing from
    the file counts as changed (an emptied definition binds nothing); the baseline's chat template is compared where
    the file recorded one (goldens frozen on an outputs file or an endpoint, or before templates were recorded, have
    none, and a template hash follows the tokenizer files' bytes, which a conversion may write anew)."""
    assert golden.definition is not None
    names = {"scorers": "suite's scorers (with their arguments)", "prompts": "suite's prompts",
             "generate": "suite's generation parameters", "template": "baseline's chat template or tokenizer"}
    return [names.get(k, k) for k in now
            if golden.definition.get(k) != now[k] and not (k == "template" and k not in golden.definition)]


def decide_goldens(suite_name: str, gate: dict[str, Any], baseline: SuiteResult, candidate: SuiteResult,
                   golden: GoldenSet) -> GateDecision:
    """The golden rule: block when the candidate fails more than max_regression of the goldens."""
    threshold = float(gate["max_regression"])
    split = split_goldens(golden, baseline)
    if split.changed:
        shown = "; ".join(f"{i}: {why}" for i, why in list(split.changed.items())[:5])
        return GateDecision(
            suite_name, "regressions", "error",
            f"{len(split.changed)} golden case(s) changed since {golden.path.name} was frozen ({shown}"
            f"{' …' if len(split.changed) > 5 else ''}): a golden edited or removed after freezing would leave "
            "the count unnoticed, the candidate's regressions on it with it. Re-freeze on purpose on the baseline "
            "(`pytest --baseline=... --ftgate-update-goldens`), review the diff of the golden file, and commit it",
            {"changed": split.changed},
        )
    cand = {r.case.id: r for r in candidate.results}
    unscored = [i for i in split.counted if cand[i].passed is None]
    if unscored:
        raise IncompleteDataError(
            f"suite {suite_name}: {len(unscored)} golden case(s) of the candidate could not be scored "
            f"({', '.join(unscored[:5])}); the regression rate would be computed on incomplete data"
        )
    failed = [i for i in split.counted if cand[i].passed is False]
    k, n = len(failed), len(split.counted)
    if n == 0:
        return GateDecision(
            suite_name, "regressions", "error",
            f"no countable goldens ({len(split.stale)} stale); refreeze with --ftgate-update-goldens",
            {"stale": split.stale},
        )
    rate = k / n
    w, e = wilson_interval(k, n), exact_interval(k, n)
    figures: dict[str, Any] = {
        "k": k, "n": n, "rate": rate, "threshold": threshold,
        "wilson": [w.low, w.high], "clopper_pearson": [e.low, e.high],
        "max_passing_regressions": max_passing_regressions(n, threshold),
        "stale": split.stale, "regressed_ids": failed,
    }
    warnings = []
    needed = min_n_to_resolve(threshold)
    if n < needed:
        warnings.append(
            f"only {n} goldens: too few to tell a {pct(threshold)} regression rate from 0% "
            f"(needs {needed} at 95% confidence); add goldens"
        )
    if dtype_changed(golden, baseline):
        now = baseline.subject.details.get("dtype")
        figures.update(frozen_dtype=golden.dtype, dtype=now)
        warnings.append(
            f"the goldens were frozen with the baseline computing in {golden.dtype}; this run computes in {now}, so what "
            f"the baseline passes is re-derived here: {len(split.stale)} of {len(golden.hashes)} goldens it fails in "
            f"{now} are not counted, and each counted one is a case both sides were asked in {now}. To gate against "
            f"goldens frozen in {now}, refreeze them here with --ftgate-update-goldens; to keep {golden.dtype}, pass "
            f"--ftgate-dtype={golden.dtype}")
    if split.stale:
        ids = ", ".join(list(split.stale)[:5]) + (" …" if len(split.stale) > 5 else "")
        cause = (f"it answers differently in {baseline.subject.details.get('dtype')}" if dtype_changed(golden, baseline)
                 else "the baseline answers differently than when they were frozen (a nondeterministic or changed "
                      "serving stack?)")
        warnings.append(f"{len(split.stale)} golden(s) the baseline fails now are not counted ({ids}): {cause}")
    text = (
        f"{k}/{n} goldens regressed = {pct(rate)} (95% Wilson {pct(w.low)}–{pct(w.high)}, "
        f"exact {pct(e.low)}–{pct(e.high)}); at most {figures['max_passing_regressions']} may regress "
        f"at {pct(threshold)}"
    )
    drift = _drift(golden, baseline, cand, float(gate.get("max_drift", 0.10)))
    if drift is not None and drift["drift_n"] == 0:  # nothing to measure is not "no drift"
        warnings.append("drift not measured: none of the first frozen goldens is in the suite unchanged now; "
                        "re-freeze the goldens on purpose to start a new origin")
        drift = None
    if drift is not None and drift["drift_excluded"]:
        origin_dtype, now_dtype = drift["drift_dtypes"]
        warnings.append(f"drift: {len(drift['drift_excluded'])} of the first frozen goldens (frozen in {origin_dtype}) "
                        f"that production fails in {now_dtype} are not counted: drift cannot be told from the dtype "
                        f"there. Gate in {origin_dtype} (--ftgate-dtype) to count them")
    if drift is not None:
        figures.update(drift)
        text += (f"; drift since the first frozen goldens ({drift['drift_origin'] or 'the first model'}): "
                 f"{drift['drift_k']}/{drift['drift_n']} = {pct(drift['drift_rate'])} (at most {pct(drift['max_drift'])})")
    confidence = gate.get("confidence")
    if confidence is None:
        status = "passed" if rate <= threshold else "blocked"
    else:
        upper = exact_upper_bound(k, n, float(confidence))
        figures.update(upper_bound=upper, confidence=confidence, inconclusive_blocks=gate.get("inconclusive", "block") == "block")
        text += f"; one-sided {pct(float(confidence))} upper bound {pct(upper)}"
        status = "passed" if upper <= threshold else "blocked" if rate > threshold else "inconclusive"
    breaches = (f"{text}: above the {pct(threshold)} limit",) if status == "blocked" else ()
    if drift is not None and drift["drift_rate"] > drift["max_drift"] + 1e-12:
        status = "blocked"
        breaches = (*breaches, f"{text}: the drift since the first frozen goldens is above the {pct(drift['max_drift'])} "
                               "max_drift: each round lost little, together they lost too much")
    return GateDecision(suite_name, "regressions", status, text, figures, tuple(warnings), breaches)


def _drift(golden: GoldenSet, baseline: SuiteResult, cand: dict[str, Any], max_drift: float) -> dict[str, Any] | None:
    """Across promotions: the share of the first frozen model's goldens the candidate fails (None before any)."""
    origin = golden.origin
    if origin is None or origin.identity == golden.identity:
        return None
    current = {r.case.id: r.case.content_hash for r in baseline.results}
    ids = [i for i, h in origin.hashes.items() if current.get(i) == h and cand.get(i) is not None and cand[i].passed is not None]
    now = baseline.subject.details.get("dtype")
    excluded: list[str] = []
    if origin.dtype and now and origin.dtype != now:
        # in another dtype the first model itself may fail some of its goldens; production failing one here cannot
        # tell drift from arithmetic, so it is left out, as the regression count leaves out the stale ones (and said)
        passed = {r.case.id: r.passed for r in baseline.results}
        excluded = [i for i in ids if passed.get(i) is False]
        ids = [i for i in ids if i not in excluded]
    failed = [i for i in ids if cand[i].passed is False]
    return {"drift_k": len(failed), "drift_n": len(ids), "drift_rate": len(failed) / len(ids) if ids else 0.0,
            "max_drift": max_drift, "drift_origin": origin.name, "drift_ids": failed, "drift_excluded": excluded,
            "drift_dtypes": [origin.dtype, now] if excluded else None}


def headline(outcome: SuiteOutcome) -> Headline:
    """With a candidate: the share of frozen goldens it regressed, which is what the gate decides on."""
    decision = next((d for d in outcome.decisions if d.criterion == "regressions"), None)
    figures = decision.figures if decision is not None else {}
    if outcome.candidate is not None and "k" in figures and "threshold" in figures:
        low, high = figures["wilson"]
        return Headline("goldens regressed", None, figures["rate"], Interval(low, high, "wilson"), lower_is_better=True)
    base = outcome.baseline
    return Headline("baseline passes", base.pass_rate, None, wilson_interval(base.n_passed, base.n))


def report(outcome: SuiteOutcome) -> ReportSection:
    """The golden file the run used (or wrote), for report.json."""
    return ReportSection((), outcome.state.to_json() if outcome.state is not None else None)


GOLDEN = register_kind(SuiteKind(
    name="golden",
    description="golden regressions: cases the baseline gets right, frozen; the candidate may lose at most a few",
    gate_keys=(
        GateKey("max_regression", fraction, "most share of frozen goldens the candidate may fail", 0.05),
        GateKey("confidence", _confidence, "strict mode: pass only when the exact one-sided upper bound is under the limit"),
        GateKey("inconclusive", _inconclusive, "strict mode: what an inconclusive result does (block or pass)"),
        GateKey("max_drift", fraction, "most share of the first frozen model's goldens the candidate may fail, across "
                "promotions (goldens follow production; each round may lose max_regression)", 0.10),
    ),
    main_key="max_regression",
    criteria=lambda gate, suite: (Criterion("regressions", decide_regressions),),
    headline=headline,
    report=report,
    suite_keys=(SuiteKey("goldens", _goldens_file, "golden file beside the suite (default NAME.goldens.json)"),),
    prepare=prepare,
))
