"""Deterministic contact lists for tests and benchmarks: valid rows, invalid rows and duplicates."""

from __future__ import annotations

import random
from typing import Any

FIRST = ["Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger"]
LAST = ["Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Dijkstra"]
COMPANIES = [("Acme", "acme.example"), ("Globex", "globex.example"), ("Initech", "initech.example")]


def make_contacts(n: int, *, invalid_every: int = 0, duplicate_every: int = 0, seed: int = 1) -> list[dict[str, Any]]:
    """``n`` contacts: every ``invalid_every``-th has no identifier, every ``duplicate_every``-th repeats one.

    Returns:
        The rows, with ``custom_fields.crm_id`` = the row's position.
    """
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        if duplicate_every and i and i % duplicate_every == 0:
            earlier = dict(rows[rng.randrange(len(rows))])
            earlier["custom_fields"] = {"crm_id": str(i)}
            if "website" in earlier or "email" in earlier:
                rows.append(earlier)
                continue
        if invalid_every and i % invalid_every == invalid_every - 1:
            rows.append({"first_name": rng.choice(FIRST), "last_name": "Nobody", "custom_fields": {"crm_id": str(i)}})
            continue
        company, domain = COMPANIES[i % len(COMPANIES)]
        rows.append(
            {
                "first_name": rng.choice(FIRST),
                "last_name": f"{rng.choice(LAST)}{i}",
                "company": company,
                "website": domain,
                "custom_fields": {"crm_id": str(i)},
            }
        )
    return rows
