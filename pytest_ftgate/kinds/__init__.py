"""The suite kinds: a registry filled by declarations, one module per kind.

To add a kind, write a module that builds a `SuiteKind` and calls `register_kind`, and import it
below. The suite loader, the gate, the runner and the reports ask this registry; none of them
names a kind.
"""

from __future__ import annotations

from .base import Criterion, DecisionContext, GateKey, Headline, SuiteKey, SuiteKind

_KINDS: dict[str, SuiteKind] = {}


def register_kind(kind: SuiteKind) -> SuiteKind:
    _KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> SuiteKind:
    return _KINDS[name]


def kind_names() -> tuple[str, ...]:
    return tuple(_KINDS)


from . import format, golden, task, adversarial  # noqa: E402,F401  (each registers itself)

__all__ = ["Criterion", "DecisionContext", "GateKey", "Headline", "SuiteKey", "SuiteKind", "get_kind",
           "kind_names", "register_kind"]
