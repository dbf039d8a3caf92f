"""The destination file's rules for the postgres and http types, checked without a network."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dropq.config.destinations import (
    DEFAULT_HTTP_TIMEOUT_S,
    DEFAULT_TABLE,
    DestinationConfigError,
    load_destinations,
)

_DSN = "postgresql://dropq:s3cret-pw@db.example.com/crm"


def _load(tmp_path: Path, entry: str, environ: dict[str, str] | None = None) -> object:
    file = tmp_path / "destinations.toml"
    file.write_text(f'default = ["d"]\n\n[destinations.d]\n{entry}\n')
    return load_destinations(file, environ or {}).destinations["d"]


@pytest.mark.parametrize("table", ["outcomes", "_t1", "crm.dropq_outcomes", "Schema_2.T"])
def test_a_plain_or_schema_qualified_table_name_is_accepted(tmp_path: Path, table: str) -> None:
    """Identifiers of letters, digits and underscores, with at most one schema prefix, load."""
    entry = _load(tmp_path, f'type = "postgres"\ndsn = "{_DSN}"\ntable = "{table}"')
    assert entry.options["table"] == table  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "table", ["", "1abc", "a.b.c", "t; DROP TABLE x", 'a"b', "with space", "a." + "x" * 64, "tëst"]
)
def test_a_table_name_that_is_not_a_plain_identifier_is_refused(tmp_path: Path, table: str) -> None:
    """Anything that would need quoting or could inject SQL fails at load, naming the entry and the rule."""
    with pytest.raises(DestinationConfigError, match=r"destinations\.d\.table must be a plain SQL identifier"):
        _load(tmp_path, f'type = "postgres"\ndsn = "{_DSN}"\ntable = {json.dumps(table)}')


def test_the_table_defaults_to_dropq_outcomes(tmp_path: Path) -> None:
    """An entry without ``table`` writes to the documented default."""
    entry = _load(tmp_path, f'type = "postgres"\ndsn = "{_DSN}"')
    assert entry.options["table"] == DEFAULT_TABLE == "dropq_outcomes"  # type: ignore[attr-defined]


@pytest.mark.parametrize("options", ["", f'dsn = "{_DSN}"\ndsn_env = "PG_DSN"'], ids=["neither", "both"])
def test_a_postgres_entry_needs_exactly_one_of_dsn_and_dsn_env(tmp_path: Path, options: str) -> None:
    """Neither or both of ``dsn`` and ``dsn_env`` is a config error."""
    with pytest.raises(DestinationConfigError, match="exactly one of dsn and dsn_env"):
        _load(tmp_path, f'type = "postgres"\n{options}', {"PG_DSN": _DSN})


def test_dsn_env_reads_the_dsn_from_the_environment_and_repr_hides_it(tmp_path: Path) -> None:
    """The DSN comes from the named variable, lands in ``secrets`` and never in the entry's repr."""
    entry = _load(tmp_path, 'type = "postgres"\ndsn_env = "PG_DSN"', {"PG_DSN": _DSN})
    assert entry.secrets == {"dsn": _DSN}  # type: ignore[attr-defined]
    assert "s3cret-pw" not in repr(entry)


def test_an_unset_dsn_env_variable_is_named_in_the_error(tmp_path: Path) -> None:
    """A ``dsn_env`` naming an unset variable fails at load with the variable's name."""
    with pytest.raises(DestinationConfigError, match="environment variable PG_DSN is not set"):
        _load(tmp_path, 'type = "postgres"\ndsn_env = "PG_DSN"', {})


def test_an_inline_dsn_is_kept_out_of_the_options_and_the_repr(tmp_path: Path) -> None:
    """An inline ``dsn`` moves to ``secrets``, so printing the config shows no password."""
    entry = _load(tmp_path, f'type = "postgres"\ndsn = "{_DSN}"')
    assert "dsn" not in entry.options and entry.secrets["dsn"] == _DSN  # type: ignore[attr-defined]
    assert "s3cret-pw" not in repr(entry)


def test_a_postgres_entry_without_psycopg_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg installed the file fails at load, telling how to install the extra."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(DestinationConfigError, match=r"pip install 'dropq\[postgres\]'"):
        _load(tmp_path, f'type = "postgres"\ndsn = "{_DSN}"')


def test_an_unknown_option_is_refused(tmp_path: Path) -> None:
    """A typo such as ``dns`` fails at load instead of being ignored."""
    with pytest.raises(DestinationConfigError, match="unknown option 'dns'"):
        _load(tmp_path, f'type = "postgres"\ndns = "{_DSN}"')


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/hook", "http://", "file:///etc/passwd"])
def test_an_http_url_needs_the_http_or_https_scheme_and_a_host(tmp_path: Path, url: str) -> None:
    """Only absolute http(s) URLs with a host are accepted."""
    with pytest.raises(DestinationConfigError, match=r"destinations\.d\.url must be an http:// or https:// URL"):
        _load(tmp_path, f'type = "http"\nurl = "{url}"')


def test_an_http_entry_gets_its_defaults(tmp_path: Path) -> None:
    """Without headers or timeout the entry has no headers and the documented timeout."""
    entry = _load(tmp_path, 'type = "http"\nurl = "https://crm.example.com/in"')
    assert entry.options["timeout_s"] == DEFAULT_HTTP_TIMEOUT_S == 10  # type: ignore[attr-defined]
    assert entry.options["headers"] == {} and entry.secrets == {}  # type: ignore[attr-defined]


def test_headers_env_reads_header_values_from_the_environment(tmp_path: Path) -> None:
    """``headers_env`` maps header names to variables whose values become secret headers."""
    entry = _load(
        tmp_path,
        'type = "http"\nurl = "https://crm.example.com/in"\nheaders = { "X-Source" = "dropq" }\n'
        'headers_env = { "Authorization" = "CRM_TOKEN" }',
        {"CRM_TOKEN": "Bearer tok-123456"},
    )
    assert entry.secrets == {"Authorization": "Bearer tok-123456"}  # type: ignore[attr-defined]
    assert entry.options["headers"] == {"X-Source": "dropq"}  # type: ignore[attr-defined]
    assert "tok-123456" not in repr(entry)


def test_an_unset_header_variable_is_named_without_any_value(tmp_path: Path) -> None:
    """A ``headers_env`` variable that is not set fails at load with the header and the variable."""
    with pytest.raises(DestinationConfigError, match=r"headers_env\.Authorization: environment variable CRM_TOKEN"):
        _load(tmp_path, 'type = "http"\nurl = "https://x.example"\nheaders_env = { "Authorization" = "CRM_TOKEN" }')


@pytest.mark.parametrize(
    ("options", "rule"),
    [
        ('headers = { "X-A" = 1 }', "headers must be a table of strings"),
        ('headers = "X-A: 1"', "headers must be a table of strings"),
        ('headers_env = { "X-A" = 3 }', "must name an environment variable"),
        ('headers = { "Bad Name" = "v" }', "not a valid HTTP header name"),
        ('headers = { "X-A" = "v" }\nheaders_env = { "x-a" = "V" }', "in both headers and headers_env"),
        ("timeout_s = 0", "timeout_s must be a positive number"),
        ('timeout_s = "10"', "timeout_s must be a positive number"),
    ],
)
def test_malformed_http_options_are_refused_with_the_rule(tmp_path: Path, options: str, rule: str) -> None:
    """Each malformed option fails at load with a message naming the rule."""
    with pytest.raises(DestinationConfigError, match=rule):
        _load(tmp_path, f'type = "http"\nurl = "https://x.example"\n{options}', {"V": "value"})
