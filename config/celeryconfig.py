"""The Celery configuration dropq runs with, built from ``Settings``.

JSON only, late acknowledgement, one queue per stage routed by task name and
declared, so that a plain ``celery -A dropq worker`` consumes every dropq queue
and nothing else (a broker shared with other applications keeps their
messages: Celery's default ``celery`` queue is theirs unless
``DROPQ_CONSUME_DEFAULT_QUEUE`` says the broker is dropq's alone), and a
broker visibility timeout well above the longest countdown any task uses (a
Redis broker redelivers an unacknowledged message after that timeout, and a
countdown task stays unacknowledged while it waits).
"""

from __future__ import annotations

from typing import Any

from dropq.config.settings import Settings

__all__ = [
    "STAGES",
    "DEFAULT_CELERY_QUEUE",
    "TASK_MODULES",
    "DEFAULT_WORKER_THREADS",
    "queue_name",
    "stage_queues",
    "routes",
    "caller_routes",
    "consumed_queues",
    "MAX_COUNTDOWN_S",
    "max_countdown_s",
    "stall_ms",
    "finisher_silence_ms",
    "sweep_interval_s",
    "build_celery_config",
]

# The stages, each with its own queue ``{DROPQ_KEY_PREFIX}.{stage}`` (``dropq.produce`` by default).
STAGES: tuple[str, ...] = ("produce", "submit", "poll", "sink")

# Celery's default queue: a send_task("dropq.enrich") with no queue and no route lands here. On a
# shared broker it holds other applications' messages, so dropq consumes it only when told to.
DEFAULT_CELERY_QUEUE = "celery"

# Threads per worker process (Celery's -c): requests in flight. 60 requests a second answered in
# 1 s need 60 at once across the fleet, beside the threads in sinks and deliveries; an idle
# thread costs a few hundred kB.
DEFAULT_WORKER_THREADS = 64

# Modules a worker imports to register the dropq.* tasks.
TASK_MODULES: tuple[str, ...] = ("dropq.tasks.health", "dropq.tasks.enrich", "dropq.tasks.stages")

# Task name -> stage. The public entry point shares the produce queue.
_TASK_STAGES: dict[str, str] = {
    "dropq.enrich": "produce",
    "dropq.produce": "produce",
    "dropq.ping": "produce",
    "dropq.submit": "submit",
    "dropq.poll": "poll",
    "dropq.sink": "sink",
    "dropq.deliver": "sink",
    "dropq.finish": "sink",
}


def queue_name(settings_or_prefix: Settings | str, stage: str) -> str:
    """The queue of a stage in a deployment (its settings, or its ``DROPQ_KEY_PREFIX``)."""
    prefix = settings_or_prefix if isinstance(settings_or_prefix, str) else settings_or_prefix.key_prefix
    return f"{prefix}.{stage}"


def stage_queues(settings: Settings) -> tuple[str, ...]:
    """The deployment's own queues, one per stage."""
    return tuple(queue_name(settings, stage) for stage in STAGES)


def routes(settings: Settings) -> dict[str, dict[str, str]]:
    """Task name -> the deployment's queue."""
    return {task: {"queue": queue_name(settings, stage)} for task, stage in _TASK_STAGES.items()}


def caller_routes(settings_or_prefix: Settings | str) -> dict[str, dict[str, str]]:
    """What another application adds to its own config (``task_routes``) to reach a deployment by task name."""
    return {"dropq.*": {"queue": queue_name(settings_or_prefix, STAGES[0])}}


# No task ever re-enqueues itself further ahead than this...
MAX_COUNTDOWN_S = 600
# ...nor further than this share of the visibility timeout (a countdown message stays unacknowledged).
_COUNTDOWN_SHARE_OF_VISIBILITY = 0.25
# A finisher silent for this many stall timeouts (it beats between destinations) is replaced.
_FINISHER_SILENCE_FACTOR = 2
# The sweep looks for overdue work this often at most, and at least four times per stall timeout.
_SWEEP_MAX_INTERVAL_S = 10.0
# The longest pause between two sweeps for unacknowledged messages of dead workers.
_RESTORE_SWEEP_MAX_S = 10
# How long a sweep's mutex outlives a worker killed during the sweep.
_SWEEP_MUTEX_EXPIRE_S = 5
# No publish or result write waits longer than this on a silent broker.
_BROKER_SOCKET_TIMEOUT_S = 10
# Results of send_task(...).get() callers; the job ledger has its own, longer TTL.
RESULT_EXPIRES_S = 24 * 3600


