"""Email qualifications (``nominative@pro``, ``nominatif@pro``, ``catch-all@perso``, ...) as typed values.

The API writes a qualification as ``<kind>@<domain>``, localized by the
request's ``language`` and spelled differently by the old docs (``catch_all``)
and the new ones (``catch-all``, ``Ne_Pas_Contacter``, ``domaine invalide``).
Both halves are matched case-, accent- and punctuation-insensitively against
every known spelling; anything else parses to ``UNKNOWN`` and keeps its raw
text, never an error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from dropq.dropcontact.identities import strip_accents

__all__ = [
    "EmailKind",
    "EmailDomain",
    "Qualification",
    "EmailResult",
    "parse_qualification",
    "parse_emails",
    "best_email",
]


class EmailKind(Enum):
    """What the local part of an address is."""

    NOMINATIVE = "nominative"
    GENERIC = "generic"
    CATCH_ALL = "catch_all"
    DO_NOT_CONTACT = "do_not_contact"
    NON_VALIDATED = "non_validated"
    INVALID = "invalid"
    RANDOM = "random"
    UNKNOWN = "unknown"


class EmailDomain(Enum):
    """What kind of domain an address is on."""

    PRO = "pro"
    PERSO = "perso"
    SCHOOL = "school"
    DISPOSABLE = "disposable"
    INVALID_DOMAIN = "invalid_domain"
    INVALID = "invalid"
    UNKNOWN = "unknown"


# Spellings after _fold() (accents, case, spaces, '-' and '_' removed): FR, EN and old docs.
_KINDS: dict[str, EmailKind] = {
    "nominative": EmailKind.NOMINATIVE,
    "nominatif": EmailKind.NOMINATIVE,
    "generic": EmailKind.GENERIC,
    "generique": EmailKind.GENERIC,
    "catchall": EmailKind.CATCH_ALL,
    "donotcontact": EmailKind.DO_NOT_CONTACT,
    "nepascontacter": EmailKind.DO_NOT_CONTACT,
    "nonvalidated": EmailKind.NON_VALIDATED,
    "nonvalide": EmailKind.NON_VALIDATED,
    "invalid": EmailKind.INVALID,
    "invalide": EmailKind.INVALID,
    "random": EmailKind.RANDOM,
    "aleatoire": EmailKind.RANDOM,
}
_DOMAINS: dict[str, EmailDomain] = {
    "pro": EmailDomain.PRO,
    "professional": EmailDomain.PRO,
    "professionnel": EmailDomain.PRO,
    "perso": EmailDomain.PERSO,
    "personal": EmailDomain.PERSO,
    "personnel": EmailDomain.PERSO,
    "school": EmailDomain.SCHOOL,
    "ecole": EmailDomain.SCHOOL,
    "disposable": EmailDomain.DISPOSABLE,
    "jetable": EmailDomain.DISPOSABLE,
    "invaliddomain": EmailDomain.INVALID_DOMAIN,
    "domaineinvalide": EmailDomain.INVALID_DOMAIN,
    "invalid": EmailDomain.INVALID,
    "invalide": EmailDomain.INVALID,
}

# best_email's order: lower is better; kinds and domains absent here are never chosen.
_KIND_RANK: dict[EmailKind, int] = {
    EmailKind.NOMINATIVE: 0,
    EmailKind.CATCH_ALL: 1,
    EmailKind.GENERIC: 2,
    EmailKind.NON_VALIDATED: 3,
    EmailKind.RANDOM: 4,
    EmailKind.UNKNOWN: 5,
}
_DOMAIN_RANK: dict[EmailDomain, int] = {
    EmailDomain.PRO: 0,
    EmailDomain.SCHOOL: 1,
    EmailDomain.PERSO: 2,
    EmailDomain.UNKNOWN: 3,
}

_SEPARATORS = re.compile(r"[\s_\-.]+")


def _fold(text: str) -> str:
    return _SEPARATORS.sub("", strip_accents(text).casefold())


@dataclass(frozen=True, slots=True)
class Qualification:
    """A parsed qualification: what the address is, on what kind of domain, and the API's raw text."""

    kind: EmailKind
    domain: EmailDomain
    raw: str
    # (kind rank, domain rank) for ``best_email``, None when not usable: computed once (enum hashing is slow).
    rank: tuple[int, int] | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        kind, domain = _KIND_RANK.get(self.kind), _DOMAIN_RANK.get(self.domain)
        object.__setattr__(self, "rank", None if kind is None or domain is None else (kind, domain))

    @property
    def is_usable(self) -> bool:
        """Tell whether an address so qualified is worth writing to at all."""
        return self.rank is not None


@dataclass(frozen=True, slots=True)
class EmailResult:
    """One address the API returned for a record, with its qualification."""

    email: str
    qualification: Qualification


# The API answers with a handful of spellings, on every address of every record: each is parsed once (a
# bounded cache; a Qualification is immutable). Folding them was a third of the sink's CPU.
@functools.lru_cache(maxsize=1024)
def parse_qualification(text: str) -> Qualification:
    """Parse a qualification in any language or spelling the API has used.

    ``invalid`` alone (the old docs' value for a bad address) is a kind with
    an unknown domain; ``invalid domain`` alone is a domain with an unknown kind.

    Args:
        text: the ``qualification`` string, e.g. ``"nominatif@pro"`` or ``"non_validé@domaine invalide"``.

    Returns:
        The typed qualification; unknown halves are ``UNKNOWN``, never an error.
    """
    raw = text if isinstance(text, str) else ""
    kind_text, separator, domain_text = raw.strip().rpartition("@")
    if not separator:
        folded = _fold(domain_text)
        if folded in _KINDS:
            return Qualification(_KINDS[folded], EmailDomain.UNKNOWN, raw)
        return Qualification(EmailKind.UNKNOWN, _DOMAINS.get(folded, EmailDomain.UNKNOWN), raw)
    return Qualification(
        _KINDS.get(_fold(kind_text), EmailKind.UNKNOWN),
        _DOMAINS.get(_fold(domain_text), EmailDomain.UNKNOWN),
        raw,
    )


def parse_emails(value: Any) -> list[EmailResult]:
    """Read an enriched record's ``email`` field (a list of ``{email, qualification}``).

    A plain string (an input echoed back by ``forceResults`` before processing)
    is not a found address and gives nothing, nor do malformed items.

    Args:
        value: the ``email`` value of an enriched record, whatever its shape.

    Returns:
        The addresses in the API's order.
    """
    if not isinstance(value, list):
        return []
    found: list[EmailResult] = []
    for item in value:
        if isinstance(item, dict | Mapping) and isinstance(item.get("email"), str) and item["email"].strip():
            qualification = item.get("qualification")
            found.append(
                EmailResult(
                    item["email"].strip(), parse_qualification(qualification if isinstance(qualification, str) else "")
                )
            )
    return found


def best_email(emails: Iterable[EmailResult]) -> EmailResult | None:
    """Pick the address most worth writing to.

    Kind first (nominative, catch-all, generic, non-validated, random, unknown),
    then domain (pro, school, perso, unknown), then the API's own order.
    Do-not-contact, invalid addresses and disposable or invalid domains are never picked.

    Args:
        emails: the record's addresses.

    Returns:
        The best usable address, or None when there is none.
    """
    best: EmailResult | None = None
    best_rank: tuple[int, int] | None = None
    for item in emails:
        rank = item.qualification.rank
        # Strictly better only: among equals, the API's own order (the first) wins.
        if rank is not None and (best_rank is None or rank < best_rank):
            best, best_rank = item, rank
    return best
