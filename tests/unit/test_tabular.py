"""Column mapping, contacts from rows, output rows and delimiter detection (pure, no I/O)."""

from __future__ import annotations

import pytest

from dropq.dropcontact.flatten import FLAT_COLUMNS
from dropq.dropcontact.tabular import (
    REGISTRY_COLUMNS,
    ColumnMappingError,
    contact_from_cells,
    contact_from_object,
    detect_delimiter,
    map_columns,
    neutralise_formula,
    output_cells,
    output_columns,
    parse_map_overrides,
    reason_with_lines,
    strip_bom,
)


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("First Name", "first_name"),
        ("first_name", "first_name"),
        ("FIRSTNAME", "first_name"),
        ("Prénom", "first_name"),
        ("Last Name", "last_name"),
        ("E-mail", "email"),
        ("Email Address", "email"),
        ("email", "email"),
        ("Company Website", "website"),
        ("company_website", "website"),
        ("LinkedIn URL", "linkedin"),
        ("Linkedin Profile", "linkedin"),
        ("Company", "company"),
        ("Société", "company"),
        ("Job Title", "job"),
        ("Phone", "phone"),
        ("SIREN", "num_siren"),
        (" Company  LinkedIn URL ", "company_linkedin"),
        ("CRM Id", None),
        ("Notes", None),
        ("url", None),
    ],
)
def test_headers_map_to_api_fields_whatever_their_case_spacing_or_punctuation(header: str, field: str | None) -> None:
    """Common column names map to their API field; unknown ones map to nothing."""
    assert map_columns([header]).fields == (field,)


def test_map_overrides_win_over_common_names_and_can_keep_a_column_out() -> None:
    """--map names a field for a column, or keeps a known column from being sent."""
    overrides = parse_map_overrides(["Boîte=company", "Phone=", "Site=website"])
    mapping = map_columns(["Boîte", "Phone", "Site", "E-mail"], overrides)
    assert mapping.fields == ("company", None, "website", "email")
    assert mapping.kept_columns == ("Phone",)


def test_a_map_override_accepts_a_common_name_for_the_field() -> None:
    """The field side of --map takes the same aliases as headers do."""
    assert parse_map_overrides(["Mail pro=E-mail"]) == {"Mail pro": "email"}


@pytest.mark.parametrize("spec", ["no-equals", "=company", "Col=not_a_field"])
def test_a_bad_map_override_is_refused_with_its_text(spec: str) -> None:
    """A malformed override or an unknown field fails with a message naming the override."""
    with pytest.raises(ColumnMappingError, match="--map"):
        parse_map_overrides([spec])


def test_a_contact_holds_api_fields_only_with_non_empty_trimmed_values() -> None:
    """Unknown columns and empty cells never reach the contact; values are trimmed."""
    mapping = map_columns(["First Name", "CRM Id", "Company", "E-mail", "Notes"])
    contact = contact_from_cells(["  Ada ", "42", "Acme", "  ", "secret note"], mapping)
    assert contact == {"first_name": "Ada", "company": "Acme"}


def test_the_first_non_empty_column_wins_when_two_map_to_one_field() -> None:
    """Two email columns: the first one holding a value is sent."""
    mapping = map_columns(["Email", "E-mail"])
    assert contact_from_cells(["", "b@x.example"], mapping) == {"email": "b@x.example"}
    assert contact_from_cells(["a@x.example", "b@x.example"], mapping) == {"email": "a@x.example"}


def test_a_short_row_reads_as_empty_cells() -> None:
    """Missing trailing cells count as empty."""
    assert contact_from_cells(["Acme"], map_columns(["Company", "Website"])) == {"company": "Acme"}


def test_a_json_object_keeps_its_value_types_and_drops_unknown_keys() -> None:
    """JSON Lines values keep their type for the pipeline's checks; unknown keys are not sent."""
    contact = contact_from_object({"siren": 552032534, "Company": " Acme ", "crm": "7", "custom_fields": {"a": "1"}})
    assert contact == {"num_siren": 552032534, "company": "Acme", "custom_fields": {"a": "1"}}


def test_output_columns_are_input_then_enriched_then_status_and_reason() -> None:
    """The header keeps the input columns first; registry columns only with SIREN."""
    columns = output_columns(["First Name", "CRM Id"], siren=False)
    assert columns[:2] == ["First Name", "CRM Id"]
    assert columns[-2:] == ["status", "reason"]
    assert not set(REGISTRY_COLUMNS) & set(columns)
    assert set(output_columns(["x"], siren=True)) >= set(FLAT_COLUMNS)


def test_an_enriched_column_named_like_an_input_column_is_prefixed() -> None:
    """No output has two columns of one name."""
    columns = output_columns(["email", "Status", "Phone"], siren=False)
    assert "enriched_email" in columns and "enriched_phone" in columns and "dropq_status" in columns
    assert len(columns) == len({c.casefold() for c in columns})


def test_an_output_row_has_the_input_cells_enriched_cells_status_and_reason() -> None:
    """Cells line up with the header, whatever the outcome."""
    header = output_columns(["Company", "Notes"], siren=False)
    outcome = {"status": "enriched", "reason": None, "record": {"email": [{"email": "a@acme.example",
               "qualification": "nominatif@pro"}], "first_name": "Ada"}}  # fmt: skip
    row = dict(zip(header, output_cells(["Acme", "n"], 2, outcome, siren=False), strict=True))
    assert row["Company"] == "Acme" and row["Notes"] == "n"
    assert row["email"] == "a@acme.example" and row["first_name"] == "Ada"
    assert (row["status"], row["reason"]) == ("enriched", "")
    rejected = output_cells(["Acme"], 2, {"status": "rejected", "reason": "line 3: why"}, siren=False)
    assert len(rejected) == len(header) and rejected[-2:] == ["rejected", "line 3: why"]


def test_reasons_name_lines_instead_of_job_indices() -> None:
    """ "record N" in a pipeline reason becomes the line of record N in the file."""
    lines = {7: 9, 3: 5}
    assert reason_with_lines("record 7: duplicate of record 3 (same email)", lines.get) == (
        "line 9: duplicate of line 5 (same email)"
    )
    assert reason_with_lines("record 8: x", lines.get) == "record 8: x"


@pytest.mark.parametrize(
    ("sample", "delimiter"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b;c\n1;2;3\n", ";"),
        ("a\tb\tc\n1\t2\t3\n", "\t"),
        ("a|b\n1|2\n", "|"),
        ('name;note\n"Doe, John";"a, b, c"\n"x, y";z\n', ";"),
        ("\ufeffFirst Name;E-mail\nAda;ada@x.example\n", ";"),
        ("single\nvalue\n", ","),
        ("", ","),
    ],
)
def test_the_delimiter_is_detected_from_a_sample(sample: str, delimiter: str) -> None:
    """The candidate found in the header and as often in the rows wins; commas inside quotes do not count."""
    assert detect_delimiter(sample) == delimiter


def test_a_bom_is_stripped() -> None:
    """Excel's UTF-8 BOM does not stick to the first column's name."""
    assert strip_bom("\ufeffFirst Name") == "First Name"
    assert strip_bom("First Name") == "First Name"


@pytest.mark.parametrize(
    ("cell", "shown"),
    [("=1+1", "'=1+1"), ("+33 1", "'+33 1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
     ("\rx", "'\rx"), ("Ada", "Ada"), ("", ""), ("a=b", "a=b")],
)  # fmt: skip
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_quote(cell: str, shown: str) -> None:
    """OWASP's CSV injection rule: a leading ' before = + - @ tab and CR, nothing else changed."""
    assert neutralise_formula(cell) == shown
