"""The Dropcontact API, with no Celery: HTTP client, record model and batch rules, error types.

``dropcontact.sandbox`` is a local emulator of the API.
"""

from __future__ import annotations

__all__: list[str] = []
