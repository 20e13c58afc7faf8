"""Reports of a gate run: one view (view.py), rendered to the terminal, Markdown, HTML and JSON.

To add a report format, write a renderer that takes a `ReportView` and call it from `write_reports`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..runner import GateRun
from ..errors import OptionError
from .view import ReportView, build_view

__all__ = ["ReportView", "build_view", "publish", "terminal_lines", "write_reports"]


def publish(run: GateRun, config: Any) -> tuple[ReportView, list[Path]]:
    """What every face does after a run: the view (with the history's trend), the report files, and the run
    appended to the history store. The view is built once."""
    from ..stores.history import record_run, trend

    past = trend(config.history, [o.suite.name for o in run.outcomes])
    view = build_view(run, past)
    if config.report_dir is None:
        record_run(config.history, view, None)
        return view, []
    # the history records the run (with report.json's sha256) before report.json exists: a verdict on disk always
    # has its record, and a history that cannot be written leaves no report that `ftgate promote` could take
    json_path, text = _report_dir(config.report_dir) / "report.json", _json_text(view)
    record_run(config.history, view, json_path, hashlib.sha256(text.encode("utf-8")).hexdigest())
    return view, write_reports(view, config.report_dir, json_text=text)


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


def _json_text(view: ReportView) -> str:
    from .json_report import to_json

    return json.dumps(to_json(view), indent=1, ensure_ascii=False, default=str) + "\n"


def write_reports(view: ReportView, directory: Path, json_text: str | None = None) -> list[Path]:
    """report.json, report.md (also appended to $GITHUB_STEP_SUMMARY) and report.html in `directory`."""
    from .html import write_html
    from .markdown import to_markdown

    json_path, md_path = _report_dir(directory) / "report.json", directory / "report.md"
    json_path.write_text(json_text if json_text is not None else _json_text(view), encoding="utf-8")
    md = to_markdown(view)
    md_path.write_text(md, encoding="utf-8")
    html_path = write_html(view, directory / "report.html")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(md)
    return [json_path, md_path, html_path]
