"""Logging: the secret scrubber and the JSON renderer."""

from __future__ import annotations

import io
import json
import logging

import structlog

from dropq.config.settings import from_env
from dropq.workers.logs import REDACTED, SecretScrubber, configure_logging


def test_scrubber_redacts_nested_values() -> None:
    """The key is removed from strings, dicts, lists and exception texts."""
    scrub = SecretScrubber(["tok-123456"])
    event = {
        "event": "x",
        "url": "http://h/?k=tok-123456",
        "headers": {"X-Access-Token": "tok-123456"},
        "items": ["a", "tok-123456"],
        "error": ValueError("bad token tok-123456"),
    }
    out = scrub(None, "info", event)
    assert "tok-123456" not in json.dumps(out, default=str)
    assert out["headers"]["X-Access-Token"] == REDACTED


def test_json_lines_carry_context_and_never_the_key() -> None:
    """A configured process writes JSON lines with bound context and no secret."""
    stream = io.StringIO()
    configure_logging(from_env({"DROPCONTACT_API_KEY": "secret-key-42", "DROPQ_LOG_FORMAT": "json"}), stream=stream)
    try:
        structlog.contextvars.bind_contextvars(job_id="j1")
        structlog.get_logger("t").info("batch_submitted", note="using secret-key-42")
        logging.getLogger("celery.worker").warning("stdlib says secret-key-42")
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["event"] == "batch_submitted" and lines[0]["job_id"] == "j1"
    assert lines[0]["timestamp"].endswith("Z")
    assert "secret-key-42" not in stream.getvalue()
    assert any(line["event"] == f"stdlib says {REDACTED}" for line in lines)


def test_console_lines_scrub_tracebacks_too() -> None:
    """On a terminal renderer, an exception's text is scrubbed as well."""
    stream = io.StringIO()
    configure_logging(from_env({"DROPCONTACT_API_KEY": "secret-key-42", "DROPQ_LOG_FORMAT": "console"}), stream=stream)
    try:
        try:
            raise ValueError("token secret-key-42 refused")
        except ValueError:
            structlog.get_logger("t").exception("call_failed")
    finally:
        structlog.reset_defaults()
    assert "call_failed" in stream.getvalue()
    assert "secret-key-42" not in stream.getvalue()


def test_destination_secrets_are_scrubbed_like_the_api_key(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A DSN read from the destination file's environment variable never shows in a log line."""
    config = tmp_path / "destinations.toml"
    config.write_text('[destinations.pg]\ntype = "postgres"\ndsn_env = "TEST_PG_DSN"\n')
    monkeypatch.setenv("TEST_PG_DSN", "postgresql://app:hunter2-secret@db/crm")
    stream = io.StringIO()
    configure_logging(from_env({"DROPQ_DESTINATIONS": str(config), "DROPQ_LOG_FORMAT": "json"}), stream=stream)
    try:
        structlog.get_logger("t").warning("db_down", dsn="postgresql://app:hunter2-secret@db/crm")
    finally:
        structlog.reset_defaults()
    assert "db_down" in stream.getvalue()
    assert "hunter2-secret" not in stream.getvalue()
