"""The result cache: on a real PostgreSQL and a Redis of its own, alone and behind a real worker and the sandbox."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from dropq.workers.cache import Answer, CacheError, ResultCache
from dropq.workers.cache.postgres import PostgresCacheStore
from dropq.workers.cache.redis_store import RedisCacheStore
from dropq.workers.embedded import EmbeddedRedis
from dropq.workers.jobs.ledger import JobStatus
from tests.integration.test_cli_enrich import run_dropq
from tests.support.pipeline import read_stream, wait_for_job, worker_env
from tests.support.processes import client_app

ROOT = Path(__file__).resolve().parents[2]
DAY_MS = 24 * 3600 * 1000
NOW_MS = 1_800_000_000_000
SECRET = b"test-secret"


@pytest.fixture
def cache_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of the cache's own, which evicts (as the README asks)."""
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        client.config_set("maxmemory", "64mb")
        client.config_set("maxmemory-policy", "allkeys-lru")
        client.close()
        yield server


@pytest.fixture(params=["postgresql", "redis"])
def cache(request: Any, redis_client: redis.Redis) -> ResultCache:
    """A cache on each store: a table of the test's own, or a private evicting Redis."""
    if request.param == "postgresql":
        store: Any = PostgresCacheStore(request.getfixturevalue("pg_dsn"), request.getfixturevalue("table"))
    else:
        server = request.getfixturevalue("cache_redis")
        store = RedisCacheStore(redis.Redis.from_url(server.url, decode_responses=True), redis_client)
    assert store.check() is None
    return ResultCache(store, SECRET, max_age_days=30, not_found_max_age_days=7)


def _keep(cache: ResultCache, identity: str, answer: Answer, *, siren: bool, language: str | None) -> None:
    cache.keep([(cache.key(identity, siren=siren, language=language), answer)])


def _answer(status: str = "enriched", fetched_ms: int = NOW_MS, name: str = "Ada") -> Answer:
    record = {"first_name": name, "email": [{"email": "ada@acme.example", "qualification": "nominative@pro"}]}
    return Answer(status, record, "ada@acme.example", "nominative@pro", fetched_ms)


def test_an_answer_is_found_by_the_same_question_only(cache: ResultCache) -> None:
    """Same identity and options: found; another option, another identity kind: not found."""
    _keep(cache, "name:ada lovelace@acme.example", _answer(), siren=False, language=None)

    [found] = cache.lookup(["name:ada lovelace@acme.example"], siren=False, language=None, now_ms=NOW_MS + 1)
    assert found == _answer()
    assert cache.lookup(["name:ada lovelace@acme.example"], siren=True, language=None, now_ms=NOW_MS) == [None]
    assert cache.lookup(["name:ada lovelace@acme.example"], siren=False, language="en", now_ms=NOW_MS) == [None]
    # A verification of the address the search found is another question
    assert cache.lookup(["email:ada@acme.example"], siren=False, language=None, now_ms=NOW_MS) == [None]


def test_answers_older_than_their_maximum_age_do_not_answer_and_are_purged(cache: ResultCache) -> None:
    """30 days for an enriched answer, 7 for a not-found; a newer write replaces an older one."""
    _keep(cache, "name:a@x", _answer(fetched_ms=NOW_MS - 29 * DAY_MS), siren=False, language=None)
    _keep(cache, "name:b@x", _answer("not_found", fetched_ms=NOW_MS - 6 * DAY_MS), siren=False, language=None)
    _keep(cache, "name:c@x", _answer("not_found", fetched_ms=NOW_MS - 8 * DAY_MS), siren=False, language=None)

    found = cache.lookup(["name:a@x", "name:b@x", "name:c@x"], siren=False, language=None, now_ms=NOW_MS)
    assert [a.status if a else None for a in found] == ["enriched", "not_found", None]
    two_days_on = NOW_MS + 2 * DAY_MS
    assert cache.lookup(["name:a@x", "name:b@x"], siren=False, language=None, now_ms=two_days_on) == [None, None]
    if cache.kind == "postgresql":  # Redis expires entries by itself
        assert cache.purge(two_days_on) == 3
        assert cache.store.get_many([cache.key("name:a@x", siren=False, language=None)]) == {}


