"""pytest-ftgate: fine-tuning as test-driven development, inside pytest.

The core works without pytest:

    from pytest_ftgate import RunConfig, load_suite, run_gate
    run = run_gate([load_suite("suites/routing.yaml")], RunConfig(candidate="adapter/"))
    print(run.blocked)
"""

from .errors import (
    AdapterMismatchError,
    ConfigError,
    FtgateError,
    GenerationError,
    IncompleteDataError,
    OptionError,
    SubjectError,
    SuiteError,
    UnsafeWeightsError,
)
from .gate import Threshold, parse_threshold
from .runner import GateRun, RunConfig, SuiteOutcome, run_gate
from .scorers import Scorer, register_scorer
from .subjects import SubjectOptions
from .suite import Suite, load_suite
from .types import Case, CaseResult, Comparison, GateDecision, GenerationParams, Output, Score, SuiteResult

__version__ = "0.1.0"

__all__ = [
    "AdapterMismatchError",
    "Case",
    "CaseResult",
    "Comparison",
    "ConfigError",
    "FtgateError",
    "GateDecision",
    "GateRun",
    "GenerationError",
    "GenerationParams",
    "IncompleteDataError",
    "OptionError",
    "Output",
    "RunConfig",
    "Score",
    "Scorer",
    "SubjectError",
    "SubjectOptions",
    "Suite",
    "SuiteError",
    "SuiteOutcome",
    "SuiteResult",
    "Threshold",
    "UnsafeWeightsError",
    "load_suite",
    "parse_threshold",
    "register_scorer",
    "run_gate",
]
