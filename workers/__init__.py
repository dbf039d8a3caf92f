"""Process wiring around the API package: the Celery app, logging, the shared limiter,
the job ledger and batch store, destinations, the webhook receiver and the CLI."""

from __future__ import annotations

__all__: list[str] = []