def test_forget_deletes_an_identity_whatever_the_options_and_clear_deletes_all(cache: ResultCache) -> None:
    """A GDPR erasure: every entry of the identity goes (siren or not, any language); others stay."""
    for siren, language in ((False, None), (True, "fr"), (False, "en")):
        _keep(cache, "email:ada@acme.example", _answer(), siren=siren, language=language)
    _keep(cache, "email:grace@acme.example", _answer(name="Grace"), siren=False, language=None)

    assert cache.forget(["email:ada@acme.example"]) == 3
    assert cache.lookup(["email:ada@acme.example"], siren=True, language="fr", now_ms=NOW_MS) == [None]
    [grace] = cache.lookup(["email:grace@acme.example"], siren=False, language=None, now_ms=NOW_MS)
    assert grace is not None
    assert cache.store.clear() == 1
    assert cache.lookup(["email:grace@acme.example"], siren=False, language=None, now_ms=NOW_MS) == [None]


def test_keys_are_keyed_digests_never_the_identity(cache: ResultCache, cache_redis: EmbeddedRedis) -> None:
    """The store's keys hold no email or name; another secret makes other keys."""
    _keep(cache, "email:ada@acme.example", _answer(), siren=False, language=None)
    other = ResultCache(cache.store, b"another-secret", max_age_days=30, not_found_max_age_days=7)
    assert other.lookup(["email:ada@acme.example"], siren=False, language=None, now_ms=NOW_MS) == [None]
    if cache.kind == "redis":
        names = redis.Redis.from_url(cache_redis.url, decode_responses=True).keys("*")
        assert names and not any("ada" in name for name in names)


def test_a_cache_redis_that_is_the_broker_s_or_does_not_evict_is_refused(
    redis_client: redis.Redis, redis_url: str
) -> None:
    """The broker's Redis runs with noeviction and must never fill with cache entries."""
    same = RedisCacheStore(redis.Redis.from_url(redis_url, decode_responses=True), redis_client)
    assert "Redis server of the broker" in str(same.check())
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        client.config_set("maxmemory-policy", "noeviction")
        assert "noeviction" in str(RedisCacheStore(client, redis_client).check())
        client.config_set("maxmemory-policy", "allkeys-lru")
        assert RedisCacheStore(client, redis_client).check() is None


def test_an_unreachable_database_is_a_cache_error_without_its_password() -> None:
    """A cache that cannot be reached says so (the job goes on without it); the DSN's password never shows."""
    store = PostgresCacheStore("postgresql://postgres:pw-5f1c9e@127.0.0.1:1/test")
    with pytest.raises(CacheError) as caught:
        store.get_many([b"x" * 32])
    assert "pw-5f1c9e" not in str(caught.value)


# -- behind a real worker ------------------------------------------------------------------------------------------


def _contacts(n: int, *, changed: Collection[int] = (), seed: str = "a") -> list[dict[str, Any]]:
    """``n`` distinct people, a third with an email (verifications), the rest by name; ``changed`` rows are others."""
    rows = []
    for i in range(n):
        tag = f"{i}x" if i in changed else str(i)
        if i % 3 == 0:
            row: dict[str, Any] = {"email": f"person{tag}.{seed}@acme.example", "first_name": "Ada"}
        else:
            row = {
                "first_name": "Grace",
                "last_name": f"Person{tag}{seed}",
                "company": "Acme",
                "website": "acme.example",
            }
        row["custom_fields"] = {"crm_id": f"crm-{i}"}
        rows.append(row)
    return rows


@pytest.fixture
def clean_default_table(pg_dsn: str) -> Iterator[None]:
    """The workers write the default table: empty before and after the test."""
    from dropq.workers.cache.postgres import table_for

    table = table_for("dropq")  # the workers' (DROPQ_KEY_PREFIX's default)

    def drop() -> None:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP TABLE IF EXISTS {}").format(psycopg.sql.Identifier(table)))

    drop()
    yield
    drop()


@pytest.fixture
def cached_deployment(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path, pg_dsn: str, clean_default_table: None
) -> Any:
    """A worker whose result cache is the test database's (its default table, emptied around the test)."""
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_CACHE_URL=pg_dsn)
    start_worker(env, concurrency=4)
    return client_app(redis_url, redis_url), env


