"""The ``http`` destination: each unit POSTed as JSON to a receiver of the user's.

The body is ``{"job_id", "unit_id", "records": [outcome, ...]}`` and the
request carries ``Idempotency-Key: {job_id}:{unit_id}``. Delivery is at least
once: a retry after a timeout, or a worker killed between the answer and
recording it, sends the same unit again with the same key, so the receiver
dedupes on the key (or on ``(job_id, index)`` per record).

2xx is done; 408, 425, 429, 5xx, connection errors and timeouts are transient
(the delivery retries with backoff); any other status is permanent. Redirects
are not followed: a 303 would turn the POST into a GET. Header values (tokens)
are never logged nor put in an error reason.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from dropq.workers.destinations.base import DestinationError

__all__ = ["HttpDestination", "IDEMPOTENCY_HEADER"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Statuses that say "not now" rather than "never": request timeout, too early, too many requests.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})


class HttpDestination:
    """POSTs each unit's outcomes to one URL.

    Args:
        name: the destination's name in the config.
        url: the receiver (http or https).
        headers: extra headers (their values may be secrets).
        timeout_s: the connect and the read timeout of each POST.
    """

    def __init__(self, name: str, url: str, headers: Mapping[str, str], timeout_s: float) -> None:
        self.name = name
        self._url = url
        self._headers = {**headers, "Content-Type": "application/json"}
        self._timeout_s = timeout_s
        parts = urlsplit(url)
        # What reasons show of the URL: no credentials, no query (either may carry a token).
        self._shown_url = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
        self._session: requests.Session | None = None
        self._session_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpDestination(name={self.name!r}, url={self._shown_url!r})"

    def deliver(self, job_id: str, unit_id: str, outcomes: Sequence[Mapping[str, Any]]) -> None:
        """POST the unit; the same unit always goes with the same idempotency key.

        Raises:
            DestinationError: transient for connection errors, timeouts, 408, 425, 429 and 5xx;
                permanent for any other non-2xx status.
        """
        body = json.dumps({"job_id": job_id, "unit_id": unit_id, "records": list(outcomes)}, ensure_ascii=False)
        headers = {**self._headers, IDEMPOTENCY_HEADER: f"{job_id}:{unit_id}"}
        try:
            response = self._get_session().post(
                self._url,
                data=body.encode("utf-8"),
                headers=headers,
                timeout=(self._timeout_s, self._timeout_s),
                allow_redirects=False,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            # The exception text names the URL at most; never the headers.
            reason = f"{self._shown_url} unreachable: {type(exc).__name__}"
            raise DestinationError(self.name, reason) from exc
        except requests.RequestException as exc:
            reason = f"cannot POST to {self._shown_url}: {type(exc).__name__}"
            raise DestinationError(self.name, reason, is_transient=False) from exc
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return
        reason = f"{self._shown_url} answered {status}"
        raise DestinationError(self.name, reason, is_transient=status in _TRANSIENT_STATUSES or status >= 500)

    def finish(self, job_id: str) -> None:
        """Nothing to send: the receiver has every unit already."""

    def _get_session(self) -> requests.Session:
        """This process's session (the registry is built after the fork), made on first use."""
        with self._session_lock:
            if self._session is None:
                self._session = requests.Session()
            return self._session
