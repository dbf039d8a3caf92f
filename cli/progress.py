"""The progress line of a job: one line on stderr, rewritten in place on a terminal, periodic lines elsewhere.

``format_progress`` is pure (counts and times in, text out); ``ProgressLine``
only decides when and how to write it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from dropq.workers.jobs.ledger import JobStatus

__all__ = ["ProgressLine", "RateMeter", "format_progress", "format_duration"]

# Off a terminal (a log, a CI job), one plain line this often instead of one per refresh.
PLAIN_EVERY_S = 5.0


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
    """The progress text: sent, delivered and the other outcomes, credits, rate and ETA.

    Args:
        status: the job's ledger (None before the first part is accepted).
        sent: records sent so far.
        total: records to send (None while the input is still being read).
        rate: records accounted for per second, when known.
    """
    of = f"/{total:,}" if total is not None else ""
    parts = [f"sent {sent:,}{of}"]
    if status is not None:
        parts += [
            f"batches {status.batches_done:,}/{status.batches:,}",
            f"delivered {status.delivered:,}",
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


class ProgressLine:
    """Writes the progress text: in place on a terminal, a plain line every few seconds otherwise.

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
        self._width = 0

    def show(self, text: str) -> None:
        """Show the current progress."""
        if not self._enabled:
            return
        if self._is_tty:
            padded = text.ljust(self._width)
            self._width = len(text)
            self._stream.write(f"\r{padded}")
            self._stream.flush()
            return
        now = self._clock_s()
        if now - self._last_plain_s >= PLAIN_EVERY_S:
            self._last_plain_s = now
            self._stream.write(text + "\n")
            self._stream.flush()

    def end(self, text: str | None = None) -> None:
        """Leave the line: print the last text (if any) and a newline on a terminal."""
        if not self._enabled:
            return
        if text is not None:
            self._last_plain_s = -PLAIN_EVERY_S
            self.show(text)
        if self._is_tty and self._width:
            self._stream.write("\n")
            self._stream.flush()
            self._width = 0