def _run(app: Any, redis_url: str, job_id: str, contacts: list[dict[str, Any]], **options: Any) -> JobStatus:
    app.send_task(
        "dropq.enrich", kwargs={"contacts": contacts, "job_id": job_id, "destinations": ["stream"], **options},
        queue="dropq.produce",
    ).get(timeout=30)  # fmt: skip
    return wait_for_job(redis_url, job_id, timeout_s=90)


def _credits(sandbox: Any) -> int:
    stats = sandbox.stats()
    return int(stats["credits_charged"]) - int(stats["credits_refunded"])


def _comparable(outcome: dict[str, Any]) -> dict[str, Any]:
    """An outcome without what differs by job (its id, our reference in custom_fields) or by source."""
    same = {k: v for k, v in outcome.items() if k not in ("job_id", "source", "fetched_at", "input")}
    fields = {k: v for k, v in same["record"]["custom_fields"].items() if k != "dropq_ref"}
    return {**same, "record": {**same["record"], "custom_fields": fields}}


def test_the_same_contacts_again_cost_nothing_and_come_back_the_same(
    cached_deployment: Any, redis_url: str, sandbox: Any
) -> None:
    """Run 2 of the same 60 contacts: 0 POSTs, 0 credits, the same outcomes with source "cache";
    30% changed: only the changed rows are sent and paid; refresh pays again; off leaves the cache alone."""
    app, _ = cached_deployment
    # Given: a first job of 60 contacts, paid in full
    first = _run(app, redis_url, "run-1", _contacts(60))
    posted, paid = sandbox.stats()["records_received"], _credits(sandbox)
    assert posted == 60 and paid > 0 and first.cached == 0

    # When: the same contacts come again, in a new job
    second = _run(app, redis_url, "run-2", _contacts(60))

    # Then: nothing is sent or paid, every row is answered from the cache, the same as the first time
    assert sandbox.stats()["records_received"] == posted and _credits(sandbox) == paid
    assert second.cached == 60 and second.credits_saved == first.credits_used and second.credits_used == 0
    assert second.enriched == first.enriched and second.not_found == first.not_found
    assert second.accounted == second.received == 60
    one, two = read_stream(redis_url, "run-1"), read_stream(redis_url, "run-2")
    assert [_comparable(o) for o in two] == [_comparable(o) for o in one]
    assert {o["source"] for o in one} == {"api"} and {o["source"] for o in two} == {"cache"}
    assert all(o["fetched_at"].endswith("Z") for o in two)
    assert [o["record"]["custom_fields"]["crm_id"] for o in two] == [f"crm-{i}" for i in range(60)]

    # When: 30% of the rows are other people
    changed = {i for i in range(60) if i % 10 < 3}  # 18 rows, verifications and searches
    third = _run(app, redis_url, "run-3", _contacts(60, changed=changed))
    assert sandbox.stats()["records_received"] == posted + 18
    assert third.cached == 42

    # When: refresh asks the API again for every row, and the answers are kept anew
    before = sandbox.stats()["records_received"]
    refreshed = _run(app, redis_url, "run-4", _contacts(60), cache="refresh")
    assert sandbox.stats()["records_received"] == before + 60 and refreshed.cached == 0
    fifth = _run(app, redis_url, "run-5", _contacts(60))
    assert fifth.cached == 60
    times = {o["fetched_at"] for o in read_stream(redis_url, "run-5")}
    assert min(times) >= max(o["fetched_at"] for o in read_stream(redis_url, "run-2"))

    # When: off, the API is asked and nothing is read
    before = sandbox.stats()["records_received"]
    off = _run(app, redis_url, "run-6", _contacts(60), cache="off")
    assert sandbox.stats()["records_received"] == before + 60 and off.cached == 0


