"""A sliding time window over exact timestamps: the rate limit and the busiest-second figure.

Pure: the caller passes ``now`` (seconds on any monotonic clock). A window of
width ``w`` at time ``t`` holds the events in ``(t - w, t]``, so two events
exactly ``w`` apart never share a window.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SlidingWindow"]


class SlidingWindow:
    """Counts events in the trailing window and remembers the busiest window seen.

    Args:
        width_s: the window's length in seconds.
    """

    __slots__ = ("_events", "max_count", "width_s")

    def __init__(self, width_s: float) -> None:
        if width_s <= 0:
            raise ValueError(f"width_s must be positive, got {width_s!r}")
        self.width_s = width_s
        self._events: deque[float] = deque()
        self.max_count = 0

    def count(self, now: float) -> int:
        """Return how many events fall in the window ending at ``now``."""
        self._expire(now)
        return len(self._events)

    def add(self, now: float) -> int:
        """Record an event at ``now`` and return the count of the window ending there, itself included."""
        self._expire(now)
        self._events.append(now)
        count = len(self._events)
        # The busiest window always ends on an event, so checking at each event is exact.
        self.max_count = max(self.max_count, count)
        return count

    def try_add(self, now: float, limit: int) -> bool:
        """Record an event at ``now`` unless the window would then hold more than ``limit``; tell which."""
        if self.count(now) >= limit:
            return False
        self.add(now)
        return True

    def _expire(self, now: float) -> None:
        events = self._events
        horizon = now - self.width_s
        while events and events[0] <= horizon:
            events.popleft()
