"""``dropq.ping``: answers ``pong`` so a caller can check that a worker listens."""

from __future__ import annotations

from dropq.workers.app import app

__all__ = ["ping"]


@app.task(name="dropq.ping")
def ping() -> str:
    """Return ``"pong"``."""
    return "pong"
