"""De-duplication digests are keyed: a reader of Redis cannot confirm a guessed contact by hashing it."""

from __future__ import annotations

import hashlib
import hmac

import redis

from dropq.config.settings import from_env
from dropq.workers import keys
from dropq.workers.jobs.seen import SeenRecords
from dropq.workers.runtime import digest_key_for


def test_identity_digests_are_hmacs_with_the_deployment_s_key(redis_client: redis.Redis) -> None:
    """The plain SHA-256 of an email (what a guesser computes) is nowhere in Redis; the keyed one is."""
    key = digest_key_for(from_env({"DROPCONTACT_API_KEY": "k-1"}))
    seen = SeenRecords(redis_client, 60, key)
    assert seen.first_indexes("j", [("email:ada@acme.example", 0), ("email:ada@acme.example", 1)]) == [0, 0]
    stored = set(redis_client.hkeys(keys.job_seen_key("j")))
    plain = hashlib.sha256(b"email:ada@acme.example").hexdigest()[:32]
    keyed = hmac.new(key, b"email:ada@acme.example", hashlib.sha256).hexdigest()[:32]
    assert stored == {keyed} and plain not in stored


def test_the_digest_key_is_the_secret_when_set_else_one_per_api_key() -> None:
    """Two deployments (two keys, or two secrets) never share digests; the API key itself is not the key."""
    by_key = {digest_key_for(from_env({"DROPCONTACT_API_KEY": k})) for k in ("a", "b")}
    by_secret = digest_key_for(from_env({"DROPCONTACT_API_KEY": "a", "DROPQ_DIGEST_SECRET": "s"}))
    assert len(by_key) == 2 and by_secret == b"s" and b"a" not in by_key
