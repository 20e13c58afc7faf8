"""Progress of long work (generation): a tqdm bar on a terminal, whatever pytest's verbosity, and a
plain line every tenth of the work (or every 30 s) where the output is a log file, as in CI.

    ftgate baseline (3 suites): 40/160 cases (25%), 3.1 cases/s, about 39 s left

FTGATE_PROGRESS=off silences both.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

EVERY_S = 30.0  # a plain line at least this often while work goes on


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class LineProgress:
    """tqdm's `update`/`close`, written as whole lines: a CI log shows progress without carriage returns."""

    def __init__(self, total: int, desc: str, stream: TextIO | None = None, unit: str = "cases"):
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream or sys.stderr
        self.done = 0
        self.started = self.last_line = time.monotonic()
        self.step = max(1, total // 10)
        self.next_mark = self.step

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.done >= self.next_mark or now - self.last_line >= EVERY_S:
            while self.next_mark <= self.done:
                self.next_mark += self.step
            self.last_line = now
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = f", about {_clock((self.total - self.done) / rate)} left" if rate and self.done < self.total else ""
        pct = 100 * self.done / self.total if self.total else 100.0
        print(f"ftgate {self.desc}: {self.done}/{self.total} {self.unit} ({pct:.0f}%), {rate:.1f} {self.unit}/s{left}",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self.done and self.done % self.step and self.done < self.next_mark:
            self._line(time.monotonic())  # the last line says where it ended


class NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int, desc: str, stream: TextIO | None = None) -> Any:
    """A progress display for `total` units of work: a bar on a terminal, lines in a log, nothing when off."""
    stream = stream or sys.stderr
    if os.environ.get("FTGATE_PROGRESS", "").lower() in ("off", "0", "no", "false"):
        return NoProgress()
    if stream.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=f"ftgate {desc}", unit="case", file=stream, leave=False)
    return LineProgress(total, desc, stream)