def test_forget_makes_the_next_enrichment_of_that_contact_pay(
    cached_deployment: Any, redis_url: str, sandbox: Any
) -> None:
    """``dropq cache forget --email`` (a GDPR erasure): that contact is asked again, the others stay cached."""
    app, env = cached_deployment
    _run(app, redis_url, "f-1", _contacts(9))
    posted = sandbox.stats()["records_received"]

    done = subprocess.run(
        [sys.executable, "-m", "dropq", "cache", "forget", "--email", "person3.a@acme.example"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "1 contact(s): 1 cache entries deleted" in done.stdout

    again = _run(app, redis_url, "f-2", _contacts(9))
    assert sandbox.stats()["records_received"] == posted + 1 and again.cached == 8


def test_two_jobs_sending_the_same_contacts_at_once_pay_once(
    cached_deployment: Any, redis_url: str, sandbox: Any
) -> None:
    """The second job's part waits for the answers the first is getting, and takes them from the cache."""
    app, _ = cached_deployment
    sandbox.configure(processing_min_s=2.0, processing_max_s=2.0)
    # When: two jobs send the same 30 contacts at the same moment
    kwargs = {"contacts": _contacts(30), "destinations": ["stream"]}
    calls = [
        app.send_task("dropq.enrich", kwargs={**kwargs, "job_id": job}, queue="dropq.produce")
        for job in ("twin-a", "twin-b")
    ]
    for call in calls:
        call.get(timeout=30)
    a, b = wait_for_job(redis_url, "twin-a", timeout_s=90), wait_for_job(redis_url, "twin-b", timeout_s=90)

    # Then: each contact was sent once; one job paid, the other got every answer from the cache
    assert sandbox.stats()["records_received"] == 30
    assert sorted([a.cached, b.cached]) == [0, 30]
    assert a.accounted == a.received == 30 and b.accounted == b.received == 30
    paid, saved = (a, b) if b.cached else (b, a)
    assert saved.credits_used == 0 and saved.credits_saved == paid.credits_used
    # And no claim is left behind
    assert not redis.Redis.from_url(redis_url).keys("dropq:inflight:*")


def test_a_part_held_behind_a_failed_batch_sends_its_contacts_itself(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path, pg_dsn: str, clean_default_table: None
) -> None:
    """The first job's batch fails (the API answers 500, retries exhausted): its claims go with it, and the job
    waiting behind it sends the contacts itself and gets them enriched."""
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_CACHE_URL=pg_dsn, DROPQ_MAX_RETRIES="1")
    start_worker(env, concurrency=4)
    app = client_app(redis_url, redis_url)
    # Given: an API that answers every request with a 500, and a first job that claims 10 contacts
    sandbox.configure(error_probability=1.0, error_statuses=(500,))
    _send(app, "lost", _contacts(10))
    # When: a second job with the same contacts comes while the first one's batch is failing
    _send(app, "heir", _contacts(10))
    lost = wait_for_job(redis_url, "lost", timeout_s=90)
    sandbox.configure(error_probability=0.0)

    # Then: the first job's records failed; the second's were sent by itself and came back
    assert lost.failed == 10
    heir = wait_for_job(redis_url, "heir", timeout_s=90)
    assert heir.cached == 0 and heir.failed == 0 and heir.delivered == 10
    assert not redis.Redis.from_url(redis_url).keys("dropq:inflight:*")


def _send(app: Any, job_id: str, contacts: list[dict[str, Any]]) -> None:
    kwargs = {"contacts": contacts, "job_id": job_id, "destinations": ["stream"]}
    app.send_task("dropq.enrich", kwargs=kwargs, queue="dropq.produce").get(timeout=30)


def test_enriching_the_sample_file_twice_pays_once_and_writes_the_same_rows(
    cached_deployment: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """``dropq enrich examples/contacts.csv`` twice: the second run sends nothing, costs nothing, and writes the
    same rows, its source column saying "cache" where the first said "api"."""
    _, env = cached_deployment
    sample = str(ROOT / "examples" / "contacts.csv")
    first_out, second_out = tmp_path / "first.csv", tmp_path / "second.csv"
    first = run_dropq(["enrich", sample, "-o", str(first_out), "-q", "--summary-json", str(tmp_path / "1.json")], env)
    assert first.returncode in (0, 3), first.stderr
    posted, paid = sandbox.stats()["records_received"], _credits(sandbox)
    assert posted > 0 and paid > 0

    second = run_dropq(["enrich", sample, "-o", str(second_out), "-q"], env)

    assert second.returncode == first.returncode, second.stderr
    assert sandbox.stats()["records_received"] == posted and _credits(sandbox) == paid
    assert "credits saved" in second.stderr
    with first_out.open(newline="") as a, second_out.open(newline="") as b:
        one, two = list(csv.reader(a)), list(csv.reader(b))
    assert one[0] == two[0] and one[0][-1] == "source"
    assert [row[:-1] for row in two] == [row[:-1] for row in one]
    sources = {(x[-1], y[-1]) for x, y in zip(one[1:], two[1:], strict=True)}
    assert sources <= {("api", "cache"), ("", "")} and ("api", "cache") in sources


def test_a_produce_run_again_after_a_crash_counts_each_record_once_whatever_the_cache_says_now(
    redis_url: str, sandbox: Any, tmp_path: Path, pg_dsn: str, clean_default_table: None
) -> None:
    """The first run committed the part's first batch (records 0-249) and died; meanwhile the cache learnt
    records 0-99. The rerun goes on from record 250: nothing counted twice, nothing skipped."""
    from celery import Celery

    from dropq.config.settings import from_env
    from dropq.dropcontact.identities import identity_key
    from dropq.dropcontact.records import normalize_record
    from dropq.workers.jobs.batch import SegmentCommit
    from dropq.workers.jobs.options import JobOptions
    from dropq.workers.pipeline.produce import produce_part
    from dropq.workers.runtime import build_runtime

    rt = build_runtime(from_env(worker_env(redis_url, sandbox, tmp_path, DROPQ_CACHE_URL=pg_dsn)), Celery("t"))
    assert rt.cache is not None
    contacts = _contacts(500)
    rt.ledger.open("crashed", JobOptions(priority="bulk"), rt.now_ms())
    rt.ledger.register_part("crashed", "0", final=True, end=500)
    first = [{**c, "custom_fields": {"dropq_ref": str(i)}} for i, c in enumerate(contacts[:250])]
    segment = SegmentCommit("crashed", "0/0", "crashed/0/0", first, received=250, rejected=0, duplicates=0,
                            outcomes=[], end=250)  # fmt: skip
    assert rt.batches.commit_segment(segment, ["stream"], rt.now_ms())
    learnt = [(str(identity_key(normalize_record(c))), _answer()) for c in contacts[:100]]
    rt.cache.keep([(rt.cache.key(i, siren=False, language=None), a) for i, a in learnt])

    produce_part(rt, "crashed", "0", 0, contacts)

    status = rt.ledger.read("crashed")
    assert status is not None and status.received == 500 and status.batches == 2, status
    assert status.cached == 0 and rt.ledger.produced_through("crashed") == 500


def test_an_email_asked_with_another_person_s_name_is_another_question(
    cached_deployment: Any, redis_url: str, sandbox: Any
) -> None:
    """info@ for John is not info@ for Jane: Jane's row is asked again; the address alone is answered."""
    app, _ = cached_deployment
    john = {"email": "info@acme.example", "first_name": "John", "last_name": "Smith"}
    _run(app, redis_url, "who-1", [john])
    posted = sandbox.stats()["records_received"]
    jane = _run(app, redis_url, "who-2", [{**john, "first_name": "Jane", "last_name": "Doe"}])
    assert jane.cached == 0 and sandbox.stats()["records_received"] == posted + 1
    alone = _run(app, redis_url, "who-3", [{"email": "info@acme.example"}])
    assert alone.cached == 1 and sandbox.stats()["records_received"] == posted + 1


def test_a_refused_write_says_why_without_the_row(pg_dsn: str, table: str) -> None:
    """A table of another shape refuses the row: the error names the column, never the contact it held."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL(
                "CREATE TABLE {} (key bytea PRIMARY KEY, status text, fetched_at timestamptz, answer text,"
                " owner text NOT NULL)"
            ).format(psycopg.sql.Identifier(table))
        )
    cache = ResultCache(PostgresCacheStore(pg_dsn, table), SECRET, max_age_days=30, not_found_max_age_days=7)
    with pytest.raises(CacheError) as caught:
        _keep(cache, "email:ada@acme.example", _answer(), siren=False, language=None)
    assert "owner" in str(caught.value)
    assert "Ada" not in str(caught.value) and "ada@acme" not in str(caught.value)
