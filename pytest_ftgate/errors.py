"""Every exception and warning pytest-ftgate raises on purpose, and the exit statuses they map to.

    Exception
    ├── FtgateError                  base: a message for a person, never a traceback
    │   ├── ConfigError              bad user input, found before anything runs       exit 4
    │   │   ├── SuiteError           a suite file or its cases (carries file:line)
    │   │   ├── OptionError          a command-line option or ini key
    │   │   ├── PricingError         a pricing file
    │   │   ├── TrainConfigError     a trainer recipe or a --set override
    │   │   ├── DataError            a training data file or one of its rows
    │   │   └── HumanEvalError       a blind human evaluation's report, key or ratings sheet
    │   └── GateRunError             the gate could not run: not a verdict              exit 6
    │       ├── SubjectError         a candidate/baseline cannot be resolved or loaded
    │       │   ├── AdapterMismatchError  adapter and base model do not fit together
    │       │   └── UnsafeWeightsError    pickle weights (.bin/.pt) refused; safetensors only
    │       ├── GenerationError      an endpoint or model failed while generating (retries spent)
    │       ├── EndpointError        an endpoint refused the key, the permission or the model:
    │       │                        no retry can help, so the run stops at once
    │       ├── IncompleteDataError  a gate would be computed on missing or unscored outputs
    │       └── JudgeRefused         a judge failed its self-test or its agreement with people
    └── GateBlocked                  a gate criterion blocked the candidate: the verdict  exit 1
    UserWarning
    └── FtgateWarning                a gate passed, but something about it deserves attention

"The candidate regressed" (exit 1), "the gate could not run" (exit 6) and "the gate checked only
part of what was asked" (exit 7, partial) never share an exit status, so CI can tell a model to fix
from an environment to fix, and never merges a partial run. Each message says what is
wrong, why it matters and how to fix it.
"""

from __future__ import annotations

from pathlib import Path

EXIT_BLOCKED = 1
EXIT_GATE_ERROR = 6  # not 3: that is pytest's own INTERNAL_ERROR
EXIT_USAGE = 4
EXIT_PARTIAL = 7  # criteria deselected, or that checked nothing: not a promotion (0 with --ftgate-allow-partial)
# what each exit status of a gate means (the documentation's reference is generated from this table)
EXIT_MEANINGS = {
    0: "promoted: every criterion was gated and passed, and the promotion contract was met (or a baseline-only run "
       "whose baseline passed)",
    EXIT_BLOCKED: "blocked: a criterion blocked the candidate (or, in the red phase, the baseline fails a criterion)",
    EXIT_USAGE: "usage error: bad input found before anything ran (a suite, an option, a recipe); the message names "
                "the file, line or option",
    EXIT_GATE_ERROR: "the gate could not run: a model, an endpoint or the data failed; no verdict was reached",
    EXIT_PARTIAL: "partial: what ran passed, but criteria were left out, checked nothing, or a clause of the promotion "
                  "contract was not met; never a promotion",
}


class FtgateError(Exception):
    """Base class of the errors pytest-ftgate reports without a traceback."""

    exit_code = EXIT_GATE_ERROR


class ConfigError(FtgateError):
    """Bad user input found before any model is loaded; `path` and `line` say where, when known."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = Path(path) if path is not None else None
        self.line = line
        self.reason = message
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(where + message)


class SuiteError(ConfigError):
    """A suite file, or one of its cases, is invalid."""


class OptionError(ConfigError):
    """A command-line option or ini key has a value that cannot be used."""


class PricingError(ConfigError):
    """A pricing file is invalid."""


class TrainConfigError(ConfigError):
    """A trainer recipe, or a --set override of it, is invalid."""


class DataError(ConfigError):
    """A training data file or row is invalid."""


class HumanEvalError(ConfigError):
    """A report, key or ratings file of a blind human evaluation is invalid (carries file:line)."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None,
                 problems: list[ConfigError] | None = None):
        super().__init__(message, path, line)
        self.problems = problems or []


class GateRunError(FtgateError):
    """The gate could not run (a model, an endpoint or the data failed): no verdict was reached."""


class SubjectError(GateRunError):
    """A candidate or baseline cannot be resolved or loaded."""


class AdapterMismatchError(SubjectError):
    """An adapter was trained on a different base model than the one it is loaded on."""


class UnsafeWeightsError(SubjectError):
    """Weights in a pickle format; they can run code when loaded, so they are refused."""


class GenerationError(GateRunError):
    """A model or endpoint failed while producing outputs."""


class EndpointError(GateRunError):
    """An endpoint refused the request for a reason retrying cannot fix (401, 403, unknown model)."""


class IncompleteDataError(GateRunError):
    """A gate cannot be decided because outputs or scores are missing."""


class JudgeRefused(GateRunError):
    """A judge suite's judge cannot be trusted (self-test, calibration): that suite is not scored."""


class GateBlocked(Exception):
    """A gate criterion blocked the candidate. A verdict, not a fault: shown without a traceback."""


class FtgateWarning(UserWarning):
    """A gate passed but something about it deserves attention (e.g. too few goldens)."""


def internal_error(exc: BaseException) -> GateRunError:
    """A fault that is neither the user's input nor the subject's (a bug of ours or an extension's): the gate
    could not run (exit 6), never the exit of a verdict; the message carries where it happened."""
    import traceback

    where = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-4:]).rstrip()
    return GateRunError(f"internal error ({type(exc).__name__}: {exc}); this is a bug in pytest-ftgate or an "
                        f"extension, not a verdict on the candidate. Please report it with this trace:\n{where}")
