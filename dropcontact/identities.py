"""Who a record is about: the stable key that names its person, for de-duplication and the result cache.

The same person written differently (case, accents, ``https://www.``, a LinkedIn country host, a
trailing slash) gets the same key; a record that names nobody stably (a company alone) gets none.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

__all__ = [
    "identity_key",
    "person_of",
    "looks_like_email",
    "strip_accents",
    "fold_text",
    "normalize_domain",
    "normalize_linkedin",
]

_SPACES = re.compile(r"\s+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*://")


def looks_like_email(value: str) -> bool:
    """Whether ``value`` looks like ``local@domain.tld`` (what the API can verify)."""
    return _EMAIL.match(value) is not None


def strip_accents(text: str) -> str:
    """``text`` decomposed (NFKD) without its combining marks: ``"Zoë"`` -> ``"Zoe"``, ``"ﬁ"`` -> ``"fi"``.

    ASCII text is its own decomposition and has no marks: returned as is, without the per-character
    pass (most names, keys and qualifications are ASCII, and that pass was most of their folding).
    """
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def fold_text(text: str) -> str:
    """Casefolded, accents and repeated spaces dropped: ``"  Zoë  DUPONT"`` -> ``"zoe dupont"``."""
    return _SPACES.sub(" ", strip_accents(text).casefold()).strip()


# Websites repeat (a company's, on each of its people's rows): each is normalised once (a bounded cache).
@functools.lru_cache(maxsize=4096)
def normalize_domain(url: str) -> str:
    """The host of a website, without scheme, ``www.``, port, path or credentials."""
    host = _SCHEME.sub("", url.strip().casefold())
    host = re.split(r"[/?#]", host, maxsplit=1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
    return host.removeprefix("www.").rstrip(".")


def normalize_linkedin(url: str) -> str:
    """A LinkedIn URL without scheme, query or trailing slash, any country host as ``linkedin.com``."""
    text = _SCHEME.sub("", unquote(url).strip().casefold())
    text = re.split(r"[?#]", text, maxsplit=1)[0].rstrip("/")
    host, _, path = text.partition("/")
    # The API rewrites profiles to www.linkedin.com/in/...; country hosts (fr.linkedin.com) are the same profile.
    if host.endswith("linkedin.com"):
        host = "linkedin.com"
    return f"{host}/{path}" if path else host


def person_of(payload: Mapping[str, Any]) -> str:
    """The person a record names, folded (``"ada lovelace"``): first and last name, else full name; "" for none."""
    first, last, full = (payload.get(name) for name in ("first_name", "last_name", "full_name"))
    if isinstance(first, str) and isinstance(last, str) and first.strip() and last.strip():
        return fold_text(f"{first} {last}")
    if isinstance(full, str) and full.strip():
        return fold_text(full)
    return ""


def identity_key(payload: Mapping[str, Any]) -> str | None:
    """Return a stable key naming the person a record is about, for de-duplication.

    In order of preference: the email, casefolded; the LinkedIn profile URL
    without scheme, ``www.``, query or trailing slash; the person's name
    (first and last, or full) with the company's domain, else its name.

    Args:
        payload: a normalised record.

    Returns:
        ``"email:…"``, ``"linkedin:…"`` or ``"name:…"``, or None when the
        record names no person stably (e.g. a company alone).
    """
    email = payload.get("email")
    if isinstance(email, str) and looks_like_email(email.strip()):
        return f"email:{email.strip().casefold()}"
    linkedin = payload.get("linkedin")
    if isinstance(linkedin, str) and "/" in linkedin.strip().rstrip("/"):
        return f"linkedin:{normalize_linkedin(linkedin)}"
    person = person_of(payload)
    if not person:
        return None
    website = payload.get("website")
    if isinstance(website, str) and normalize_domain(website):
        return f"name:{person}@{normalize_domain(website)}"
    company = payload.get("company")
    if isinstance(company, str) and company.strip():
        return f"name:{person}|company:{fold_text(company)}"
    return None
