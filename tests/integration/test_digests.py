"""De-duplication digests are keyed: a reader of Redis cannot confirm a guessed contact by hashing it."""

from __future__ import annotations

import hashlib
import hmac

import redis

from dropq.config.settings import from_env
from dropq.workers import keys
from dropq.workers.jobs.seen import FIELD_BYTES, SeenRecords, bucket_keys, forget
from dropq.workers.runtime import digest_key_for


def test_identity_digests_are_hmacs_with_the_deployment_s_key(redis_client: redis.Redis) -> None:
    """The plain SHA-256 of an email (what a guesser computes) is nowhere in Redis; the keyed one is."""
    key = digest_key_for(from_env({"DROPCONTACT_API_KEY": "k-1"}))
    seen = SeenRecords(redis_client, 60, key)
    assert seen.first_indexes("j", [("email:ada@acme.example", 0), ("email:ada@acme.example", 1)]) == [0, 0]
    kwargs = redis_client.connection_pool.connection_kwargs
    raw = redis.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0))
    stored = {bucket: set(raw.hkeys(bucket)) for bucket in bucket_keys(redis_client, "j")}
    plain = hashlib.sha256(b"email:ada@acme.example").digest()
    keyed = hmac.new(key, b"email:ada@acme.example", hashlib.sha256).digest()
    assert stored == {keys.job_seen_bucket_key("j", int.from_bytes(keyed[:2], "big")): {keyed[2 : 2 + FIELD_BYTES]}}
    assert not any(plain[2:12] in fields for fields in stored.values())
    raw.close()


def test_a_job_s_digests_stay_compact_and_go_when_it_is_forgotten(redis_client: redis.Redis) -> None:
    """20,000 identities over 256 buckets (as 5M over the real 65,536): listpack buckets, a few bytes each; forget."""
    seen = SeenRecords(redis_client, 60, b"k", buckets=256)
    before = int(redis_client.info("memory")["used_memory"])
    for start in range(0, 20_000, 250):
        pairs = [(f"email:person{i}@acme.example", i) for i in range(start, start + 250)]
        assert seen.first_indexes("big", pairs) == [i for _, i in pairs]
    assert seen.first_indexes("big", [("email:person7@acme.example", 20_001)]) == [7]
    grown = int(redis_client.info("memory")["used_memory"]) - before
    found = bucket_keys(redis_client, "big")
    assert {redis_client.object("encoding", key) for key in found[:200]} == {"listpack"}
    assert grown / 20_000 < 40, f"{grown / 20_000:.0f} bytes per identity (one plain hash takes about 90)"
    forget(redis_client, "big")
    assert not redis_client.exists(keys.job_seen_key("big"), *found[:100])


def test_the_digest_key_is_the_secret_when_set_else_one_per_api_key() -> None:
    """Two deployments (two keys, or two secrets) never share digests; the API key itself is not the key."""
    by_key = {digest_key_for(from_env({"DROPCONTACT_API_KEY": k})) for k in ("a", "b")}
    by_secret = digest_key_for(from_env({"DROPCONTACT_API_KEY": "a", "DROPQ_DIGEST_SECRET": "s"}))
    assert len(by_key) == 2 and by_secret == b"s" and b"a" not in by_key
