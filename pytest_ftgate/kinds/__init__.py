"""The suite kinds, and the features any suite may declare beside its kind: registries filled by
declarations, one module each (perturbation.py is the `perturb:` feature).

To add a kind, write a module that builds a `SuiteKind` and calls `register_kind`, and import it
below. The suite loader, the gate, the runner and the reports ask this registry; none of them
names a kind.
"""

from __future__ import annotations

from . import format, golden, task, adversarial, judge, shadow  # noqa: F401, I001  (each registers itself, in this order)
from . import perturbation  # noqa: F401, I001  (the `perturb:` feature)
from .base import (Criterion, DecisionContext, GateKey, Headline, SuiteFeature, SuiteKey, SuiteKind, feature_keys,
                   get_feature, get_kind, kind_names, register_feature, register_kind)

__all__ = ["Criterion", "DecisionContext", "GateKey", "Headline", "SuiteFeature", "SuiteKey", "SuiteKind",
           "feature_keys", "get_feature", "get_kind", "kind_names", "register_feature", "register_kind"]
