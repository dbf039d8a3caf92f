"""What the sandbox saw, for tests and benchmarks to judge a client by.

Pure counters; the caller passes ``now``. Endpoints are named by method and
route template (``GET /v1/enrich/all/{request_id}``), never by concrete path,
and nothing here ever holds the API key.
"""

from __future__ import annotations

from collections import Counter

from dropq.dropcontact.sandbox.window import SlidingWindow

__all__ = ["SandboxStats", "BUSIEST_WINDOW_S"]

# The busiest-window figures always use 1 s, the API's documented limit, whatever the rate knobs say.
BUSIEST_WINDOW_S = 1.0


class SandboxStats:
    """Counters of requests, answers, batches, credits and webhook pushes."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.status_counts: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self.received_window = SlidingWindow(BUSIEST_WINDOW_S)
        self.accepted_window = SlidingWindow(BUSIEST_WINDOW_S)
        self.rate_limited = 0
        self.batches_received = 0
        self.records_received = 0
        self.credit_checks = 0
        self.duplicate_records_posted = 0
        self.duplicate_batches_posted = 0
        self.batches_completed = 0
        self.polls_not_ready = 0
        self.polls_ready = 0
        self.polls_in_progress = 0
        self.credits_charged = 0
        self.credits_refunded = 0
        self.webhooks_sent = 0
        self.webhooks_failed = 0
        self.webhooks_lost = 0
        self.webhooks_duplicated = 0
        self._record_keys: set[int] = set()
        self._batch_keys: set[int] = set()

    def record_arrival(self, endpoint: str, now: float, *, is_api: bool) -> None:
        """Count a request on ``endpoint``; API requests also feed the busiest-window figure."""
        self.requests[endpoint] += 1
        if is_api:
            self.received_window.add(now)

    def record_accepted(self, now: float) -> None:
        """Count a request the rate limit let through (the limiter's own window is separate)."""
        self.accepted_window.add(now)

    def record_status(self, status: int) -> None:
        """Count an answer's status; a 429 also counts as rate limited."""
        self.status_counts[status] += 1
        if status == 429:
            self.rate_limited += 1

    def record_batch(self, record_keys: list[bytes]) -> None:
        """Count an accepted batch, and the records and batches already seen in earlier accepted batches.

        Args:
            record_keys: the canonical JSON of each record, custom_fields included.
        """
        self.batches_received += 1
        self.records_received += len(record_keys)
        # hash() of bytes is stable within the process, which is all a server's lifetime needs.
        hashes = [hash(key) for key in record_keys]
        seen = self._record_keys
        self.duplicate_records_posted += sum(1 for value in hashes if value in seen)
        seen.update(hashes)
        batch_key = hash(tuple(hashes))
        if batch_key in self._batch_keys:
            self.duplicate_batches_posted += 1
        self._batch_keys.add(batch_key)

    def to_dict(self, credits_left: int, webhooks_pending: int) -> dict[str, object]:
        """A JSON-ready snapshot; keys are stable, for tests and benchmarks."""
        return {
            "requests": dict(sorted(self.requests.items())),
            "requests_total": sum(self.requests.values()),
            "status_counts": {str(status): count for status, count in sorted(self.status_counts.items())},
            "faults": dict(sorted(self.faults.items())),
            "rate_limited": self.rate_limited,
            "max_requests_in_1s_window": self.received_window.max_count,
            "max_accepted_requests_in_1s_window": self.accepted_window.max_count,
            "batches_received": self.batches_received,
            "records_received": self.records_received,
            "credit_checks": self.credit_checks,
            "duplicate_records_posted": self.duplicate_records_posted,
            "duplicate_batches_posted": self.duplicate_batches_posted,
            "batches_completed": self.batches_completed,
            "polls_not_ready": self.polls_not_ready,
            "polls_in_progress": self.polls_in_progress,
            "polls_ready": self.polls_ready,
            "credits_left": credits_left,
            "credits_charged": self.credits_charged,
            "credits_refunded": self.credits_refunded,
            "webhooks_sent": self.webhooks_sent,
            "webhooks_failed": self.webhooks_failed,
            "webhooks_lost": self.webhooks_lost,
            "webhooks_duplicated": self.webhooks_duplicated,
            "webhooks_pending": webhooks_pending,
        }
