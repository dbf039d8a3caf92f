"""Watchdog members name their work unambiguously, whatever the job id or destination name holds."""

from __future__ import annotations

import pytest

from dropq.workers.jobs.watchdog import (
    Watched,
    batch_member,
    delivery_member,
    finish_member,
    parked_member,
    parse_member,
)


@pytest.mark.parametrize("job_id", ["x", "x:x", "crm.2026-11_01:a", "a" * 128])
def test_every_member_reads_back_as_the_work_it_names(job_id: str) -> None:
    """Job ids may hold ':' and '.', never '/' or '|': each member parses back to its ids."""
    assert parse_member(batch_member(f"{job_id}/0/3.1")) == Watched("b", batch_id=f"{job_id}/0/3.1", job_id=job_id)
    unit = f"{job_id}/250/0/others"
    assert parse_member(delivery_member(unit, "csv|2")) == Watched(
        "d", unit_id=unit, destination="csv|2", job_id=job_id
    )
    assert parse_member(finish_member(job_id)) == Watched("f", job_id=job_id)
    assert parse_member(parked_member(job_id, 1000)) == Watched("p", job_id=job_id, offset=1000)


@pytest.mark.parametrize("member", ["", "b|", "d|unit-only", "f|", "p|job|x", "z|anything"])
def test_a_member_this_version_does_not_know_reads_as_none(member: str) -> None:
    """Garbage is dropped by the sweep, never acted on."""
    assert parse_member(member) is None
