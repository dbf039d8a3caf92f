"""Flattening enriched records into CSV columns."""

from __future__ import annotations

from dropq.dropcontact.flatten import FLAT_COLUMNS, flatten_outcome, flatten_record


def test_best_email_comes_first_and_others_follow() -> None:
    """The nominative pro address is the email column; the rest go to other_emails."""
    row = flatten_record(
        {
            "email": [
                {"email": "contact@acme.example", "qualification": "generic@pro"},
                {"email": "ada@acme.example", "qualification": "nominative@pro"},
            ],
            "first_name": "Ada",
            "website": "www.acme.example",
        }
    )
    assert row["email"] == "ada@acme.example"
    assert row["email_qualification"] == "nominative@pro"
    assert row["other_emails"] == "contact@acme.example"
    assert row["website"] == "www.acme.example"


def test_absent_keys_give_empty_cells() -> None:
    """Every column is present even when the API found nothing."""
    row = flatten_record({"first_name": "Ada"})
    assert set(row) == set(FLAT_COLUMNS)
    assert row["email"] == "" and row["siren"] == ""


def test_rejected_outcomes_flatten_to_empty_cells() -> None:
    """An outcome without a record gives only empty cells."""
    assert set(flatten_outcome({"status": "rejected", "record": None}).values()) == {""}
