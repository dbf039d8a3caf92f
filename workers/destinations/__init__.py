"""Where outcomes go: files (JSONL, CSV), a Redis stream per job, PostgreSQL, HTTP, the caller's Celery callback."""

from __future__ import annotations

from workers.destinations.base import Destination, DestinationError
from workers.destinations.http import HttpDestination
from workers.destinations.postgres import PostgresDestination
from workers.destinations.registry import DestinationRegistry

__all__ = ["Destination", "DestinationError", "DestinationRegistry", "HttpDestination", "PostgresDestination"]
