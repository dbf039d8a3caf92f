"""The result cache: never pay twice for the same question about the same contact.

A record is answered from the cache when an earlier job asked the API the same
question about the same person, and the answer is young enough:

* *The same person* is the record's identity, as the job's de-duplication sees
  it (``dropcontact.identities.identity_key``): its email, else its LinkedIn
  profile, else its name with the company's domain or name. A record with none
  (a company alone) is never answered from the cache.
* *The same question* also means the same options (``siren``, ``language``),
  and the same kind of question: a record that carries an email asks the API to
  verify that address (and costs a credit whatever is found); a record without
  one asks it to search. The identity's kind is part of the key, so a search is
  only answered by an earlier search, and a verification by an earlier
  verification of that address (never by a search that happened to find it).
* *Young enough*: fetched less than ``DROPQ_CACHE_MAX_AGE_DAYS`` ago (30 days by
  default), ``DROPQ_CACHE_NOT_FOUND_MAX_AGE_DAYS`` for a ``not_found`` (7): the
  API's own data changes, and a person not found today may be found next week.

Only ``enriched`` and ``not_found`` answers are kept: a failure, a record the API
had not processed before ``forceResults``, is never cached.

Keys are keyed digests (HMAC-SHA256 with the deployment's digest secret,
``DROPQ_DIGEST_SECRET``, by default derived from the API key): the store never
holds an identity in clear as a key, and a reader of the store cannot confirm a
guessed name by hashing it. Entries hold the enriched record (personal data,
without the caller's ``custom_fields``), its status and the time it was
fetched; ``forget`` deletes a person's entries (a GDPR erasure request),
``clear`` all of them.

The store is PostgreSQL (``postgresql://...``: a table, created when missing)
or a Redis of its own (``redis://...``, which must evict: the broker's Redis runs
with ``noeviction``, and a cache growing there would stop the broker).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from dropq.errors import WorkerError

__all__ = [
    "Answer",
    "CacheError",
    "CacheStore",
    "ResultCache",
    "Stored",
    "cacheable",
    "question_key",
]

# The statuses worth keeping: real answers of the API.
_CACHED_STATUSES = ("enriched", "not_found")
# Every combination of options a question may have been asked with (``forget`` deletes them all).
_SIRENS = (False, True)
_LANGUAGES = (None, "fr", "en")
_DAY_MS = 24 * 3600 * 1000


class CacheError(WorkerError):
    """The result cache's store could not be read or written (the job goes on without it)."""


@dataclass(frozen=True, slots=True)
class Stored:
    """One entry as the store keeps it: its status, when it was fetched, and the answer as JSON."""

    status: str
    fetched_ms: int
    answer: str


