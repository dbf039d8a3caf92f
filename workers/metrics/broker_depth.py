"""How many messages a Redis broker holds per queue: ready, scheduled (countdown/ETA) and unacknowledged.

A queue's ``LLEN`` shows only the messages no worker has taken. kombu's Redis transport keeps
every message a worker took, until it is acknowledged, in the ``unacked`` hash (delivery tag ->
``[message, exchange, routing_key]``, JSON; ``unacked_index`` says when each was taken): a
message sent with a countdown is taken at once and held there until its ETA (dropq's waits, a
batch in flight between two polls, all sit there). A held message whose ETA is ahead is
*scheduled*; the others are *unacked* (running, or prefetched). Key names, the priority
separator and steps are kombu's own (``kombu.transport.redis.Channel``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import redis
from kombu.transport import redis as kombu_redis

__all__ = ["BrokerDepth", "read_broker_depth", "MESSAGE_STATES"]

MESSAGE_STATES = ("ready", "scheduled", "unacked")
# Entries of the unacked hash read per HSCAN step.
_SCAN_COUNT = 500


@dataclass(frozen=True, slots=True)
class BrokerDepth:
    """Messages per (queue, state)."""

    messages: dict[tuple[str, str], int] = field(default_factory=dict)


def _queue_keys(queue: str) -> list[str]:
    channel = kombu_redis.Channel
    return [queue if not pri else f"{queue}{channel.sep}{pri}" for pri in kombu_redis.PRIORITY_STEPS]


def _eta_s(raw: str) -> float | None:
    """The ETA (epoch seconds) of a held message, or None when it has none (or its entry is unreadable)."""
    try:
        message, _exchange, _routing_key = json.loads(raw)
        eta = message.get("headers", {}).get("eta")
        return datetime.fromisoformat(eta).timestamp() if eta else None
    except (ValueError, TypeError, AttributeError):
        return None


def _routing_key(raw: str) -> str | None:
    try:
        return str(json.loads(raw)[2])
    except (ValueError, TypeError, IndexError):
        return None


def read_broker_depth(client: redis.Redis, queues: Iterable[str], now_s: float) -> BrokerDepth:
    """Count the messages of these queues (their names are also the routing keys dropq publishes with).

    Args:
        client: the broker's Redis (``decode_responses=True``).
        queues: the queue names.
        now_s: now, epoch seconds: a held message with an ETA after it is scheduled.
    """
    names = list(queues)
    counts: Counter[tuple[str, str]] = Counter({(queue, state): 0 for queue in names for state in MESSAGE_STATES})
    pipe = client.pipeline(transaction=False)
    for queue in names:
        for key in _queue_keys(queue):
            pipe.llen(key)
    lengths = iter(pipe.execute())
    for queue in names:
        counts[(queue, "ready")] = sum(int(next(lengths)) for _ in kombu_redis.PRIORITY_STEPS)
    wanted = set(names)
    for _tag, raw in client.hscan_iter(kombu_redis.Channel.unacked_key, count=_SCAN_COUNT):
        held = _routing_key(str(raw))
        if held is None or held not in wanted:
            continue
        eta = _eta_s(str(raw))
        counts[(held, "scheduled" if eta is not None and eta > now_s else "unacked")] += 1
    return BrokerDepth(dict(counts))
