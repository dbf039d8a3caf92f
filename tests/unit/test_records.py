"""Records: column aliases, cleaning, the documented rules, custom_fields, size and identity."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dropq.dropcontact.identities import identity_key
from dropq.dropcontact.records import (
    CORRELATION_FIELD,
    MAX_RECORD_BYTES,
    PreparedRecord,
    Rejection,
    RejectionRule,
    canonical_field,
    find_unknown_keys,
    normalize_record,
    prepare_record,
    prepare_records,
    record_size_bytes,
    to_json_bytes,
    validate_record,
)


def _prepared(raw: Any, index: int = 0, correlation_id: str = "job:0") -> PreparedRecord:
    outcome = prepare_record(raw, index=index, correlation_id=correlation_id)
    assert isinstance(outcome, PreparedRecord), outcome
    return outcome


def _rejected(raw: Any, index: int = 0) -> Rejection:
    outcome = prepare_record(raw, index=index, correlation_id="job:0")
    assert isinstance(outcome, Rejection), outcome
    return outcome


@pytest.mark.parametrize(
    ("column", "field"),
    [
        ("first_name", "first_name"),
        ("First Name", "first_name"),
        ("firstname", "first_name"),
        ("FIRST-NAME", "first_name"),
        ("prénom", "first_name"),
        ("Last Name", "last_name"),
        ("surname", "last_name"),
        ("Full Name", "full_name"),
        ("name", "full_name"),
        ("E-mail", "email"),
        ("mail", "email"),
        ("Email Address", "email"),
        ("courriel", "email"),
        ("LinkedIn URL", "linkedin"),
        ("linkedin_url", "linkedin"),
        ("Company Website", "website"),
        ("domain", "website"),
        ("company_name", "company"),
        ("Société", "company"),
        ("siren", "num_siren"),
        ("num_siren", "num_siren"),
        ("SIRET", "siret"),
        ("Company LinkedIn URL", "company_linkedin"),
        ("Job Title", "job"),
        ("Mobile", "mobile_phone"),
        ("Zip Code", "siret_zip"),
        ("customFields", "custom_fields"),
        ("url", None),
        ("Connected On", None),
        ("notes", None),
    ],
)
def test_column_names_map_onto_documented_fields(column: str, field: str | None) -> None:
    """Aliases match whatever the case, spacing, punctuation or accents; unknown columns map to nothing."""
    assert canonical_field(column) == field


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"First Name": "  Ada ", "Last Name": "Lovelace"}, {"first_name": "Ada", "last_name": "Lovelace"}),
        ({"email": "   ", "company": ""}, {}),
        ({"email": None, "company": "Acme"}, {"company": "Acme"}),
        ({"siren": 552100554}, {"num_siren": "552100554"}),
        ({"zip": 75001.0}, {"siret_zip": "75001"}),
        ({"company": float("nan"), "website": "acme.com"}, {"website": "acme.com"}),
        ({"email": "", "E-mail": "ada@example.com"}, {"email": "ada@example.com"}),
        ({"email": "a@x.com", "mail": "b@x.com"}, {"email": "a@x.com"}),
        ({"notes": "vip", "company": "Acme"}, {"company": "Acme"}),
        ({"custom_fields": {}}, {}),
        ({"custom_fields": {"a": None}}, {}),
    ],
)
def test_normalising_trims_drops_empties_and_maps_aliases(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    """Strings are trimmed, empty values (and NaN) dropped, numbers made text; the first non-empty alias wins."""
    assert normalize_record(raw) == expected


def test_unknown_columns_are_kept_out_of_the_payload_but_reported() -> None:
    """A column that matches no field is not sent, and the prepared record names it."""
    record = _prepared({"email": "ada@example.com", "Notes": "met at a fair", "Connected On": "2024"})
    assert "Notes" not in record.payload
    assert record.unknown_keys == ("Notes", "Connected On")
    assert find_unknown_keys({"email": "x", "notes": 1}) == ("notes",)


@pytest.mark.parametrize(
    "raw",
    [
        {"company": "Acme"},
        {"website": "acme.com"},
        {"company_linkedin": "https://www.linkedin.com/company/acme"},
        {"num_siren": "552100554"},
        {"siret": "55210055400013"},
        {"email": "ada@example.com"},
        {"linkedin": "https://www.linkedin.com/in/ada"},
        {"first_name": "Ada", "last_name": "Lovelace", "website": "example.com"},
    ],
)
def test_a_company_identifier_an_email_or_a_linkedin_url_is_enough(raw: dict[str, str]) -> None:
    """Any one of the documented identifiers makes a record valid."""
    assert validate_record(normalize_record(raw), index=0) == []


@pytest.mark.parametrize(
    ("raw", "field", "rule", "message"),
    [
        (
            {"first_name": "Ada", "last_name": "Lovelace"},
            None,
            RejectionRule.MISSING_IDENTIFIER,
            "record 7: needs a company (company, website, company_linkedin, num_siren or siret), "
            "an email or a linkedin URL",
        ),
        (
            {"first_name": "Ada", "Courriel pro": "ada@example.com"},
            None,
            RejectionRule.MISSING_IDENTIFIER,
            "record 7: needs a company (company, website, company_linkedin, num_siren or siret), "
            "an email or a linkedin URL (unrecognised fields: 'Courriel pro')",
        ),
        (
            {"email": "ada at example"},
            "email",
            RejectionRule.INVALID_EMAIL,
            "record 7: email must look like local@domain.tld, got 'ada at example'",
        ),
        (
            {"linkedin": "ada-lovelace"},
            "linkedin",
            RejectionRule.INVALID_LINKEDIN,
            "record 7: linkedin must be a LinkedIn URL, got 'ada-lovelace'",
        ),
        (
            {"company": "Acme", "first_name": ["Ada"]},
            "first_name",
            RejectionRule.NOT_A_STRING,
            "record 7: first_name must be a string, got ['Ada']",
        ),
        (
            {"company": "Acme", "job": True},
            "job",
            RejectionRule.NOT_A_STRING,
            "record 7: job must be a string, got True",
        ),
        (
            {"company": "Acme", "custom_fields": {"x": {"nested": 1}}},
            "custom_fields['x']",
            RejectionRule.CUSTOM_FIELD_NOT_A_STRING,
            "record 7: custom_fields['x'] must be a string, got {'nested': 1}",
        ),
        (
            {"company": "Acme", "custom_fields": {"tags": ["a", "b"]}},
            "custom_fields['tags']",
            RejectionRule.CUSTOM_FIELD_NOT_A_STRING,
            "record 7: custom_fields['tags'] must be a string, got ['a', 'b']",
        ),
        (
            {"company": "Acme", "custom_fields": "crm-42"},
            "custom_fields",
            RejectionRule.CUSTOM_FIELDS_NOT_AN_OBJECT,
            "record 7: custom_fields must be an object of strings, got 'crm-42'",
        ),
    ],
)
def test_a_rejection_names_the_record_the_field_and_the_rule(
    raw: dict[str, Any], field: str | None, rule: RejectionRule, message: str
) -> None:
    """Each broken rule gives its field, its rule and a message that shows the bad value."""
    rejection = _rejected(raw, index=7)
    assert (rejection.index, rejection.field, rejection.rule, rejection.message) == (7, field, rule, message)


def test_validation_reports_every_problem_at_once() -> None:
    """``validate_record`` lists all problems of a record, not just the first."""
    problems = validate_record({"email": "nope", "job": 3.5, "custom_fields": {"a": []}}, index=1)
    assert {(problem.field, problem.rule) for problem in problems} == {
        ("email", RejectionRule.INVALID_EMAIL),
        ("job", RejectionRule.NOT_A_STRING),
        ("custom_fields['a']", RejectionRule.CUSTOM_FIELD_NOT_A_STRING),
    }


def test_a_row_that_is_not_an_object_is_rejected() -> None:
    """A list or a string where a row should be gets a rejection, not a crash."""
    rejection = _rejected(["ada@example.com"], index=3)
    assert rejection.rule is RejectionRule.NOT_AN_OBJECT
    assert rejection.message == "record 3: must be an object of fields, got list"


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("crm-42", "crm-42"),
        ("  spaced  ", "  spaced  "),
        ("", ""),
        (42, "42"),
        (2.5, "2.5"),
        (True, "true"),
        (False, "false"),
    ],
)
def test_custom_field_values_are_kept_or_coerced_to_strings(value: Any, sent: str) -> None:
    """Strings go unchanged (the API echoes them); numbers and booleans become their text."""
    record = _prepared({"company": "Acme", "custom_fields": {"x": value}})
    assert record.payload["custom_fields"]["x"] == sent


def test_the_correlation_id_rides_in_custom_fields() -> None:
    """Our id is added to the user's custom_fields, replacing any value under our reserved key."""
    record = _prepared(
        {"company": "Acme", "custom_fields": {"crm": "1", CORRELATION_FIELD: "old"}}, correlation_id="j:9"
    )
    assert record.payload["custom_fields"] == {"crm": "1", CORRELATION_FIELD: "j:9"}
    assert record.correlation_id == "j:9"


