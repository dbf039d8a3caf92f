"""The Celery tasks, one module per stage; thin orchestration over ``workers`` and ``dropcontact``."""

from __future__ import annotations

__all__: list[str] = []
