"""What every destination is: an idempotent writer of outcomes, keyed by job and unit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from dropq.errors import WorkerError

__all__ = ["Destination", "DestinationError"]


class DestinationError(WorkerError):
    """A destination could not write; ``is_transient`` says whether trying again may help."""

    def __init__(self, destination: str, reason: str, *, is_transient: bool = True) -> None:
        super().__init__(f"destination {destination!r}: {reason}")
        self.destination = destination
        self.reason = reason
        self.is_transient = is_transient

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.destination, self.reason, self.is_transient))


def _rebuild(destination: str, reason: str, is_transient: bool) -> DestinationError:
    return DestinationError(destination, reason, is_transient=is_transient)


class Destination(Protocol):
    """Writes the outcomes of one unit (a batch, or a segment's rejects) for one job.

    ``deliver`` may be called again for the same unit after a crash or a retry:
    it must leave the destination as if it had been called once.
    """

    name: str

    def deliver(self, job_id: str, unit_id: str, outcomes: Sequence[Mapping[str, Any]]) -> None:
        """Write the outcomes, idempotently.

        Raises:
            DestinationError: the write failed.
        """

    def finish(self, job_id: str) -> None:
        """Called once the job's last unit was delivered (assemble files, say)."""
