"""The Celery configuration keeps the non-negotiable rules."""

from __future__ import annotations

import pytest

from dropq.config.celeryconfig import build_celery_config, caller_routes, max_countdown_s, routes, stage_queues
from dropq.config.settings import SettingsError, from_env


def test_json_only_and_late_acks() -> None:
    """No pickle anywhere, late acks, lost workers requeue, prefetch of one."""
    conf = build_celery_config(from_env({}))
    assert conf["task_serializer"] == conf["result_serializer"] == "json"
    assert conf["accept_content"] == ["json"]
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1


def test_every_stage_has_its_queue() -> None:
    """Each dropq stage routes to its own queue."""
    settings = from_env({})
    assert set(stage_queues(settings)) == {"dropq.produce", "dropq.submit", "dropq.poll", "dropq.sink"}
    for stage in ("produce", "submit", "poll", "sink"):
        assert routes(settings)[f"dropq.{stage}"]["queue"] == f"dropq.{stage}"


def test_a_key_prefix_names_the_queues_and_leaves_the_task_names() -> None:
    """Two deployments on one broker: queues of their own, the same task names (the code is the same)."""
    settings = from_env({"DROPQ_KEY_PREFIX": "staging"})
    conf = build_celery_config(settings)
    assert stage_queues(settings) == ("staging.produce", "staging.submit", "staging.poll", "staging.sink")
    assert set(conf["task_queues"]) == set(stage_queues(settings))
    assert conf["task_default_queue"] == "staging.produce"
    assert conf["task_routes"]["dropq.finish"] == {"queue": "staging.sink"}
    assert caller_routes(settings) == {"dropq.*": {"queue": "staging.produce"}}


@pytest.mark.parametrize("raw", ["dropq:staging", "a.b", "Staging", "-x", "x" * 33, "é"])
def test_a_key_prefix_is_one_safe_word(raw: str) -> None:
    """A ":" would split keys, a "." queue names: such a prefix stops start-up with the rule."""
    with pytest.raises(SettingsError, match="DROPQ_KEY_PREFIX"):
        from_env({"DROPQ_KEY_PREFIX": raw})


def test_visibility_timeout_exceeds_the_longest_countdown() -> None:
    """A countdown task is never redelivered while it legitimately waits, whatever the timeout is set to."""
    for raw in ("3600", "20", "100000"):
        settings = from_env({"DROPQ_VISIBILITY_TIMEOUT_S": raw})
        conf = build_celery_config(settings)
        assert conf["broker_transport_options"]["visibility_timeout"] == int(raw)
        assert max_countdown_s(settings) <= min(600, int(raw) / 4)
    assert max_countdown_s(from_env({})) == 600


def test_task_events_wait_for_a_monitor_unless_asked_for() -> None:
    """Task events are off until Flower enables them; DROPQ_TASK_EVENTS sends them (task-sent too) always."""
    default = build_celery_config(from_env({}))
    always = build_celery_config(from_env({"DROPQ_TASK_EVENTS": "true"}))
    assert not default["worker_send_task_events"] and not default["task_send_sent_event"]
    assert always["worker_send_task_events"] and always["task_send_sent_event"]
