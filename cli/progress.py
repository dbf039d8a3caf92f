"""The progress of a job on stderr: a rich progress bar on a terminal, a plain line every few seconds elsewhere.

On a terminal, ``rich`` draws one line, redrawn in place, that fits the terminal's
width whatever it is (the bar takes what the text leaves; text that does not fit is
cut with an ellipsis, never wrapped): records done of the total, the rate, credits
used and the time left. Off a terminal (a log, a CI job, a pipe) it writes
``format_progress``'s plain text once every ``PLAIN_EVERY_S`` seconds instead. Either
way it writes to stderr only, so stdout carries nothing but data (``-o -``).

``format_progress`` is pure (counts and times in, text out); ``JobProgress`` only
decides when and how to show it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TimeRemainingColumn
from rich.table import Column
from rich.text import Text

from dropq.workers.jobs.ledger import JobStatus

__all__ = ["JobProgress", "RateMeter", "format_progress", "format_duration", "PLAIN_EVERY_S"]

# Off a terminal (a log, a CI job), one plain line this often instead of one per refresh.
PLAIN_EVERY_S = 5.0
# The bar's width at most, so that a wide terminal keeps the numbers near it.
_MAX_BAR_WIDTH = 40


def format_duration(seconds: float) -> str:
    """``1:02:03``, ``2:03`` or ``0:05``."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class RateMeter:
    """Records per second since the first sample (a re-attached job's earlier work does not count)."""

    first_count: int | None = None
    first_s: float = 0.0

    def rate(self, count: int, now_s: float) -> float | None:
        """The rate since the first sample, or None until there is something to measure."""
        if self.first_count is None:
            self.first_count, self.first_s = count, now_s
            return None
        elapsed = now_s - self.first_s
        done = count - self.first_count
        return done / elapsed if elapsed > 1.0 and done > 0 else None


def format_progress(status: JobStatus | None, *, sent: int, total: int | None, rate: float | None) -> str:
    """The plain progress text: records done, sent, the outcomes so far, credits, rate and ETA.

    Args:
        status: the job's ledger (None before the first part is accepted).
        sent: records sent so far.
        total: records to send (None while the input is still being read).
        rate: records accounted for per second, when known.
    """
    of = f"/{total:,}" if total is not None else ""
    done = status.accounted if status is not None else 0
    parts = [f"done {done:,}{of}", f"sent {sent:,}{of}"]
    if status is not None:
        parts += [
            f"enriched {status.enriched:,}",
            f"not found {status.not_found:,}",
            f"rejected {status.rejected:,}",
            f"duplicates {status.duplicates:,}",
            f"failed {status.failed:,}",
            f"credits {status.credits_used:,}",
        ]
    if rate:
        parts.append(f"{rate:,.0f} rec/s")
        if total is not None and status is not None:
            parts.append(f"ETA {format_duration(max(0, total - status.accounted) / rate)}")
    return " | ".join(parts)


class _FieldColumn(ProgressColumn):
    """One short field of the task's, never wrapped: cut with an ellipsis when the terminal is too narrow."""

    def __init__(self, render_text: Callable[[Task], str]) -> None:
        super().__init__(table_column=Column(no_wrap=True, overflow="ellipsis"))
        self._render_text = render_text

    def render(self, task: Task) -> Text:
        return Text(self._render_text(task), style="progress.data", no_wrap=True, overflow="ellipsis")


def _rate_text(task: Task) -> str:
    speed = task.finished_speed or task.speed
    return f"{speed:,.0f} rec/s" if speed else "- rec/s"


class JobProgress:
    """Shows a job's progress on ``stream``: a rich bar on a terminal, plain lines every few seconds otherwise.

    Args:
        stream: where to write (stderr, so stdout stays for the output).
        enabled: False writes nothing (``--quiet``).
        clock_s: monotonic seconds.
    """

    def __init__(
        self, stream: TextIO | None = None, *, enabled: bool = True, clock_s: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream or sys.stderr
        self._enabled = enabled
        self._clock_s = clock_s
        self._is_tty = self._stream.isatty()
        self._last_plain_s = -PLAIN_EVERY_S
        self._last_text = ""
        self._last_written = ""
        self._bar: tuple[Progress, TaskID] | None = None

    def _start_bar(self) -> tuple[Progress, TaskID]:
        console = Console(file=self._stream, highlight=False)
        bar = Progress(
            BarColumn(bar_width=None, table_column=Column(ratio=1, max_width=_MAX_BAR_WIDTH, min_width=5)),
            MofNCompleteColumn(table_column=Column(no_wrap=True, overflow="ellipsis")),
            _FieldColumn(_rate_text),
            _FieldColumn(lambda task: f"{task.fields['credits']:,} credits"),
            _FieldColumn(lambda task: f"{task.fields['problems']}" if task.fields["problems"] else ""),
            TimeRemainingColumn(table_column=Column(no_wrap=True, overflow="ellipsis")),
            console=console,
            auto_refresh=False,  # redrawn at each show(): no thread of its own
            redirect_stdout=False,  # stdout is the data (-o -); never drawn on
            redirect_stderr=False,
            expand=False,
        )
        bar.start()
        return bar, bar.add_task("enrich", total=None, credits=0, problems="")

    def show(self, status: JobStatus | None, *, sent: int, total: int | None, rate: float | None) -> None:
        """Show the current progress of the job."""
        if not self._enabled:
            return
        self._last_text = format_progress(status, sent=sent, total=total, rate=rate)
        if not self._is_tty:
            now = self._clock_s()
            if now - self._last_plain_s >= PLAIN_EVERY_S:
                self._last_plain_s = now
                self._write_line(self._last_text)
            return
        if self._bar is None:
            self._bar = self._start_bar()
        problems = ""
        if status is not None:
            found = [(status.rejected, "rejected"), (status.duplicates, "dup"), (status.failed, "failed")]
            problems = " ".join(f"{count:,} {name}" for count, name in found if count)
        bar, task = self._bar
        bar.update(
            task,
            completed=status.accounted if status is not None else 0,
            total=total,
            credits=status.credits_used if status is not None else 0,
            problems=problems,
        )
        bar.refresh()

    def note(self, text: str) -> None:
        """Print a message on its own line, above the bar when there is one."""
        if self._bar is not None:
            self._bar[0].console.print(text, markup=False, highlight=False, soft_wrap=True)
            return
        self._write_line(text)

    def end(self, final: bool = False) -> None:
        """Leave the display: the bar stays as drawn last; off a terminal, ``final`` writes the last text."""
        if self._bar is not None:
            self._bar[0].stop()
            self._bar = None
        elif final and self._enabled and not self._is_tty and self._last_text != self._last_written:
            self._write_line(self._last_text)

    def _write_line(self, text: str) -> None:
        self._last_written = text
        self._stream.write(text + "\n")
        self._stream.flush()
