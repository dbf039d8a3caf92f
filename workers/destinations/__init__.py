"""Where outcomes go: files (JSON Lines, CSV), a Redis stream per job, the caller's Celery callback."""

from __future__ import annotations

from workers.destinations.base import Destination, DestinationError
from workers.destinations.registry import DestinationRegistry

__all__ = ["Destination", "DestinationError", "DestinationRegistry"]
