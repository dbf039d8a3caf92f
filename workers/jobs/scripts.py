"""Load the job Lua scripts once per client (``register_script``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import redis
from redis.commands.core import Script

__all__ = ["load_script"]

_HERE = Path(__file__).parent


@cache
def _source(name: str) -> str:
    return (_HERE / f"{name}.lua").read_text()


def load_script(client: redis.Redis, name: str) -> Script:
    """Register ``{name}.lua`` of this folder on ``client``."""
    return client.register_script(_source(name))
