"""The sliding window behind the sandbox's rate limit and busiest-second figure, on explicit times."""

from __future__ import annotations

import pytest

from dropq.dropcontact.sandbox.window import SlidingWindow


@pytest.mark.parametrize(
    ("times", "limit", "expected"),
    [
        ([0.0, 0.1, 0.2], 2, [True, True, False]),
        # An event exactly one width later no longer shares the window with the first.
        ([0.0, 0.5, 1.0], 2, [True, True, True]),
        ([0.0, 0.5, 0.999], 2, [True, True, False]),
        # Refused events are not recorded, so they do not extend the refusal.
        ([0.0, 0.0, 0.0, 1.0, 1.0], 2, [True, True, False, True, True]),
        ([0.0, 0.3, 0.6, 0.9, 1.2], 3, [True, True, True, False, True]),
    ],
)
def test_try_add_admits_at_most_limit_events_in_any_window(
    times: list[float], limit: int, expected: list[bool]
) -> None:
    """Each row: event times, the limit, and which events are admitted."""
    window = SlidingWindow(1.0)
    assert [window.try_add(now, limit) for now in times] == expected


def test_max_count_is_the_busiest_window_ever_seen() -> None:
    """Five events within 0.4 s, then sparse ones: the busiest window held five."""
    window = SlidingWindow(1.0)
    for now in (0.0, 0.1, 0.2, 0.3, 0.4, 2.0, 3.5):
        window.add(now)
    assert window.max_count == 5
    assert window.count(3.6) == 1


def test_a_window_needs_a_positive_width() -> None:
    """A zero width is refused with the value in the message."""
    with pytest.raises(ValueError, match="width_s must be positive, got 0"):
        SlidingWindow(0)
