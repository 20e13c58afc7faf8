"""The suite kinds: a registry filled by declarations, one module per kind.

To add a kind, write a module that builds a `SuiteKind` and calls `register_kind`, and import it
below. The suite loader, the gate, the runner and the reports ask this registry; none of them
names a kind.
"""

from __future__ import annotations

from . import format, golden, task, adversarial, judge, shadow  # noqa: F401, I001  (each registers itself, in this order)
from .base import (Criterion, DecisionContext, GateKey, Headline, SuiteKey, SuiteKind, get_kind, kind_names,
                   register_kind)

__all__ = ["Criterion", "DecisionContext", "GateKey", "Headline", "SuiteKey", "SuiteKind", "get_kind",
           "kind_names", "register_kind"]
