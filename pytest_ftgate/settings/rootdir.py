"""Did pytest choose its rootdir and ini file from one of our option values?

pytest picks its rootdir and ini file before it loads plugins from entry points, so at that moment
`--candidate /path/adapter` (option and value apart) is an unknown option followed by a path, and
pytest takes the path for a test path: the ini file can come from the adapter's project instead
of the user's. `--candidate=/path/adapter` is safe. This module recomputes what pytest would have
chosen without such values (the same search as pytest's `locate_config`), so the plugin can stop
with a clear error where the two differ. Pure: no pytest import.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

CONFIG_NAMES = ("pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def _has_pytest_config(path: Path) -> bool:
    name = path.name
    if name in ("pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini"):
        return True
    try:
        if name == "pyproject.toml":
            import tomllib

            return "pytest" in tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {})
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.read(path, encoding="utf-8")
        return parser.has_section("pytest" if name == "tox.ini" else "tool:pytest")
    except (OSError, ValueError, configparser.Error):
        return False


def ini_keys_in(path: Path | None) -> set[str]:
    """The keys of pytest's section in its config file: [pytest], [tool:pytest], [tool.pytest.ini_options]
    or pytest 9's native [tool.pytest] / pytest.toml tables. Empty when there is no file or no section."""
    if path is None or not path.is_file():
        return set()
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(path.read_text(encoding="utf-8"))
            if path.name in ("pytest.toml", ".pytest.toml"):
                table = data.get("pytest", data)
            else:
                table = data.get("tool", {}).get("pytest", {})
            keys = {k for k in table if k != "ini_options"}
            return keys | set(table.get("ini_options", {}))
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.optionxform = str  # type: ignore[assignment,method-assign]  (keep the case: pytest's keys are case-sensitive)
        parser.read(path, encoding="utf-8")
        for section in ("pytest", "tool:pytest"):
            if parser.has_section(section):
                return set(parser.options(section))
    except (OSError, ValueError, configparser.Error):
        return set()
    return set()


def locate_inifile(starts: Sequence[Path]) -> Path | None:
    """The config file pytest would find searching upward from each start in turn."""
    first_pyproject = None
    for start in starts:
        for base in (start, *start.parents):
            for name in CONFIG_NAMES:
                candidate = base / name
                if candidate.is_file():
                    if name == "pyproject.toml" and first_pyproject is None:
                        first_pyproject = candidate
                    if _has_pytest_config(candidate):
                        return candidate
    return first_pyproject


def _dirs(args: Iterable[str]) -> list[Path]:
    out = []
    for arg in args:
        if arg.startswith("-"):
            continue
        path = Path(os.path.abspath(arg.split("::")[0]))
        if path.exists():
            out.append(path if path.is_dir() else path.parent)
    return out


def space_separated_values(args: Sequence[str], flags: Iterable[str]) -> list[tuple[str, str]]:
    """(flag, value) for each of our flags written apart from its value (`--candidate PATH`)."""
    flags = set(flags)
    return [(a, args[i + 1]) for i, a in enumerate(args[:-1]) if a in flags and not args[i + 1].startswith("-")]


def misplaced_setup(
    invocation_dir: Path, positional: Sequence[str], inipath: Path | None, rootpath: Path,
    tainting: Sequence[tuple[str, str]], rootdir_given: bool = False,
) -> str | None:
    """Why pytest's rootdir/ini differ from what the command line meant, or None when they agree.

    `positional` are the real test paths; `tainting` are our (flag, value) pairs that pytest took
    for paths while it chose its rootdir."""
    tainting = [(f, v) for f, v in tainting if _dirs([v])]
    if not tainting:
        return None
    dirs = _dirs(positional) or [invocation_dir]
    meant = locate_inifile(dirs)
    flag, value = tainting[0]
    how = (f"Write the option with `=` ({flag}={value}), so pytest never takes its value for a test path, "
           "or pass --rootdir and -c explicitly.")
    if (meant.resolve() if meant else None) != (inipath.resolve() if inipath else None):
        chosen = f"{inipath}" if inipath else "no ini file"
        wanted = f"{meant}" if meant else "no ini file"
        return (f"pytest took the value of {flag} ({value}) for a test path while choosing its configuration, "
                f"and chose {chosen} instead of {wanted}: the suites, thresholds and report directory would "
                f"come from the wrong project. {how}")
    if meant is None and not rootdir_given:
        expected_root = Path(os.path.commonpath([str(invocation_dir), *map(str, dirs)]))
        if rootpath.resolve() != expected_root.resolve():
            return (f"pytest took the value of {flag} ({value}) for a test path and chose {rootpath} as its rootdir "
                    f"instead of {expected_root}, so suites would be named from there. {how}")
    return None
