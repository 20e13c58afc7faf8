"""pytest-ftgate: fine-tuning as test-driven development, inside pytest.

The core works without pytest:

    from pytest_ftgate import RunConfig, load_suite, run_gate
    run = run_gate([load_suite("suites/routing.yaml")], RunConfig(candidate="adapter/"))
    print(run.verdict)

Names are imported on first use, so loading the pytest plugin (which imports this package)
costs next to nothing in a run that gates nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AdapterMismatchError": "errors", "ConfigError": "errors", "EndpointError": "errors", "FtgateError": "errors", "GateRunError": "errors",
    "GenerationError": "errors", "IncompleteDataError": "errors", "OptionError": "errors", "SubjectError": "errors",
    "SuiteError": "errors", "UnsafeWeightsError": "errors", "FtgateWarning": "errors",
    "Threshold": "gating.gate", "parse_threshold": "gating.gate",
    "RunConfig": "settings.config", "SubjectOptions": "settings.config", "build_run_config": "settings.config",
    "GateRun": "gating.runner", "SuiteOutcome": "types", "run_gate": "gating.runner",
    "Scorer": "scoring.scorers", "register_scorer": "scoring.scorers",
    "SuiteKind": "kinds", "register_kind": "kinds",
    "Subject": "subjects", "register_subject": "subjects", "Resolver": "subjects", "Option": "settings.options",
    "Suite": "gating.suite", "load_suite": "gating.suite",
    "EndpointClient": "subjects.endpoint.client", "redact": "subjects.endpoint.client",
    "Case": "types", "CaseResult": "types", "Comparison": "types", "GateDecision": "types",
    "GenerationParams": "types", "Output": "types", "Score": "types", "SuiteResult": "types",
    "HumanEvalError": "errors", "export_sheet": "human.export", "import_ratings": "human.ratings",
    "read_labels": "human.ratings",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_ftgate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .subjects.endpoint.client import EndpointClient, redact  # noqa: F401
    from .settings.config import RunConfig, SubjectOptions, build_run_config  # noqa: F401
    from .errors import AdapterMismatchError, ConfigError, EndpointError, FtgateError, FtgateWarning, GateRunError  # noqa: F401
    from .errors import GenerationError, IncompleteDataError, OptionError, SubjectError, SuiteError  # noqa: F401
    from .errors import UnsafeWeightsError  # noqa: F401
    from .errors import HumanEvalError  # noqa: F401
    from .gating.gate import Threshold, parse_threshold  # noqa: F401
    from .human.export import export_sheet  # noqa: F401
    from .human.ratings import import_ratings, read_labels  # noqa: F401
    from .kinds import SuiteKind, register_kind  # noqa: F401
    from .gating.runner import GateRun, run_gate  # noqa: F401
    from .scoring.scorers import Scorer, register_scorer  # noqa: F401
    from .settings.options import Option  # noqa: F401
    from .subjects import Resolver, Subject, register_subject  # noqa: F401
    from .gating.suite import Suite, load_suite  # noqa: F401
    from .types import Case, CaseResult, Comparison, GateDecision, GenerationParams, Output, Score, SuiteOutcome, SuiteResult  # noqa: F401
