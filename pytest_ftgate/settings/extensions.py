"""Third-party extensions, found as pytest finds its plugins: through entry points.

    [project.entry-points."ftgate.scorers"]   a module that calls register_scorer
    [project.entry-points."ftgate.kinds"]     a module that calls register_kind
    [project.entry-points."ftgate.subjects"]  a module that calls register_subject
    [project.entry-points."ftgate.reports"]   a module that calls register_report_format

Everything such a module needs is in pytest_ftgate.extend.

Each group is loaded once, the first time its registry is asked. A broken extension stops a gate
when it starts (exit 4), with a message naming its entry point and distribution, not a traceback;
a project's ordinary test runs go on without it.
"""

from __future__ import annotations

from importlib import metadata

GROUPS = ("ftgate.scorers", "ftgate.kinds", "ftgate.subjects", "ftgate.reports")
_loaded: set[str] = set()
_failed: dict[str, Exception] = {}


def entry_points(group: str) -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)


def load_group(group: str) -> None:
    """Import every module of an entry point group (they register themselves), once. A module that fails
    is recorded, not raised here: the registries keep working for a project's ordinary test runs, and a
    gate hears of it from `load_all()` when it starts."""
    if group in _loaded:
        return
    _loaded.add(group)
    for ep in entry_points(group):
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001 - any failure of someone else's module is reported the same way
            from ..errors import OptionError

            dist = f" (from {ep.dist.name} {ep.dist.version})" if ep.dist is not None else ""
            _failed.setdefault(group, OptionError(
                f"the {group} extension {ep.name} = {ep.value}{dist} failed to load: {type(exc).__name__}: {exc}. "
                "Fix or uninstall that package"))


def load_all() -> None:
    """Every group, raising the first failure: what a gate does at start-up, so that a broken extension
    stops it before any work, named."""
    for group in GROUPS:
        load_group(group)
        if group in _failed:
            raise _failed[group]
