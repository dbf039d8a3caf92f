"""Parts parked until their turn, against real Redis: parking, the wake-up's answer, unparking."""

from __future__ import annotations

import redis

from dropq.workers import keys
from dropq.workers.jobs.ledger import JobLedger
from dropq.workers.jobs.options import JobOptions
from dropq.workers.jobs.parked import ParkedPart, ParkedParts

TTL_S = 600


def _job(client: redis.Redis) -> tuple[JobLedger, ParkedParts]:
    ledger = JobLedger(client, TTL_S)
    ledger.open("j", JobOptions(), now_ms=1)
    return ledger, ParkedParts(client, TTL_S)


def test_a_part_whose_turn_has_come_is_not_parked(redis_client: redis.Redis) -> None:
    """The first part, or a part right after the produced ones, is produced at once: nothing is stored."""
    ledger, parked = _job(redis_client)
    assert not parked.park("j", 0, ParkedPart("0", [{"first_name": "Ada"}]))
    ledger.mark_part_produced("j", "0", 0, 2)
    assert not parked.park("j", 2, ParkedPart("2", [{"first_name": "Bob"}]))
    assert not redis_client.exists(keys.job_parked_parts_key("j"))


def test_a_part_before_its_turn_is_parked_once_with_its_contacts(redis_client: redis.Redis) -> None:
    """A part whose predecessors are not produced is stored, contacts as given (non-ASCII kept), with a TTL."""
    _, parked = _job(redis_client)
    contacts = [{"first_name": "Zoé", "company": "Ünïcode"}]
    assert parked.park("j", 2, ParkedPart("2", contacts))
    assert parked.load("j", 2) == ParkedPart("2", contacts)
    assert 0 < redis_client.ttl(keys.job_parked_parts_key("j")) <= TTL_S


def test_producing_a_part_names_the_parked_part_whose_turn_came_and_unparks_itself(redis_client: redis.Redis) -> None:
    """Parts 2 and 4 parked: producing 0 wakes 2 only; producing 2 unparks it and wakes 4."""
    ledger, parked = _job(redis_client)
    parked.park("j", 2, ParkedPart("2", [{"first_name": "Bob"}]))
    parked.park("j", 4, ParkedPart("4", [{"first_name": "Cy"}]))
    ledger.mark_part_produced("j", "0", 0, 2)
    assert parked.produced("j", 0) == 2
    ledger.mark_part_produced("j", "2", 2, 4)
    assert parked.produced("j", 2) == 4
    assert parked.load("j", 2) is None
    ledger.mark_part_produced("j", "4", 4, 6)
    assert parked.produced("j", 4) is None
    assert not redis_client.exists(keys.job_parked_parts_key("j"))


def test_a_gap_wakes_nobody(redis_client: redis.Redis) -> None:
    """With records 0-1 never produced, producing part 2 (gone on after the gap) wakes no part: checks do."""
    ledger, parked = _job(redis_client)
    parked.park("j", 4, ParkedPart("4", [{"first_name": "Cy"}]))
    ledger.mark_part_produced("j", "2", 2, 4)
    assert parked.produced("j", 2) is None
    assert parked.load("j", 4) is not None


def test_parked_contacts_count_against_the_deployment_s_capacity_until_produced(redis_client: redis.Redis) -> None:
    """Flow control sees parked parts (stored in Redis, not yet received): parking twice counts once."""
    ledger, parked = _job(redis_client)
    parked.park("j", 2, ParkedPart("2", [{"first_name": "Bob"}, {"first_name": "Cy"}]))
    parked.park("j", 2, ParkedPart("2", [{"first_name": "Bob"}, {"first_name": "Cy"}]))  # a resend
    parked.hold("j", 4, ParkedPart("4", [{"first_name": "Di"}]))
    assert ledger.waiting_contacts() == 3
    ledger.mark_part_produced("j", "0", 0, 2)
    parked.produced("j", 2)
    parked.produced("j", 4)
    assert ledger.waiting_contacts() == 0
