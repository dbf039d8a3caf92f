"""dropq: enrich contacts through the Dropcontact API at scale, as a Celery application.

Everything dropq installs lives under this one name. The repository keeps the
design card's folders at its top level (``config/``, ``tasks/``,
``workers/``) beside ``dropcontact/`` (the API), ``cli/`` (the command) and
``examples/``; ``pyproject.toml`` maps each folder ``X/`` to ``dropq.X``.

``celery -A dropq worker`` finds the Celery app here as ``dropq.app``. It is
built on first access, so importing ``dropq.config`` or ``dropq.dropcontact``
reads no environment and starts nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    """Build the Celery app on first access (PEP 562), for ``celery -A dropq``."""
    if name == "app":
        from dropq.workers.app import app

        return app
    raise AttributeError(f"module 'dropq' has no attribute {name!r}")
