"""Where files are: a file a suite names beside itself (cases, schemas, goldens) stays beside it, and
whether a path lies under a directory."""

from __future__ import annotations

from pathlib import Path

from ..errors import SuiteError


def beside(directory: Path, name: str, what: str) -> Path:
    """`directory / name`, refused when it escapes `directory` (an absolute path, `..`, a symlink out)."""
    path = directory / name
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        raise SuiteError(f"{what} {name!r} is outside the suite's directory {directory}: a suite only reads files "
                         "beside it or below it; copy the file there") from None
    return path


def is_under(path: Path, parent: Path) -> bool:
    """Whether `path` is `parent` or lies below it, symlinks resolved."""
    try:
        Path(path).resolve().relative_to(Path(parent).resolve())
        return True
    except ValueError:
        return False
