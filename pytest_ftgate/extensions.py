"""Third-party extensions, found as pytest finds its plugins: through entry points.

    [project.entry-points."ftgate.scorers"]   a module that calls register_scorer
    [project.entry-points."ftgate.kinds"]     a module that calls register_kind
    [project.entry-points."ftgate.subjects"]  a module that calls register_subject

Each group is loaded once, the first time its registry is asked. A broken extension stops the run
with a message naming its entry point and distribution, not a traceback.
"""

from __future__ import annotations

from importlib import metadata

GROUPS = ("ftgate.scorers", "ftgate.kinds", "ftgate.subjects")
_loaded: set[str] = set()
_failed: dict[str, Exception] = {}


def entry_points(group: str) -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)


def load_group(group: str) -> None:
    """Import every module of an entry point group (they register themselves), once; a failure is
    raised again on every later call, so whoever asks next hears of it."""
    if group in _failed:
        raise _failed[group]
    if group in _loaded:
        return
    _loaded.add(group)
    for ep in entry_points(group):
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001 - any failure of someone else's module is reported the same way
            from .errors import OptionError

            dist = f" (from {ep.dist.name} {ep.dist.version})" if ep.dist is not None else ""
            _failed[group] = OptionError(
                f"the {group} extension {ep.name} = {ep.value}{dist} failed to load: {type(exc).__name__}: {exc}. "
                "Fix or uninstall that package")
            raise _failed[group] from None


def load_all() -> None:
    """Every group: what a gate run does at start-up, so a broken extension stops it before any work."""
    for group in GROUPS:
        load_group(group)
