"""``dropq cache``: forget a contact (a GDPR erasure request), clear the result cache, count its entries."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
import redis

from dropq.cli.checks import RUN_ERROR, USER_ERROR, CliError, settings_or_exit
from dropq.dropcontact.identities import identity_key
from dropq.dropcontact.records import normalize_record
from dropq.workers.cache import CacheError, ResultCache
from dropq.workers.cache.stores import open_cache
from dropq.workers.runtime import digest_key_for

__all__ = ["cache_command", "identities_of"]

# The fields left out, in turn, to find every kind of identity a contact may have been asked under: by
# email, by LinkedIn profile, by name with the company's website, by name with the company's name.
_NARROWER = (("email",), ("email", "linkedin"), ("email", "linkedin", "website"))


def identities_of(contact: Mapping[str, Any]) -> list[str]:
    """Every identity a contact may have been cached under: by its email, its LinkedIn profile, its name.

    A contact given with an email and a name was maybe verified by that email in one job and searched
    by name in another: forgetting it forgets both.
    """
    record = normalize_record(contact)
    found = [identity_key(record)]
    for dropped in _NARROWER:
        found.append(identity_key({k: v for k, v in record.items() if k not in dropped}))
    return list(dict.fromkeys(i for i in found if i))


def _cache() -> ResultCache:
    """The deployment's cache, or a usage error when it has none."""
    settings = settings_or_exit()
    if not settings.cache_url:
        raise CliError("no result cache: DROPQ_CACHE_URL is not set", USER_ERROR)
    state = redis.Redis.from_url(settings.redis_url, decode_responses=True, socket_connect_timeout=5)
    cache = open_cache(settings, state, digest_key_for(settings))
    if cache is None:
        raise CliError("the result cache's store was refused (the log line above says why)", RUN_ERROR)
    return cache


def _contacts_in(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                contact = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CliError(f"{path}: line {line_number}: not JSON ({exc.msg})", USER_ERROR) from exc
            if not isinstance(contact, dict):
                raise CliError(f"{path}: line {line_number}: not a JSON object", USER_ERROR)
            yield contact


@click.group("cache")
def cache_command() -> None:
    """The result cache (DROPQ_CACHE_URL): answers the API gave earlier, by contact, for a limited age."""


@cache_command.command("forget")
@click.option("--email", help="the contact's email")
@click.option("--linkedin", help="the contact's LinkedIn profile URL")
@click.option("--first-name", "first_name")
@click.option("--last-name", "last_name")
@click.option("--full-name", "full_name")
@click.option("--company", help="the company's name")
@click.option("--website", help="the company's website")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON Lines of contacts (API field names) to forget, one per line",
)
def forget_command(path: Path | None, **fields: str | None) -> None:
    """Delete what the cache holds about a contact, whatever job and options asked (a GDPR erasure).

    Give the contact's fields as the jobs sent them: its email, its LinkedIn profile, or its name with
    the company (or website). Each identity they make is forgotten, so the next enrichment pays again.
    """
    contacts = list(_contacts_in(path)) if path else []
    given = {name: value for name, value in fields.items() if value}
    if given:
        contacts.append(given)
    if not contacts:
        raise CliError("name the contact: --email, --linkedin, or a name with --company or --website", USER_ERROR)
    identities: list[str] = []
    for number, contact in enumerate(contacts, start=1):
        found = identities_of(contact)
        if not found:
            what = "the options given" if contact is given else f"contact {number} of {path}"
            raise CliError(
                f"{what} name no person: give an email, a LinkedIn profile, or a first and last (or full) name"
                " with a company or website",
                USER_ERROR,
            )
        identities.extend(found)
    try:
        deleted = _cache().forget(identities)
    except CacheError as exc:
        raise CliError(str(exc), RUN_ERROR) from exc
    click.echo(f"forgot {len(contacts):,} contact(s): {deleted:,} cache entries deleted")


@cache_command.command("clear")
@click.option("--yes", is_flag=True, help="do not ask")
def clear_command(yes: bool) -> None:
    """Delete every entry of the result cache (the next enrichment of every contact pays again)."""
    cache = _cache()
    if not yes:
        click.confirm("delete every entry of the result cache?", abort=True, err=True)
    try:
        deleted = cache.store.clear()
    except CacheError as exc:
        raise CliError(str(exc), RUN_ERROR) from exc
    click.echo(f"{deleted:,} cache entries deleted")


@cache_command.command("purge")
def purge_command() -> None:
    """Delete the entries too old to answer now (workers do it once an hour by themselves)."""
    import time

    try:
        purged = _cache().purge(int(time.time() * 1000))
    except CacheError as exc:
        raise CliError(str(exc), RUN_ERROR) from exc
    click.echo(f"{purged:,} cache entries purged")
