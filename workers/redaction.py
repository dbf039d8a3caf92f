"""What task events, Flower and ``inspect`` replies show of ``dropq.enrich``'s arguments: never a contact.

Celery shows a task's arguments in three places: the ``task-sent`` event (built by the sender from
the message's ``argsrepr``/``kwargsrepr``), the ``task-received`` event and the logs (built by the
worker's ``Request``), and ``inspect active/reserved/scheduled`` replies (``Request.info``). A
caller's plain ``send_task("dropq.enrich", kwargs=...)`` sets no ``kwargsrepr``, so Celery puts
``saferepr(kwargs)`` (names, emails, companies) in the message, and Flower's task table shows it.

So both sides rewrite it, whatever the caller sent:

- ``ContactSafeRequest`` (the ``Request`` class of ``dropq.enrich``): the worker's events, logs and
  inspect replies carry ``describe_enrich_call(args, kwargs)`` (a count of contacts and the job's
  options), never the header the caller wrote;
- ``ContactSafeAMQP`` (dropq's app's ``amqp`` class): every ``dropq.enrich`` message dropq's own
  app sends (the CLI, Python callers of ``dropq.workers.app``, a held part's retry) carries the same
  description in its headers and its ``task-sent`` event.

Another application's own ``task-sent`` events (off by default in Celery) are that application's:
the README asks callers that turn them on to pass ``kwargsrepr``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from celery.app.amqp import AMQP
from celery.worker.request import Request

__all__ = ["describe_enrich_call", "ContactSafeRequest", "ContactSafeAMQP", "ENRICH_TASK", "HIDDEN"]

ENRICH_TASK = "dropq.enrich"
# What stands in for a value that is not shown.
HIDDEN = "<hidden>"
# dropq.enrich's parameters in order (a positional call is described by name), and those shown.
_PARAMETERS = ("contacts", "job_id", "offset", "final", "siren", "language", "destinations", "callback", "when_busy")
_SHOWN = frozenset(_PARAMETERS) - {"contacts"}
# A shown string longer than this is cut: a description is a line in a table, not a payload.
_MAX_TEXT = 80


def _scalar(value: Any) -> bool:
    return (
        value is None or isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= _MAX_TEXT)
    )


def _describe_value(name: str, value: Any) -> str:
    if name == "contacts":
        return f"<{len(value)} contacts>" if isinstance(value, list) else HIDDEN
    if name not in _SHOWN:
        return HIDDEN
    if _scalar(value):
        return repr(value)
    if isinstance(value, list) and all(isinstance(v, str) and len(v) <= _MAX_TEXT for v in value):
        return repr(value)
    # A callback names tasks and queues: shown when every value is a short string, hidden otherwise.
    if isinstance(value, dict) and all(isinstance(k, str) and _scalar(v) for k, v in value.items()):
        return repr(value)
    return HIDDEN


def describe_enrich_call(args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None) -> tuple[str, str]:
    """The ``(argsrepr, kwargsrepr)`` of a ``dropq.enrich`` call: the number of contacts and the options.

    Positional arguments are described by their parameter's name, in ``kwargsrepr``; an argument
    dropq does not know is shown as ``<hidden>``.

    Args:
        args: the call's positional arguments.
        kwargs: the call's keyword arguments.

    Returns:
        The two strings Celery shows instead of the arguments.
    """
    named: dict[str, Any] = {}
    extra_positional = 0
    for position, value in enumerate(args if isinstance(args, list | tuple) else ()):
        if position < len(_PARAMETERS):
            named[_PARAMETERS[position]] = value
        else:
            extra_positional += 1
    if isinstance(kwargs, Mapping):
        named.update(kwargs)
    parts = [f"{name!r}: {_describe_value(str(name), value)}" for name, value in named.items()]
    argsrepr = f"(<{extra_positional} more>)" if extra_positional else "()"
    return argsrepr, "{" + ", ".join(parts) + "}"


class ContactSafeRequest(Request):  # type: ignore[misc]  # Celery ships no type hints
    """``dropq.enrich``'s request on the worker: events, logs and inspect replies describe the call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        argsrepr, kwargsrepr = describe_enrich_call(self._args, self._kwargs)
        self._argsrepr, self._kwargsrepr = argsrepr, kwargsrepr
        # The tracer's success and failure logs read the request's dict, not this object.
        self._request_dict["argsrepr"], self._request_dict["kwargsrepr"] = argsrepr, kwargsrepr

    def info(self, safe: bool = False) -> dict[str, Any]:
        """Celery's ``info`` for ``inspect`` replies, with the description in place of the arguments."""
        answer: dict[str, Any] = super().info(safe=True)
        return answer


class ContactSafeAMQP(AMQP):  # type: ignore[misc]  # Celery ships no type hints
    """dropq's app's message builder: a ``dropq.enrich`` message carries the description, not the contacts."""

    def as_task_v2(
        self, task_id: str, name: str, args: Any = None, kwargs: Any = None, *rest: Any, **options: Any
    ) -> Any:
        """Build a task message (Celery's protocol 2), with ``dropq.enrich``'s reprs rewritten."""
        if name == ENRICH_TASK:
            options["argsrepr"], options["kwargsrepr"] = describe_enrich_call(args, kwargs)
        return super().as_task_v2(task_id, name, args, kwargs, *rest, **options)
