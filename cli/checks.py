"""Pre-flight checks of the CLI, each failing with a message a person can act on.

Exit status 2 for what the user must fix (a file, an option, the token), 1
for the run's environment (Redis, workers, the API not answering). No message
ever contains the API key or a password from a URL.
"""

from __future__ import annotations

import os
import re
import time
from typing import IO, Any

import click
from celery import Celery

from dropq.config.celeryconfig import STAGES, queue_name
from dropq.config.settings import Settings, SettingsError, from_env
from dropq.dropcontact.client import DropcontactClient
from dropq.dropcontact.errors import AuthenticationError, DropcontactError, TransientError
from dropq.errors import DropqError
from dropq.workers import keys
from dropq.workers.embedded import is_redis_reachable
from dropq.workers.runtime import SANDBOX_DEFAULT_KEY

__all__ = [
    "CliError",
    "USER_ERROR",
    "RUN_ERROR",
    "DETACHED",
    "settings_or_exit",
    "safe_url",
    "check_redis",
    "check_token",
    "check_workers",
    "api_key_for",
]

# Exit statuses: something the user must fix; the run's environment failed; detached with Ctrl-C.
USER_ERROR = 2
RUN_ERROR = 1
DETACHED = 130
# A URL's password, hidden in every message.
_PASSWORD = re.compile(r"(?<=://)([^:/@]*):[^@/]*@")


class CliError(DropqError, click.ClickException):
    """An error printed as ``Error: <message>`` with its exit status."""

    def __init__(self, message: str, exit_code: int = RUN_ERROR) -> None:
        super().__init__(message)
        self.status = exit_code
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance

    def show(self, file: IO[Any] | None = None) -> None:
        """Print the message on stderr, prefixed like click's own errors."""
        click.echo(f"Error: {self.format_message()}", err=True, file=file)


def settings_or_exit(environ: dict[str, str] | None = None) -> Settings:
    """The settings from the environment, or a usage error naming the bad variable."""
    try:
        settings = from_env(os.environ if environ is None else environ)
    except SettingsError as exc:
        raise CliError(str(exc), USER_ERROR) from exc
    keys.use_prefix(settings.key_prefix)  # the CLI reads and sends within this deployment
    return settings


def safe_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    return _PASSWORD.sub(lambda m: f"{m.group(1)}:***@", url)


def api_key_for(settings: Settings) -> str:
    """The key to use: the configured one, or the sandbox's when the URL is not the real API's.

    Raises:
        CliError: no key while the URL is the real API's.
    """
    if settings.api_key:
        return settings.api_key
    if settings.is_missing_api_key:
        raise CliError(
            "DROPCONTACT_API_KEY is not set: set it to your Dropcontact access token, "
            "or add --local to try dropq on the bundled sandbox (synthetic results)",
            USER_ERROR,
        )
    return SANDBOX_DEFAULT_KEY


def check_redis(settings: Settings, *, local_hint: bool) -> None:
    """Fail unless Redis (and a Redis broker, when separate) answers PING.

    Args:
        settings: where Redis is.
        local_hint: whether the command has ``--local`` to suggest (``enrich`` has; ``status`` has not).
    """
    for url in dict.fromkeys((settings.redis_url, settings.effective_broker_url)):
        if url.startswith(("redis://", "rediss://", "unix://")) and not is_redis_reachable(url, timeout_s=2.0):
            what_to_do = (
                "start one (`redis-server`) or use --local to start a private one for this run"
                if local_hint
                else "start it, or set REDIS_URL to the Redis your workers use (jobs live there; a --local "
                "run's private Redis is gone once that run ends)"
            )
            raise CliError(f"Redis is not reachable at {safe_url(url)}; {what_to_do}", RUN_ERROR)


def check_token(settings: Settings) -> int:
    """Ask the free credit endpoint once, so a wrong token fails before anything is submitted.

    Returns:
        The account's balance.

    Raises:
        CliError: no key, a refused key (status 2), or an API that does not answer (status 1).
    """
    key = api_key_for(settings)
    client = DropcontactClient(
        key,
        base_url=settings.api_url,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
    )
    try:
        return _credits_with_retries(client, settings.api_url)
    except AuthenticationError as exc:
        raise CliError(
            f"the API at {settings.api_url} refused the access token (401): check DROPCONTACT_API_KEY", USER_ERROR
        ) from exc
    except DropcontactError as exc:
        raise CliError(f"the API at {settings.api_url} did not answer the credit check: {exc}", RUN_ERROR) from exc
    finally:
        client.close()


def _credits_with_retries(client: DropcontactClient, api_url: str) -> int:
    """The balance; a transient error (5xx, 429, a timeout) is tried again after each pause, said on stderr."""
    for pause_s in TOKEN_CHECK_RETRY_DELAYS_S:
        try:
            return client.get_credits()
        except TransientError as exc:
            click.echo(f"the credit check got {exc}; trying again in {pause_s:g} s", err=True)
            time.sleep(pause_s)
    tries = len(TOKEN_CHECK_RETRY_DELAYS_S) + 1
    try:
        return client.get_credits()
    except TransientError as exc:
        raise CliError(f"the API at {api_url} did not answer the credit check after {tries} tries: {exc}") from exc


# The pre-flight credit check's pauses between tries of a transient error (503, 429, a timeout): 4 tries, 3.5 s.
TOKEN_CHECK_RETRY_DELAYS_S = (0.5, 1.0, 2.0)
# How long the workers that answered a ping have to list their queues.
_QUEUES_REPLY_S = 0.5


def deployment_workers(app: Celery, settings: Settings, timeout_s: float) -> list[str]:
    """The workers that answer within ``timeout_s`` and consume this deployment's queue (``DROPQ_KEY_PREFIX``).

    A worker of another deployment on the same broker answers pings too, but would never take our calls.
    """
    wanted = queue_name(settings, STAGES[0])
    if not app.control.ping(timeout=timeout_s, limit=1):  # nobody at all: no need to wait for queue lists
        return []
    # Workers that answered a ping answer this within milliseconds; every one of them is waited for.
    replies = app.control.inspect(timeout=min(timeout_s, _QUEUES_REPLY_S)).active_queues() or {}
    return sorted(name for name, queues in replies.items() if any(q.get("name") == wanted for q in queues or ()))


def check_workers(app: Celery, settings: Settings, timeout_s: float) -> None:
    """Fail unless a worker of this deployment answers within ``timeout_s``."""
    try:
        found = deployment_workers(app, settings, timeout_s)
    except Exception as exc:  # kombu raises many types; the message below is what matters
        raise CliError(f"cannot ping workers on {safe_url(settings.effective_broker_url)}: {exc}", RUN_ERROR) from exc
    if not found:
        raise CliError(
            f"no dropq worker consumes {queue_name(settings, STAGES[0])} on {safe_url(settings.effective_broker_url)}; "
            "start one with `dropq worker` (same DROPQ_KEY_PREFIX) or use --local",
            RUN_ERROR,
        )
