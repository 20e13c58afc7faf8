"""Every error pytest-ftgate raises on purpose.

    FtgateError                  base: a message for a person, never a traceback
    ├── ConfigError              bad user input before anything runs
    │   ├── SuiteError           a suite file or its cases (carries file:line)
    │   ├── OptionError          a command-line option or ini key
    │   └── PricingError         a pricing file
    ├── SubjectError             a candidate/baseline cannot be resolved or loaded
    │   ├── AdapterMismatchError adapter and base model do not fit together
    │   └── UnsafeWeightsError   pickle weights (.bin/.pt) refused; safetensors only
    ├── GenerationError          an endpoint or model failed while generating
    └── IncompleteDataError      a gate would be computed on missing or unscored outputs

Each message says what is wrong, why it matters and how to fix it.
"""

from __future__ import annotations

from pathlib import Path


class FtgateError(Exception):
    """Base class of the errors pytest-ftgate reports without a traceback."""


class ConfigError(FtgateError):
    """Bad user input found before any model is loaded."""


class SuiteError(ConfigError):
    """A suite file, or one of its cases, is invalid."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = Path(path) if path is not None else None
        self.line = line
        self.reason = message
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(where + message)


class OptionError(ConfigError):
    """A command-line option or ini key has a value that cannot be used."""


class PricingError(ConfigError):
    """A pricing file is invalid."""


class SubjectError(FtgateError):
    """A candidate or baseline cannot be resolved or loaded."""


class AdapterMismatchError(SubjectError):
    """An adapter was trained on a different base model than the one it is loaded on."""


class UnsafeWeightsError(SubjectError):
    """Weights in a pickle format; they can run code when loaded, so they are refused."""


class GenerationError(FtgateError):
    """A model or endpoint failed while producing outputs."""


class IncompleteDataError(FtgateError):
    """A gate cannot be decided because outputs or scores are missing."""
