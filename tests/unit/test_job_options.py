"""Job options parsed from dropq.enrich's JSON arguments."""

from __future__ import annotations

import pickle

import pytest

from dropq.workers.jobs.options import CallbackSpec, JobOptions, JobOptionsError, is_valid_job_id, parse_job_options


def test_defaults_are_french_without_siren() -> None:
    """No options: siren off, the API's default language, config destinations, no callback."""
    assert parse_job_options() == JobOptions()


def test_options_round_trip_through_json() -> None:
    """The ledger stores options as JSON and reads them back equal."""
    options = parse_job_options(
        siren=True,
        language="en",
        destinations=["jsonl", "jsonl", "csv"],
        callback={"task": "crm.enriched", "queue": "crm"},
    )
    assert options.destinations == ("jsonl", "csv")
    assert JobOptions.from_json(options.to_json()) == options
    assert options.callback == CallbackSpec(task="crm.enriched", queue="crm")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"siren": "yes"}, "siren must be true or false, got 'yes'"),
        ({"language": "de"}, "language must be 'fr' or 'en', got 'de'"),
        ({"destinations": "jsonl"}, "destinations must be a list of destination names, got 'jsonl'"),
        ({"callback": {"task": "x", "url": "y"}}, "callback must be an object with only task, queue and on_done"),
        ({"callback": {"task": 3}}, "callback.task must be a Celery task name, got 3"),
        ({"callback": {"task": "crm.enriched"}}, "callback.queue must be the queue the calling application's workers"),
        ({"callback": {"on_done": "crm.done"}}, "callback.queue must be the queue the calling application's workers"),
        (
            {"callback": {"task": "dropq.enrich", "queue": "crm"}},
            "callback.task must be a task of the calling application, not dropq's own",
        ),
        (
            {"callback": {"task": "crm.x", "queue": "dropq.sink"}},
            "callback.queue must be a queue of the calling application, not dropq's own",
        ),
    ],
)
def test_bad_options_name_the_argument(kwargs: dict[str, object], message: str) -> None:
    """A bad argument is refused with its name and value."""
    with pytest.raises(JobOptionsError) as caught:
        parse_job_options(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)


def test_job_options_error_survives_pickling() -> None:
    """The error crosses process boundaries intact."""
    error = JobOptionsError("language", "de", "'fr' or 'en'")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


@pytest.mark.parametrize(("job_id", "ok"), [("crm-2026-11-26-001", True), ("a:b.c_d", True), ("", False),
                                            ("has space", False), ("../etc", False), ("x" * 129, False),
                                            ("ok\n", False)])  # fmt: skip
def test_job_ids_are_safe_for_keys_and_files(job_id: str, ok: bool) -> None:
    """Job ids end up in Redis keys and file names."""
    assert is_valid_job_id(job_id) is ok
