"""Email qualifications in every language and spelling, and the choice of the best address."""

from __future__ import annotations

import pytest

from dropq.dropcontact.qualification import (
    EmailDomain,
    EmailKind,
    EmailResult,
    Qualification,
    best_email,
    parse_emails,
    parse_qualification,
)

K = EmailKind
D = EmailDomain


@pytest.mark.parametrize(
    ("text", "kind", "domain"),
    [
        # new docs, English
        ("nominative@pro", K.NOMINATIVE, D.PRO),
        ("generic@pro", K.GENERIC, D.PRO),
        ("catch-all@pro", K.CATCH_ALL, D.PRO),
        ("Do_Not_Contact@pro", K.DO_NOT_CONTACT, D.PRO),
        ("non_validated@perso", K.NON_VALIDATED, D.PERSO),
        ("invalid@invalid domain", K.INVALID, D.INVALID_DOMAIN),
        ("nominative@school", K.NOMINATIVE, D.SCHOOL),
        ("nominative@disposable", K.NOMINATIVE, D.DISPOSABLE),
        # new docs, French
        ("nominatif@pro", K.NOMINATIVE, D.PRO),
        ("generique@pro", K.GENERIC, D.PRO),
        ("générique@pro", K.GENERIC, D.PRO),
        ("Ne_Pas_Contacter@perso", K.DO_NOT_CONTACT, D.PERSO),
        ("non_validé@pro", K.NON_VALIDATED, D.PRO),
        ("invalide@domaine invalide", K.INVALID, D.INVALID_DOMAIN),
        ("nominatif@jetable", K.NOMINATIVE, D.DISPOSABLE),
        # old docs
        ("catch_all@pro", K.CATCH_ALL, D.PRO),
        ("random@perso", K.RANDOM, D.PERSO),
        ("invalid@invalid", K.INVALID, D.INVALID),
        ("invalid", K.INVALID, D.UNKNOWN),
        # case, spacing and punctuation do not matter
        ("NOMINATIVE@PRO", K.NOMINATIVE, D.PRO),
        ("  nominative@pro  ", K.NOMINATIVE, D.PRO),
        ("Catch All@Pro", K.CATCH_ALL, D.PRO),
        ("do-not-contact@pro", K.DO_NOT_CONTACT, D.PRO),
        ("invalid@INVALID_DOMAIN", K.INVALID, D.INVALID_DOMAIN),
        # unknown halves stay unknown, never an error
        ("", K.UNKNOWN, D.UNKNOWN),
        ("verified@pro", K.UNKNOWN, D.PRO),
        ("nominative@corporate", K.NOMINATIVE, D.UNKNOWN),
        ("invalid domain", K.UNKNOWN, D.INVALID_DOMAIN),
        ("@", K.UNKNOWN, D.UNKNOWN),
    ],
)
def test_qualifications_parse_in_every_language_and_spelling(text: str, kind: EmailKind, domain: EmailDomain) -> None:
    """Both halves match case-, accent- and punctuation-insensitively in FR, EN and the old docs' spelling."""
    parsed = parse_qualification(text)
    assert (parsed.kind, parsed.domain) == (kind, domain)
    assert parsed.raw == text


@pytest.mark.parametrize(
    ("text", "is_usable"),
    [
        ("nominative@pro", True),
        ("catch-all@perso", True),
        ("something@else", True),
        ("Do_Not_Contact@pro", False),
        ("invalid@pro", False),
        ("nominative@disposable", False),
        ("nominative@invalid domain", False),
    ],
)
def test_usable_means_worth_writing_to(text: str, is_usable: bool) -> None:
    """Do-not-contact, invalid addresses and disposable or invalid domains are not usable."""
    assert parse_qualification(text).is_usable is is_usable


def _emails(*pairs: tuple[str, str]) -> list[EmailResult]:
    return [EmailResult(email, parse_qualification(text)) for email, text in pairs]


@pytest.mark.parametrize(
    ("emails", "best"),
    [
        ([], None),
        ([("a@x.com", "generic@pro"), ("b@x.com", "nominative@pro")], "b@x.com"),
        ([("a@gmail.com", "nominatif@perso"), ("b@x.com", "nominatif@pro")], "b@x.com"),
        ([("a@x.com", "catch-all@pro"), ("b@x.com", "generic@pro")], "a@x.com"),
        ([("a@x.com", "nominative@pro"), ("b@x.com", "nominative@pro")], "a@x.com"),
        ([("a@x.com", "Do_Not_Contact@pro"), ("b@x.com", "invalid@pro")], None),
        ([("a@yopmail.com", "nominative@disposable"), ("b@x.com", "non_validated@pro")], "b@x.com"),
        ([("a@x.com", "mystery"), ("b@x.com", "Ne_Pas_Contacter@pro")], "a@x.com"),
    ],
)
def test_best_email_prefers_nominative_pro_and_skips_unusable(emails: list[tuple[str, str]], best: str | None) -> None:
    """The ranking is kind first, then domain, then the API's order; unusable ones are never picked."""
    chosen = best_email(_emails(*emails))
    assert (chosen.email if chosen else None) == best


def test_parse_emails_reads_the_list_and_ignores_other_shapes() -> None:
    """A list of ``{email, qualification}`` becomes typed values; an echoed input string gives nothing."""
    value = [
        {"email": "ada@example.com", "qualification": "nominative@pro"},
        {"email": "contact@example.com"},
        {"qualification": "generic@pro"},
        "not-a-dict",
    ]
    assert parse_emails(value) == [
        EmailResult("ada@example.com", Qualification(K.NOMINATIVE, D.PRO, "nominative@pro")),
        EmailResult("contact@example.com", Qualification(K.UNKNOWN, D.UNKNOWN, "")),
    ]
    assert parse_emails("ada@example.com") == []
    assert parse_emails(None) == []
