"""Reports of a gate run: one view (view.py), shown in the terminal and written in each report format
(formats.py: a registry, which an installed package may add to).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..gating.runner import GateRun
from ..errors import OptionError
from .formats import RECORD, ReportFormat, chosen_formats
from .view import ReportView, build_view

__all__ = ["ReportView", "build_view", "publish", "terminal_lines", "write_reports"]


def publish(run: GateRun, config: Any) -> tuple[ReportView, list[Path]]:
    """What every face does after a run: the view (with the history's trend), the report files, and the run
    appended to the history store. The view is built once; the reports written come back, report.json first."""
    from ..stores.history import record_run, trend

    past = trend(config.history, [o.suite.name for o in run.outcomes])
    view = build_view(run, past)
    if config.report_dir is None:
        record_run(config.history, view, None)
        return view, []
    formats = chosen_formats(config.report_formats)
    # the history records the run (with report.json's sha256) before report.json exists: a verdict on disk always
    # has its record, and a history that cannot be written leaves no report that `ftgate promote` could take
    record = formats[0]
    json_path, text = _report_dir(config.report_dir) / record.filename, record.render(view)
    record_run(config.history, view, json_path, hashlib.sha256(text.encode("utf-8")).hexdigest())
    return view, write_reports(view, config.report_dir, formats, json_text=text)


def terminal_lines(run: GateRun | ReportView, verbose: int = 0) -> list[str]:
    from .terminal import terminal_lines as lines

    return lines(run if isinstance(run, ReportView) else build_view(run), verbose)


def _report_dir(directory: Path) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptionError(f"--ftgate-report-dir={directory}: cannot create it ({exc.strerror}); point it at a "
                          "writable directory") from None
    return directory


def write_reports(view: ReportView, directory: Path, formats: Sequence[ReportFormat] | None = None,
                  json_text: str | None = None) -> list[Path]:
    """Each format's report in `directory` (report.json first; by default the default formats); the paths written."""
    formats = list(formats) if formats is not None else chosen_formats(None)
    _report_dir(directory)
    written = [fmt.deliver(view, directory, json_text if fmt.name == RECORD else None) for fmt in formats]
    return [p for p in written if p is not None]