def max_countdown_s(settings: Settings) -> float:
    """The longest countdown a task may use with these settings: well below the visibility timeout."""
    return min(float(MAX_COUNTDOWN_S), settings.visibility_timeout_s * _COUNTDOWN_SHARE_OF_VISIBILITY)


def stall_ms(settings: Settings) -> int:
    """How long a step may be overdue before it counts as lost (``DROPQ_STALL_TIMEOUT_S``)."""
    return int(settings.stall_timeout_s * 1000)


def finisher_silence_ms(settings: Settings) -> int:
    """How long a finisher may stay silent before another one takes over."""
    return _FINISHER_SILENCE_FACTOR * stall_ms(settings)


def sweep_interval_s(settings: Settings) -> float:
    """How often the sweep looks for overdue work."""
    return min(_SWEEP_MAX_INTERVAL_S, settings.stall_timeout_s / 4)


def consumed_queues(settings: Settings) -> tuple[str, ...]:
    """The queues a dropq worker consumes: its own, plus Celery's default on a broker that is dropq's alone."""
    own = stage_queues(settings)
    return (*own, DEFAULT_CELERY_QUEUE) if settings.consume_default_queue else own


def build_celery_config(settings: Settings) -> dict[str, Any]:
    """Return the Celery configuration mapping for these settings.

    Args:
        settings: the process settings.

    Returns:
        A mapping for ``app.conf.update``.
    """
    transport_options = {
        "visibility_timeout": settings.visibility_timeout_s,
        # Sweep for a dead worker's unacknowledged messages every few seconds (kombu's default
        # throttle makes it every 100 s), so they come back soon after the visibility timeout.
        "unacked_restore_interval": max(1, min(_RESTORE_SWEEP_MAX_S, settings.visibility_timeout_s // 20)),
        "unacked_restore_throttle": 1,
        # A worker killed while it held the sweep's mutex would stop every sweep until the mutex expires
        # (kombu's default: 5 minutes); a sweep takes milliseconds.
        "unacked_mutex_expire": _SWEEP_MUTEX_EXPIRE_S,
        # A broker that vanishes without closing the connection must not hang a publish forever.
        "socket_timeout": _BROKER_SOCKET_TIMEOUT_S,
        "socket_connect_timeout": _BROKER_SOCKET_TIMEOUT_S,
    }
    return {
        "broker_url": settings.effective_broker_url,
        "result_backend": settings.redis_url,
        "broker_transport_options": transport_options,
        "result_backend_transport_options": transport_options,
        # Storing a task's state (STARTED comes before the body) while Redis restarts must wait, not fail:
        # a failure there fails the task outside its body, and the message is acknowledged and lost.
        "result_backend_always_retry": True,
        "broker_connection_retry_on_startup": True,
        # JSON only: no pickle anywhere.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # A worker killed mid-task loses nothing: the message is acknowledged after the task.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # A stage waits on the network far more than it computes: threads, not a process per call
        # (`dropq worker` runs one such process per core; Celery's -P and -c still choose).
        "worker_pool": "threads",
        "worker_concurrency": DEFAULT_WORKER_THREADS,
        # Declared queues are what a worker started without -Q consumes (workers/queues.py keeps it so).
        "task_queues": {name: {"exchange": name, "routing_key": name} for name in consumed_queues(settings)},
        "task_default_queue": queue_name(settings, STAGES[0]),
        # A callback's queue belongs to the caller: sending to it must work without declaring it here.
        "task_create_missing_queues": True,
        "task_routes": routes(settings),
        # Task events cost about a tenth of a worker's CPU (a PUBLISH per event, four per task): off until
        # a monitor asks, unless DROPQ_TASK_EVENTS. Flower asks (its enable_events, on by default, every
        # 5 s), and then sees every task received, started, succeeded, retried, failed; `task-sent` is the
        # publisher's own event, which no monitor can turn on: it comes with DROPQ_TASK_EVENTS only.
        "worker_send_task_events": settings.task_events,
        "task_send_sent_event": settings.task_events,
        "task_track_started": True,
        "result_expires": RESULT_EXPIRES_S,
        # Off: an extended result would keep dropq.enrich's arguments (contact data) in Redis for a day.
        "result_extended": False,
        # structlog owns logging; Celery must not take over the root logger.
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "enable_utc": True,
        "timezone": "UTC",
    }
