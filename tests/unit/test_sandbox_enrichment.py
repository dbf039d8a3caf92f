"""The sandbox's synthetic enrichment: deterministic, normalised, and shaped like the API's records."""

from __future__ import annotations

import pytest

from dropq.dropcontact.sandbox.enrichment import EnrichOptions, domain_of_website, enrich_record, normalize_name

PERSON = {"first_name": "jean", "last_name": "DUPONT", "website": "https://www.Acme.fr/contact", "job": "Head of Sales"}
ALWAYS_FOUND = EnrichOptions(no_email_probability=0.0)


def test_the_same_record_and_seed_always_give_the_same_result() -> None:
    """Determinism: same input, same seed, same output; another seed may differ."""
    assert enrich_record(PERSON, EnrichOptions(seed=3)) == enrich_record(dict(PERSON), EnrichOptions(seed=3))
    outcomes = {str(enrich_record(PERSON, EnrichOptions(seed=seed)).record) for seed in range(20)}
    assert len(outcomes) > 1


def test_language_changes_only_the_wording() -> None:
    """French and English results hold the same addresses; civility and qualification are translated."""
    french = enrich_record(PERSON, ALWAYS_FOUND).record
    english = enrich_record(PERSON, EnrichOptions(language="en", no_email_probability=0.0)).record
    assert [e["email"] for e in french["email"]] == [e["email"] for e in english["email"]]
    assert (french["civility"], english["civility"]) == ("Monsieur", "Mr")
    assert french["email"][0]["qualification"] in ("nominatif@pro", "catch-all@pro")
    assert english["email"][0]["qualification"] in ("nominative@pro", "catch-all@pro")


def test_names_website_and_job_are_normalised() -> None:
    """Capitalised names, www.domain website, job level and function from the title."""
    record = enrich_record(PERSON, ALWAYS_FOUND).record
    assert (record["first_name"], record["last_name"], record["full_name"]) == ("Jean", "Dupont", "Jean Dupont")
    assert record["website"] == "www.acme.fr"
    assert (record["job_level"], record["job_function"]) == ("Director", "Sales")
    assert record["email"][0]["email"].endswith("@acme.fr")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("jean-pierre", "Jean-Pierre"), ("DE LA FONTAINE", "De la Fontaine"), ("o'neil", "O'Neil"), ("  anne  ", "Anne")],
)
def test_normalize_name_capitalises_like_the_api(raw: str, expected: str) -> None:
    """Each row: a raw name and its capitalised form."""
    assert normalize_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("https://www.Example.com/a?b", "example.com"), ("example.co.uk", "example.co.uk"), ("localhost", None)],
)
def test_domain_of_website_keeps_the_bare_domain(raw: str, expected: str | None) -> None:
    """Each row: a website as typed and the domain the API keeps."""
    assert domain_of_website(raw) == expected


def test_a_full_name_is_split_and_linkedin_urls_are_rewritten() -> None:
    """full_name gives first and last; LinkedIn URLs take the documented www.linkedin.com form."""
    record = enrich_record(
        {
            "full_name": "marie curie",
            "company": "Radium",
            "linkedin": "https://fr.linkedin.com/in/marie-curie/",
            "company_linkedin": "http://linkedin.com/company/radium?trk=x",
        },
        ALWAYS_FOUND,
    ).record
    assert (record["first_name"], record["last_name"], record["civility"]) == ("Marie", "Curie", "Madame")
    assert record["linkedin"] == "www.linkedin.com/in/marie-curie"
    assert record["company_linkedin"] == "www.linkedin.com/company/radium"


def test_no_email_is_found_for_a_share_of_records_and_never_without_a_name() -> None:
    """With no_email_probability 1 nothing is found; a company alone never yields an address."""
    assert not enrich_record(PERSON, EnrichOptions(no_email_probability=1.0)).is_email_found
    company_only = enrich_record({"company": "Acme"}, ALWAYS_FOUND)
    assert "email" not in company_only.record and not company_only.is_email_found
    share = (
        sum(enrich_record(PERSON | {"first_name": f"p{i}"}, EnrichOptions()).is_email_found for i in range(500)) / 500
    )
    assert 0.7 < share < 0.9


@pytest.mark.parametrize(
    ("email", "qualification"),
    [
        ("contact@acme.com", "generic@pro"),
        ("someone@gmail.com", "@perso"),
        ("x@yopmail.com", "@disposable"),
        ("broken", "invalid@invalid domain"),
    ],
)
def test_an_email_given_in_input_is_verified_and_qualified(email: str, qualification: str) -> None:
    """Verification keeps the address and qualifies it; it always counts as a verification."""
    result = enrich_record({"email": email}, EnrichOptions(language="en"))
    assert result.is_verification
    assert result.record["email"][0]["email"] == email
    assert result.record["email"][0]["qualification"].endswith(qualification)


def test_siren_adds_registry_fields_with_a_valid_siren() -> None:
    """The generated SIREN passes the Luhn check and the VAT number is built from it."""
    record = enrich_record({"company": "Acme", "country": "France"}, EnrichOptions(siren=True, seed=11)).record
    digits = record["siren"].replace(" ", "")
    total = sum(
        int(c) if i % 2 == 0 else (2 * int(c) - 9 if 2 * int(c) > 9 else 2 * int(c))
        for i, c in enumerate(reversed(digits))
    )
    assert len(digits) == 9 and total % 10 == 0
    assert record["vat"] == f"FR{(12 + 3 * (int(digits) % 97)) % 97:02d}{digits}"
    assert record["siret"].replace(" ", "").startswith(digits)


def test_custom_fields_come_back_unchanged_and_unknown_keys_are_ignored() -> None:
    """custom_fields are echoed as given; keys the API does not know are dropped."""
    custom = {"id": "42", "note": "été ✓"}
    record = enrich_record({"company": "Acme", "custom_fields": custom, "favourite_colour": "red"}, ALWAYS_FOUND).record
    assert record["custom_fields"] == custom
    assert "favourite_colour" not in record


def test_an_empty_record_comes_back_empty() -> None:
    """Nothing in, nothing found: only populated keys are present."""
    result = enrich_record({}, EnrichOptions())
    assert (result.record, result.is_email_found, result.is_verification) == ({}, False, False)
