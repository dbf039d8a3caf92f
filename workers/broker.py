"""kombu's Redis transport with one fix: a worker survives a broker that went away with messages unacknowledged.

When a worker loses its Redis broker, Celery's consumer collects the connection, which drops
the transport's ``client`` even when a channel failed to close on the dead socket (a BRPOP was
pending), and Celery 5.7 then closes the connection again; a task that finishes meanwhile
acknowledges its message on the detached channel. Each path builds a new pool from the dropped
client and fails with an ``AttributeError``, which Celery does not take for a connection error:
it stops the worker ("Unrecoverable error ... 'hostname'"). Raised as a connection error, the
failure is logged and the worker reconnects; the messages stay in Redis's unacked set and come
back after the visibility timeout, as when a restore or an ack fails against a dead broker.

``_connparams`` is kombu's own (private) method; tests/integration/test_shared_broker.py
restarts a broker under a worker holding an unacknowledged message, for every kombu upgrade.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis

__all__ = ["Channel", "Transport", "TRANSPORT"]

# What ``broker_transport`` names for a redis:// or rediss:// broker.
TRANSPORT = "dropq.workers.broker:Transport"
# The broker URL schemes this transport serves.
REDIS_SCHEMES = ("redis://", "rediss://")


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    """A channel that fails with a connection error, not an AttributeError, once it lost its connection."""

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is None or transport.client is None:
            raise redis.ConnectionError("broker connection released: this channel cannot reach Redis")
        return dict(super()._connparams(asynchronous=asynchronous))  # type: ignore[no-untyped-call]


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel
