"""The public API for extension authors: everything a third-party scorer, subject kind, suite kind or
report format needs, from this one module. What it exports is kept stable; what it does not is internal.

A package registers its extensions through entry points, as pytest plugins are found:

    [project.entry-points."ftgate.scorers"]    mypkg.scorers     # calls register_scorer
    [project.entry-points."ftgate.subjects"]   mypkg.subjects    # calls register_subject
    [project.entry-points."ftgate.kinds"]      mypkg.kinds       # calls register_kind
    [project.entry-points."ftgate.reports"]    mypkg.reports     # calls register_report_format

**A scorer** is a factory `(args, suite_dir) -> Scorer`, where `Scorer(name, score)` and
`score(case, output) -> Score(passed, value, detail, scorer)`.

**A subject kind** subclasses `Subject`: `claims(spec)`, `build(spec, role, ctx)`, `run(jobs, on_batch)`
(each `Job` has `.case` and `.request`; `on_batch([(index, Output(text, ...))])`), `info` a
`SubjectInfo`, and `serving_cost(info, usage, pricing) -> ServingCost` for the TCO. Its own
command-line options are `Option`s in its `options`.

**A suite kind** is a `SuiteKind` declaration: its `gate_keys` (`GateKey`, checked with `fraction` and
the like), `criteria` (each a `Criterion(name, decide)` with `decide(DecisionContext) -> GateDecision`;
`decide_min_rate` and `decide_vs_baseline` are the usual ones), and `headline(SuiteOutcome) -> Headline`
(`rate_headline` for a pass rate). Optional: a `report(SuiteOutcome) -> ReportSection`, a `score`
(`ScoringContext -> Scored`) that scores both subjects itself.

**A suite feature** is a `SuiteFeature` declaration of a key any suite may declare beside its kind
(its parse, the criteria it adds, its work in a run through `FeatureRun`, and a `FeatureSection` for
the reports), registered with `register_feature` from an `ftgate.kinds` entry point.

**A report format** is a `ReportFormat(name, filename, render)`, with `render(ReportView) -> str`.
"""

from __future__ import annotations

from .cost.pricing import Pricing, ServingCost, Usage
from .errors import ConfigError, GateRunError, GenerationError, OptionError, SubjectError, SuiteError
from .kinds.base import (Criterion, DecisionContext, FeatureRun, FeatureSection, GateKey, Headline, ReportSection, Scored,
                         ScoringContext, SuiteFeature, SuiteKey, SuiteKind, boolean, decide_min_rate, decide_vs_baseline,
                         fraction, pct, rate_figures, rate_headline, register_feature, register_kind)
from .settings.options import Option
from .report.formats import ReportFormat, register_report_format
from .report.view import ReportView
from .scoring.scorers import Scorer, register_scorer
from .subjects.base import BuildContext, Job, Role, Subject, register_subject
from .types import (Case, CaseResult, GateDecision, Interval, Output, Score, SubjectInfo, Suite, SuiteOutcome,
                    SuiteResult)

__all__ = [
    # scorers
    "Case", "Score", "Scorer", "register_scorer",
    # subject kinds
    "BuildContext", "Job", "Option", "Output", "Pricing", "Role", "ServingCost", "Subject", "SubjectInfo", "Usage",
    "register_subject",
    # suite kinds
    "CaseResult", "Criterion", "DecisionContext", "GateDecision", "GateKey", "Headline", "Interval", "ReportSection",
    "Scored", "ScoringContext", "Suite", "SuiteKey", "SuiteKind", "SuiteOutcome", "SuiteResult", "boolean",
    "decide_min_rate", "decide_vs_baseline", "fraction", "pct", "rate_figures", "rate_headline", "register_kind",
    # suite features: a key any suite may declare beside its kind (as `perturb:` is, kinds/perturbation.py)
    "FeatureRun", "FeatureSection", "SuiteFeature", "register_feature",
    # report formats
    "ReportFormat", "ReportView", "register_report_format",
    # errors an extension raises: the gate reports them without a traceback
    "ConfigError", "GateRunError", "GenerationError", "OptionError", "SubjectError", "SuiteError",
]
