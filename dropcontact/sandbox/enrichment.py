"""Synthetic enrichment that looks like the real API's and never changes for a given input and seed.

Pure: no clock, no I/O. Every choice for a record comes from a hash of the
seed and the record's canonical JSON, so the same record always gives the same
result, whatever batch it is in, and ``language`` only changes the wording.

What a record gets (only populated keys are present, like the real API):

- names capitalised (``full_name`` split when first and last are missing, or
  guessed from a ``first.last@`` address); ``civility`` from the input or the
  first name, ``Monsieur``/``Madame`` in French (the default), ``Mr``/``Mrs`` in English;
- ``website`` as ``www.<domain>``, the domain taken from the website, the
  company name or a professional address; ``company`` from the input or the domain;
- ``email``: an address given in input is verified and qualified (1 credit, never
  refunded); otherwise, with names and a domain, an address is built from a
  common pattern, except for a share of records (``no_email_probability``) where
  nothing is found; qualifications are ``<local>@<domain>`` from the documented
  FR/EN lists;
- LinkedIn URLs rewritten to ``www.linkedin.com/in/<slug>`` (documented form),
  sometimes found when none was given; ``job_level``/``job_function`` from the title;
- phones for a share of records (``phone_probability``);
- with ``siren``: the French registry fields, formatted like the docs' example;
- ``custom_fields`` returned unchanged. Unknown keys are ignored (not echoed), and a
  record with no company, email or LinkedIn is not an error: it comes back with
  what could be normalised and no email.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dropq.dropcontact.sandbox import vocabulary as words

__all__ = ["EnrichOptions", "Enrichment", "enrich_record", "canonical_json", "normalize_name", "domain_of_website"]

# 16-bit slices of the record's hash, one per independent choice.
_SLOT_EMAIL_FOUND, _SLOT_PATTERN, _SLOT_FINDER_QUALITY, _SLOT_GENERIC = 0, 1, 2, 3
_SLOT_VERIFY_QUALITY, _SLOT_PHONE, _SLOT_MOBILE, _SLOT_LINKEDIN = 4, 5, 6, 7
_SLOT_SIREN_FOUND, _SLOT_PLACE, _SLOT_NAF = 8, 9, 10
# Share of found addresses that are catch-all rather than nominative.
_CATCH_ALL_SHARE = 0.15
# Share of found addresses that also come with the company's generic address.
_GENERIC_EXTRA_SHARE = 0.25
# Share of records whose LinkedIn profile is found when none was given.
_LINKEDIN_FOUND_SHARE = 0.4
# Share of companies found in the French registry when ``siren`` is on.
_SIREN_FOUND_SHARE = 0.85
# Verification outcomes for a non-generic address: cumulative shares.
_VERIFY_OUTCOMES = ((0.70, "nominative"), (0.82, "catch-all"), (0.90, "non-validated"), (0.97, "invalid"))
_NAME_SEPARATORS = re.compile(r"(\s+|-|')")
_WORD = re.compile(r"[a-z0-9]+")
_LINKEDIN_SLUG = re.compile(r"linkedin\.com/(in|company|pub)/([^/?#\s]+)", re.IGNORECASE)
# Names and titles repeat a lot across a list: memoising their normalisation halves the cost of a batch.
_MEMO_SIZE = 8192


@dataclass(frozen=True, slots=True)
class EnrichOptions:
    """How a batch is enriched: the request's options and the sandbox's knobs."""

    language: str = "fr"
    siren: bool = False
    seed: int = 0
    no_email_probability: float = 0.2
    phone_probability: float = 0.3


@dataclass(frozen=True, slots=True)
class Enrichment:
    """One enriched record and what it costs: found emails are kept, verifications never refunded."""

    record: dict[str, Any]
    is_email_found: bool
    is_verification: bool


def canonical_json(record: object) -> bytes:
    """The record's compact JSON with sorted keys, UTF-8: its identity and its size."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class _Dice:
    """Independent draws in [0, 1) and digits, all read from one hash of the seed and the record."""

    __slots__ = ("_bits",)

    def __init__(self, key: bytes, seed: int) -> None:
        digest = hashlib.blake2b(key, digest_size=32, key=str(seed).encode()).digest()
        self._bits = int.from_bytes(digest, "little")

    def unit(self, slot: int) -> float:
        return ((self._bits >> (16 * slot)) & 0xFFFF) / 65536.0

    def digits(self, offset_bits: int, count: int) -> str:
        return str((self._bits >> offset_bits) % 10**count).zfill(count)


