"""Where outcomes go: files (JSONL, CSV), a Redis stream per job, PostgreSQL, HTTP, the caller's Celery callback."""

from __future__ import annotations

from dropq.workers.destinations.base import Destination, DestinationError
from dropq.workers.destinations.http import HttpDestination
from dropq.workers.destinations.postgres import PostgresDestination
from dropq.workers.destinations.registry import DestinationRegistry

__all__ = ["Destination", "DestinationError", "DestinationRegistry", "HttpDestination", "PostgresDestination"]