@pytest.mark.parametrize("correlation_id", ["", None, 3])
def test_a_missing_correlation_id_is_a_bug_in_the_caller(correlation_id: Any) -> None:
    """Preparing without a correlation id raises instead of sending an unjoinable record."""
    with pytest.raises(ValueError, match="correlation_id must be a non-empty string"):
        prepare_record({"company": "Acme"}, index=0, correlation_id=correlation_id)


def test_size_is_the_compact_utf8_json_the_client_sends() -> None:
    """The size counts the payload with custom_fields and correlation id, as compact UTF-8 JSON."""
    record = _prepared({"first_name": "Zoë", "company": "Acme"}, correlation_id="j:1")
    expected = json.dumps(record.payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert record.size_bytes == len(expected) == record_size_bytes(record.payload)
    assert to_json_bytes(record.payload) == expected
    assert b"\\u" not in expected


def _record_of_size(total: int, correlation_id: str = "job:0") -> dict[str, Any]:
    base = {"company": "Acme", "custom_fields": {"note": "", CORRELATION_FIELD: correlation_id}}
    filler = total - record_size_bytes(base)
    return {"company": "Acme", "custom_fields": {"note": "x" * filler}}


def test_a_record_of_exactly_the_limit_is_accepted() -> None:
    """15 kB on the nose, correlation id included, is allowed."""
    record = _prepared(_record_of_size(MAX_RECORD_BYTES))
    assert record.size_bytes == MAX_RECORD_BYTES


def test_a_record_one_byte_over_the_limit_is_rejected_naming_the_largest_field() -> None:
    """One byte over is refused before it costs a request, and the message points at the culprit."""
    rejection = _rejected(_record_of_size(MAX_RECORD_BYTES + 1), index=4)
    assert rejection.rule is RejectionRule.TOO_LARGE
    assert rejection.field == "custom_fields"
    assert rejection.message.startswith(f"record 4: is {MAX_RECORD_BYTES + 1} bytes as JSON")


def test_multibyte_characters_count_as_their_utf8_bytes() -> None:
    """An accented letter is two bytes on the wire, and the limit counts bytes."""
    rejection = _rejected({"company": "Acme", "custom_fields": {"note": "é" * (MAX_RECORD_BYTES // 2)}})
    assert rejection.rule is RejectionRule.TOO_LARGE


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ({"email": " Ada@Example.COM "}, "email:ada@example.com"),
        ({"email": "ada@example.com", "linkedin": "linkedin.com/in/x"}, "email:ada@example.com"),
        ({"linkedin": "https://www.linkedin.com/in/Ada-Lovelace/?utm=1"}, "linkedin:linkedin.com/in/ada-lovelace"),
        ({"linkedin": "http://fr.linkedin.com/in/ada-lovelace"}, "linkedin:linkedin.com/in/ada-lovelace"),
        ({"linkedin": "linkedin.com/in/jos%C3%A9"}, "linkedin:linkedin.com/in/josé"),
        (
            {"first_name": "Ada", "last_name": "Lovelace", "website": "https://www.Example.com/about"},
            "name:ada lovelace@example.com",
        ),
        ({"full_name": "  Ada   Lovelace ", "website": "example.com"}, "name:ada lovelace@example.com"),
        ({"first_name": "Zoë", "last_name": "Durand", "company": "ACME  SAS"}, "name:zoe durand|company:acme sas"),
        ({"first_name": "Ada", "company": "Acme"}, None),
        ({"company": "Acme", "website": "acme.com"}, None),
        ({"num_siren": "552100554"}, None),
    ],
)
def test_identity_key_is_stable_across_spellings(payload: dict[str, str], key: str | None) -> None:
    """Email, then LinkedIn profile, then name with domain or company; None when no person is named."""
    assert identity_key(payload) == key


def test_identity_key_ignores_case_scheme_and_www() -> None:
    """Two spellings of one person give one key."""
    one = _prepared({"First Name": "ada", "Last Name": "LOVELACE", "Company Website": "http://example.com"})
    two = _prepared({"first_name": "Ada", "last_name": "Lovelace", "website": "www.example.com/"})
    assert one.identity_key == two.identity_key is not None


def test_prepare_records_streams_in_order_with_indices() -> None:
    """Rows become prepared records or rejections one by one, indexed from ``start_index``."""
    rows = [{"company": "Acme"}, {"first_name": "x"}, {"email": "a@b.co"}]
    outcomes = list(prepare_records(iter(rows), correlation_id=lambda index: f"job:{index}", start_index=10))
    assert [outcome.index for outcome in outcomes] == [10, 11, 12]
    assert [type(outcome) for outcome in outcomes] == [PreparedRecord, Rejection, PreparedRecord]
    first = outcomes[0]
    assert isinstance(first, PreparedRecord)
    assert first.correlation_id == "job:10"


def test_a_field_longer_than_its_limit_is_rejected_with_its_rule_and_a_short_reason() -> None:
    """A 10,000-character email would pass the shape check and cost a credit: it is rejected, quoted briefly."""
    rejected = prepare_record({"email": "a" * 9_990 + "@b.example", "first_name": "Ada"}, correlation_id="0", index=3)
    assert isinstance(rejected, Rejection)
    assert (rejected.rule, rejected.field) == (RejectionRule.FIELD_TOO_LONG, "email")
    assert rejected.message.startswith("record 3: email must be at most 254 characters, got 10000")
    assert len(rejected.message) < 200


def test_a_reason_names_a_few_unknown_fields_not_thousands() -> None:
    """2,000 unknown keys and no identifier: the reason stays short and says how many more there are."""
    raw = {f"col{i}": "x" for i in range(2000)}
    rejected = prepare_record(raw, correlation_id="0", index=0)
    assert isinstance(rejected, Rejection) and rejected.rule is RejectionRule.MISSING_IDENTIFIER
    assert "and 1995 more" in rejected.message and len(rejected.message) < 400


@pytest.mark.parametrize("text", ["Zoë", "ﬁne", "Ångström", "plain ascii", "", "Łódź", "e\u0301"])
def test_strip_accents_takes_the_ascii_shortcut_without_changing_any_answer(text: str) -> None:
    """The ASCII fast path gives what the full decomposition gives."""
    import unicodedata

    from dropq.dropcontact.identities import strip_accents

    full = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    assert strip_accents(text) == full
