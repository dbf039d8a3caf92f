"""kombu's Redis transport with one fix and one order: a worker survives a broker that went away with messages
unacknowledged, and takes the stages that free memory before those that fill it.

*The order*: a worker waits on all its queues with one ``BRPOP``, which takes from the first
non-empty list it names. kombu names them round robin; ``StageOrder`` names them by stage, those
that settle work first: ``sink`` (sinks, deliveries, finishes), ``poll``, ``submit``, then
``produce`` (new input) and any other. A batch whose results are in is delivered, and its records
leave Redis, before new POSTs or new parts are taken; a part waits while the workers have settling
to do, which is back-pressure on what fills Redis. Nothing starves: every sink, poll and submit is
one message per batch, and the lists empty between them.

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

from collections.abc import Iterable
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.utils.scheduling import round_robin_cycle

from dropq.config.celeryconfig import STAGES

__all__ = ["Channel", "StageOrder", "Transport", "TRANSPORT", "stage_rank"]

# What ``broker_transport`` names for a redis:// or rediss:// broker.
TRANSPORT = "dropq.workers.broker:Transport"
# The broker URL schemes this transport serves.
REDIS_SCHEMES = ("redis://", "rediss://")


# The stages in the order a worker takes their messages: settling work first, new input last.
_SETTLING_FIRST = tuple(reversed(STAGES))


def stage_rank(queue: str) -> tuple[int, str]:
    """Where a queue comes in ``StageOrder``: by its stage (``{prefix}.{stage}``), others after, by name."""
    stage = queue.rsplit(".", 1)[-1]
    rank = _SETTLING_FIRST.index(stage) if stage in _SETTLING_FIRST else len(_SETTLING_FIRST)
    return rank, queue


class StageOrder(round_robin_cycle):  # type: ignore[misc]
    """kombu's queue cycle for ``BRPOP``, in ``stage_rank`` order every time (never rotated)."""

    def update(self, it: Iterable[str]) -> None:
        """Take the channel's queues, in stage order."""
        self.items[:] = sorted(it, key=stage_rank)

    def rotate(self, last_used: str) -> None:
        """Keep the order: the first queue named is always the most settling one."""


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    """A channel that fails with a connection error, not an AttributeError, once it lost its connection, and
    waits on its queues in ``StageOrder``."""

    queue_order_strategy = "dropq.workers.broker:StageOrder"

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is None or transport.client is None:
            raise redis.ConnectionError("broker connection released: this channel cannot reach Redis")
        return dict(super()._connparams(asynchronous=asynchronous))  # type: ignore[no-untyped-call]


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel
