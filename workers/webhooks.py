"""Webhook callbacks: an unguessable URL per batch, and the receiver that accepts the API's pushes.

Dropcontact signs nothing, so the URL itself is the credential: each batch
gets a random token (``secrets.token_urlsafe``), stored in Redis against the
batch. A push is accepted only for a token we issued, for a batch we still
wait for, and only when its ``request_id`` is that batch's. Everything else
gets a 404 and changes nothing. Polling stays on as the safety net for lost
pushes, so a push is an optimisation, never a single point of failure.
"""

from __future__ import annotations

import secrets

from workers import keys
from workers.runtime import Runtime

__all__ = ["callback_url_for", "batch_for_token", "CALLBACK_PATH"]

CALLBACK_PATH = "/dropq/webhook"
# 32 bytes of randomness: not guessable, not enumerable.
_TOKEN_BYTES = 32


def callback_url_for(rt: Runtime, batch_id: str) -> str | None:
    """The batch's callback URL (its token made once, kept across re-submits)."""
    base = rt.settings.webhook_url
    if not base:
        return None
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    if rt.redis.hsetnx(keys.batch_key(batch_id), "callback_token", token):
        rt.redis.set(keys.webhook_token_key(token), batch_id, ex=rt.settings.job_ttl_s)
    else:
        token = str(rt.redis.hget(keys.batch_key(batch_id), "callback_token"))
    return f"{base.rstrip('/')}{CALLBACK_PATH}/{token}"


def batch_for_token(rt: Runtime, token: str) -> str | None:
    """The batch a token was issued for, or None."""
    found = rt.redis.get(keys.webhook_token_key(token))
    return str(found) if found else None