class CacheStore(Protocol):
    """Where entries live, by key (32 bytes)."""

    kind: str

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, Stored]:
        """The entries found among these keys."""

    def put_many(self, entries: Mapping[bytes, Stored], *, max_age_ms: Mapping[str, int]) -> None:
        """Write (or replace) these entries; ``max_age_ms`` by status, for stores that expire by themselves."""

    def delete_many(self, keys: Sequence[bytes]) -> int:
        """Delete these keys; how many were there."""

    def clear(self) -> int:
        """Delete every entry; how many there were."""

    def purge(self, *, found_before_ms: int, not_found_before_ms: int) -> int:
        """Delete entries too old to answer; how many."""

    def check(self) -> str | None:
        """Why this store must not be used (None when it may)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A cached answer: what a record's outcome says when it comes from the cache."""

    status: str
    record: dict[str, Any]
    best_email: str | None
    qualification: str | None
    fetched_ms: int
    # Why a not_found is one (only unusable addresses came back), as the API's answer said it.
    reason: str | None = None
    # The person the record asked about named (``identities.person_of``), "" for none: an email sent with
    # another person's name is another question (info@acme.com for John is not info@acme.com for Jane).
    asked: str = ""

    def answers(self, person: str) -> bool:
        """Whether this answer may answer a record naming ``person`` ("" names nobody: any answer may)."""
        return not person or person == self.asked

    @property
    def fetched_at(self) -> str:
        """When the API gave this answer: ISO 8601 in UTC, to the second."""
        moment = datetime.fromtimestamp(self.fetched_ms / 1000, tz=UTC).replace(microsecond=0)
        return moment.isoformat().replace("+00:00", "Z")

    def to_json(self) -> str:
        """The stored form (status and time are kept beside it)."""
        return json.dumps(
            {"r": self.record, "b": self.best_email, "q": self.qualification, "w": self.reason, "p": self.asked},
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_stored(cls, stored: Stored) -> Answer:
        """Read back what ``to_json`` wrote."""
        raw = json.loads(stored.answer)
        return cls(
            stored.status, dict(raw["r"]), raw.get("b"), raw.get("q"), stored.fetched_ms, raw.get("w"), raw.get("p", "")
        )


def question_key(secret: bytes, identity: str, *, siren: bool, language: str | None) -> bytes:
    """The keyed digest naming a question: the identity (with its kind) and the options that change the answer.

    Also the name of the question's claim while a batch asks it (``jobs.inflight``), which a worker frees
    even when its own cache could not be opened.
    """
    text = f"dropq result cache v1\x00{identity}\x00siren={int(siren)}\x00language={language or ''}"
    return hmac.new(secret, text.encode(), hashlib.sha256).digest()


def cacheable(outcome: Mapping[str, Any]) -> bool:
    """Whether an outcome is a real answer of the API, worth keeping."""
    return outcome.get("status") in _CACHED_STATUSES and isinstance(outcome.get("record"), Mapping)


class ResultCache:
    """Looks up, keeps and forgets answers by identity.

    Args:
        store: where the entries live.
        secret: the key of the digests (``Runtime.digest_key``).
        max_age_days: how old an ``enriched`` answer may be and still answer.
        not_found_max_age_days: the same for a ``not_found``.
    """

    def __init__(self, store: CacheStore, secret: bytes, *, max_age_days: float, not_found_max_age_days: float) -> None:
        self.store = store
        self._secret = secret
        self._max_age_ms = {
            "enriched": int(max_age_days * _DAY_MS),
            "not_found": int(not_found_max_age_days * _DAY_MS),
        }

    @property
    def kind(self) -> str:
        """``postgresql`` or ``redis``."""
        return self.store.kind

    def key(self, identity: str, *, siren: bool, language: str | None) -> bytes:
        """The digest naming a question (``question_key`` with this cache's secret)."""
        return question_key(self._secret, identity, siren=siren, language=language)

    def lookup(
        self, identities: Sequence[str], *, siren: bool, language: str | None, now_ms: int
    ) -> list[Answer | None]:
        """For each identity, its answer young enough to use, or None.

        Raises:
            CacheError: the store could not be read.
        """
        return self.answers([self.key(i, siren=siren, language=language) for i in identities], now_ms=now_ms)

    def answers(self, wanted: Sequence[bytes], *, now_ms: int) -> list[Answer | None]:
        """For each key (``key``), its answer young enough to use, or None.

        Raises:
            CacheError: the store could not be read.
        """
        if not wanted:
            return []
        found = self.store.get_many(list(dict.fromkeys(wanted)))
        answers: list[Answer | None] = []
        for key in wanted:
            stored = found.get(key)
            fresh = stored is not None and now_ms - stored.fetched_ms < self._max_age_ms.get(stored.status, -1)
            answers.append(_read(stored) if fresh and stored is not None else None)
        return answers

    def keep(self, entries: Iterable[tuple[bytes, Answer]]) -> int:
        """Write these answers under their keys (``key``); how many were written.

        Raises:
            CacheError: the store could not be written.
        """
        stored = {
            key: Stored(a.status, a.fetched_ms, a.to_json()) for key, a in entries if a.status in _CACHED_STATUSES
        }
        if stored:
            self.store.put_many(stored, max_age_ms=self._max_age_ms)
        return len(stored)

    def forget(self, identities: Iterable[str]) -> int:
        """Delete every entry of these identities, whatever the options they were asked with; how many.

        Raises:
            CacheError: the store could not be written.
        """
        doomed = [
            self.key(identity, siren=siren, language=language)
            for identity in identities
            for siren in _SIRENS
            for language in _LANGUAGES
        ]
        return self.store.delete_many(doomed) if doomed else 0

    def purge(self, now_ms: int) -> int:
        """Delete the entries too old to answer (stores that do not expire them by themselves)."""
        return self.store.purge(
            found_before_ms=now_ms - self._max_age_ms["enriched"],
            not_found_before_ms=now_ms - self._max_age_ms["not_found"],
        )


def _read(stored: Stored) -> Answer | None:
    """The answer an entry holds; None (a miss, asked again) for one this version cannot read."""
    try:
        return Answer.from_stored(stored)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
