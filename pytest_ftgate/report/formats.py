"""Report formats as a registry: each is declared once, as syrupy declares its serializers.

A format has a name, the file it writes in the report directory, and `render(view) -> str`; one
that delivers elsewhere (the GitHub step summary) gives its own `write`. report.json is always
written: it is the run's record, which the history and `ftgate promote` read. The others are the
defaults, or what `--ftgate-report-format` (ini `ftgate_report_formats`) names. A third party adds one
with an entry point in the group `ftgate.reports`, a module that calls `register_report_format`
(pytest_ftgate.extend has everything it needs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import OptionError
from ..settings.extensions import load_group

if TYPE_CHECKING:
    from .view import ReportView

RECORD = "json"  # always written: the run's record


@dataclass(frozen=True)
class ReportFormat:
    """One report format. `write(view, directory)` defaults to `render(view)` written to `directory/filename`;
    it returns the path written, or None where nothing was (a summary file that is not set)."""

    name: str
    filename: str
    render: Callable[[ReportView], str]
    description: str = ""
    write: Callable[[ReportFormat, ReportView, Path], Path | None] | None = None
    default: bool = True  # written when no format is named

    def deliver(self, view: ReportView, directory: Path, text: str | None = None) -> Path | None:
        if self.write is not None:
            return self.write(self, view, directory)
        path = directory / self.filename
        path.write_text(text if text is not None else self.render(view), encoding="utf-8")
        return path


_FORMATS: dict[str, ReportFormat] = {}


def register_report_format(fmt: ReportFormat) -> ReportFormat:
    if fmt.name in _FORMATS:
        raise ValueError(f"report format {fmt.name!r} is already registered")
    _FORMATS[fmt.name] = fmt
    return fmt


def report_formats() -> dict[str, ReportFormat]:
    load_group("ftgate.reports")
    return dict(_FORMATS)


def chosen_formats(names: Sequence[str] | None) -> list[ReportFormat]:
    """The formats a run writes: report.json first, then the named ones (or the defaults). An unknown name is
    an error that lists the known ones."""
    known = report_formats()
    wanted = [n for n in dict.fromkeys(names or ()) if n != RECORD] if names else [
        n for n, f in known.items() if f.default and n != RECORD]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise OptionError(f"--ftgate-report-format {', '.join(unknown)}: no such report format; the formats are "
                          f"{', '.join(sorted(known))} (a package may add more through the ftgate.reports entry point)")
    return [known[RECORD], *(known[n] for n in wanted)]


# ---- the bundled formats --------------------------------------------------------------------------------
def _json(view: ReportView) -> str:
    import json

    from .json_report import to_json

    return json.dumps(to_json(view), indent=1, ensure_ascii=False, default=str) + "\n"


def _markdown(view: ReportView) -> str:
    from .markdown import to_markdown

    return to_markdown(view)


def _html(view: ReportView) -> str:
    from .html import render_html

    return render_html(view)


def _github_summary(fmt: ReportFormat, view: ReportView, directory: Path) -> Path | None:
    """Appends the Markdown report to the file GitHub Actions names in $GITHUB_STEP_SUMMARY, when it is set."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return None
    with open(summary, "a", encoding="utf-8") as fh:
        fh.write(fmt.render(view))
    return Path(summary)


for _fmt in (
    ReportFormat(RECORD, "report.json", _json, "the run's record: every measure, case, decision and provenance"),
    ReportFormat("markdown", "report.md", _markdown, "for a pull request comment"),
    ReportFormat("html", "report.html", _html, "one self-contained page, with the flipped cases and the trend"),
    ReportFormat("github-summary", "", _markdown, "the Markdown report appended to $GITHUB_STEP_SUMMARY, when set",
                 write=_github_summary),
):
    register_report_format(_fmt)


__all__ = ["RECORD", "ReportFormat", "chosen_formats", "register_report_format", "report_formats"]