def _text(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    return value.strip() if isinstance(value, str) else ""


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


@lru_cache(maxsize=_MEMO_SIZE)
def normalize_name(raw: str) -> str:
    """Capitalise a person's name like the API: ``jean-pierre DE la fontaine`` -> ``Jean-Pierre De la Fontaine``."""
    out: list[str] = []
    is_first = True
    for part in _NAME_SEPARATORS.split(raw.strip()):
        if not part or _NAME_SEPARATORS.fullmatch(part):
            out.append(" " if part.isspace() else part)
            continue
        low = part.lower()
        out.append(low if not is_first and low in words.NAME_PARTICLES else low[:1].upper() + low[1:])
        is_first = False
    return "".join(out)


def domain_of_website(raw: str) -> str | None:
    """Reduce a website to its bare domain (``https://www.Acme.com/about`` -> ``acme.com``), or None."""
    text = raw.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    for separator in "/?#:":
        text = text.split(separator, 1)[0]
    text = text.removeprefix("www.").strip(".")
    return text if "." in text and " " not in text else None


def _domain_of_company(company: str, country: str) -> str | None:
    tokens = [token for token in _WORD.findall(_fold(company)) if token not in words.COMPANY_SUFFIXES]
    if not tokens:
        return None
    return "".join(tokens) + (".fr" if _fold(country) in ("fr", "france") else ".com")


@lru_cache(maxsize=_MEMO_SIZE)
def _email_slug(name: str) -> str:
    return "".join(ch for ch in _fold(name).replace(" ", "") if ch.isalnum() or ch == "-")


def _qualification(local_kind: str, domain_kind: str, language: str) -> str:
    return f"{words.QUALIFICATION_LOCAL[language][local_kind]}@{words.QUALIFICATION_DOMAIN[language][domain_kind]}"


def _verify(email: str, dice: _Dice) -> tuple[str, str]:
    local, _, domain = email.lower().rpartition("@")
    if not local or "." not in domain or " " in email:
        return "invalid", "invalid"
    if domain in words.DISPOSABLE_DOMAINS:
        domain_kind = "disposable"
    elif domain in words.FREE_MAIL_DOMAINS:
        domain_kind = "perso"
    elif domain.endswith(".edu") or domain.startswith(("univ-", "etu.")):
        domain_kind = "school"
    else:
        domain_kind = "pro"
    if local in words.GENERIC_LOCAL_PARTS:
        return "generic", domain_kind
    draw = dice.unit(_SLOT_VERIFY_QUALITY)
    local_kind = next((kind for bound, kind in _VERIFY_OUTCOMES if draw < bound), "do-not-contact")
    return local_kind, domain_kind


def _pattern(draw: float) -> str:
    total = sum(weight for _, weight in words.EMAIL_PATTERNS)
    point = draw * total
    for pattern, weight in words.EMAIL_PATTERNS:
        point -= weight
        if point < 0:
            return pattern
    return words.EMAIL_PATTERNS[0][0]


def _civility_kind(civility: str, first_name: str) -> str | None:
    folded = _fold(civility).rstrip(".")
    if folded in ("m", "mr", "monsieur", "sir"):
        return "male"
    if folded in ("mme", "mrs", "ms", "madame", "mlle", "miss", "mademoiselle"):
        return "female"
    if not first_name:
        return None
    first = _fold(first_name).split("-")[0].split(" ")[0]
    return "female" if first in words.FEMALE_FIRST_NAMES or first.endswith(("a", "ine", "elle", "ette")) else "male"


@lru_cache(maxsize=_MEMO_SIZE)
def _job_match(title: str, table: tuple[tuple[str, frozenset[str]], ...], default: str) -> str:
    tokens = set(re.findall(r"[a-z0-9-]+", _fold(title)))
    return next((label for label, keys in table if tokens.intersection(keys)), default)


def _linkedin(raw: str, kind: str) -> str | None:
    match = _LINKEDIN_SLUG.search(raw)
    if match is None:
        return None
    return f"www.linkedin.com/{kind}/{match.group(2).rstrip('/')}"


def _luhn_complete(digits: str) -> str:
    """Append the Luhn check digit, as a real SIREN has."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return digits + str((10 - total % 10) % 10)


def _registry(record: Mapping[str, Any], dice: _Dice) -> dict[str, str]:
    given = re.sub(r"\D", "", _text(record, "num_siren") or _text(record, "siret"))[:9]
    if len(given) != 9 and dice.unit(_SLOT_SIREN_FOUND) >= _SIREN_FOUND_SHARE:
        return {}
    siren = given if len(given) == 9 else _luhn_complete(dice.digits(160, 8))
    nic = "000" + dice.digits(200, 2)
    street, zip_code, city = words.REGISTRY_PLACES[int(dice.unit(_SLOT_PLACE) * len(words.REGISTRY_PLACES))]
    naf_code, naf_label = words.NAF_CODES[int(dice.unit(_SLOT_NAF) * len(words.NAF_CODES))]
    employees = 1 + int(dice.digits(208, 4)) % 2000
    return {
        "siren": f"{siren[:3]} {siren[3:6]} {siren[6:]}",
        "siret": f"{siren[:3]} {siren[3:6]} {siren[6:]} {nic}",
        "siret_address": f"{street}, {zip_code} {city}",
        "siret_zip": zip_code,
        "siret_city": city,
        "vat": f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}",
        "nb_employees": str(employees),
        "naf5_code": naf_code,
        "naf5_des": naf_label,
        "company_turnover": str(employees * (50_000 + int(dice.digits(224, 5)))),
        "company_results": str(employees * int(dice.digits(232, 4))),
    }


def enrich_record(record: Mapping[str, Any], options: EnrichOptions, key: bytes | None = None) -> Enrichment:
    """Enrich one input record.

    Args:
        record: the input record as posted.
        options: language, siren and the sandbox's seed and shares.
        key: the record's ``canonical_json`` when the caller has it already.

    Returns:
        The enriched record (only populated keys) and whether it found or verified an email.
    """
    dice = _Dice(key if key is not None else canonical_json(record), options.seed)
    language = options.language
    first, last = normalize_name(_text(record, "first_name")), normalize_name(_text(record, "last_name"))
    full = _text(record, "full_name")
    if full and not (first or last):
        head, _, tail = full.partition(" ")
        first, last = normalize_name(head), normalize_name(tail)
    email_in = _text(record, "email")
    email_local, _, email_domain = email_in.lower().rpartition("@")
    if email_in and not (first or last) and email_local.count(".") == 1:
        head, tail = email_local.split(".")
        first, last = normalize_name(head), normalize_name(tail)
    country = _text(record, "country")
    domain = domain_of_website(_text(record, "website")) or _domain_of_company(_text(record, "company"), country)
    if domain is None and email_domain and email_domain not in words.FREE_MAIL_DOMAINS:
        domain = domain_of_website(email_domain)
    company = " ".join(_text(record, "company").split()) or (
        domain.split(".")[0].replace("-", " ").title() if domain else ""
    )

    emails: list[dict[str, str]] = []
    if email_in:
        emails.append({"email": email_in.lower(), "qualification": _qualification(*_verify(email_in, dice), language)})
    is_findable = bool(first and last and domain) and domain not in words.FREE_MAIL_DOMAINS
    if is_findable and domain and dice.unit(_SLOT_EMAIL_FOUND) >= options.no_email_probability:
        first_slug, last_slug = _email_slug(first), _email_slug(last)
        local = _pattern(dice.unit(_SLOT_PATTERN)).format(f=first_slug, l=last_slug, i=first_slug[:1])
        kind = "catch-all" if dice.unit(_SLOT_FINDER_QUALITY) < _CATCH_ALL_SHARE else "nominative"
        found = f"{local}@{domain}"
        if found != email_in.lower():
            emails.append({"email": found, "qualification": _qualification(kind, "pro", language)})
        if dice.unit(_SLOT_GENERIC) < _GENERIC_EXTRA_SHARE:
            emails.append({"email": f"contact@{domain}", "qualification": _qualification("generic", "pro", language)})

    out: dict[str, Any] = {}
    civility = _civility_kind(_text(record, "civility"), first)
    if civility:
        out["civility"] = words.CIVILITY[language][civility]
    if first:
        out["first_name"] = first
    if last:
        out["last_name"] = last
    if first or last:
        out["full_name"] = f"{first} {last}".strip()
    if emails:
        out["email"] = emails
    phone, mobile = _text(record, "phone"), _text(record, "mobile_phone")
    if not phone and domain and dice.unit(_SLOT_PHONE) < options.phone_probability:
        phone = "+33 1 " + " ".join(dice.digits(96, 8)[i : i + 2] for i in range(0, 8, 2))
        if not mobile and dice.unit(_SLOT_MOBILE) < 0.5:
            mobile = "+33 6 " + " ".join(dice.digits(128, 8)[i : i + 2] for i in range(0, 8, 2))
    if phone:
        out["phone"] = phone
    if mobile:
        out["mobile_phone"] = mobile
    if company:
        out["company"] = company
    if domain:
        out["website"] = f"www.{domain}"
    linkedin = _linkedin(_text(record, "linkedin"), "in")
    if linkedin is None and first and last and dice.unit(_SLOT_LINKEDIN) < _LINKEDIN_FOUND_SHARE:
        linkedin = f"www.linkedin.com/in/{_email_slug(first)}-{_email_slug(last)}-{dice.digits(112, 6)}"
    if linkedin:
        out["linkedin"] = linkedin
    company_linkedin = _linkedin(_text(record, "company_linkedin"), "company")
    if company_linkedin:
        out["company_linkedin"] = company_linkedin
    if options.siren and (domain or company or _text(record, "num_siren") or _text(record, "siret")):
        out.update(_registry(record, dice))
    job = " ".join(_text(record, "job").split())
    if job:
        out["job"] = job
        out["job_level"] = _job_match(job, words.JOB_LEVELS, words.JOB_LEVEL_DEFAULT)
        out["job_function"] = _job_match(job, words.JOB_FUNCTIONS, words.JOB_FUNCTION_DEFAULT)
    for echoed in ("country", "location"):
        if value := _text(record, echoed):
            out[echoed] = value
    if "custom_fields" in record:
        out["custom_fields"] = record["custom_fields"]
    return Enrichment(record=out, is_email_found=bool(emails), is_verification=bool(email_in))
