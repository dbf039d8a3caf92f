"""``dropq cache forget``: the identities a contact's fields make, so an erasure misses none of its entries."""

from __future__ import annotations

from dropq.cli.cache import identities_of


def test_a_full_contact_is_forgotten_under_every_identity_a_job_may_have_used() -> None:
    """By email (a verification), by LinkedIn profile, by name with the website, by name with the company."""
    contact = {
        "email": "Ada@Acme.example",
        "linkedin": "https://fr.linkedin.com/in/ada/",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "Acme",
        "website": "https://www.acme.example/",
    }
    assert identities_of(contact) == [
        "email:ada@acme.example",
        "linkedin:linkedin.com/in/ada",
        "name:ada lovelace@acme.example",
        "name:ada lovelace|company:acme",
    ]


def test_fields_that_name_no_person_make_no_identity() -> None:
    """A company alone is never cached, so there is nothing to forget."""
    assert identities_of({"company": "Acme", "website": "acme.example"}) == []
