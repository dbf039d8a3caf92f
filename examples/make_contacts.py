"""Write ``examples/contacts.csv``, the sample of ``dropq demo``: made-up people, deterministic.

About 300 rows with the headers a CRM export has (``First Name``, ``E-mail``,
``LinkedIn URL``, ``Company Website``...), columns the API does not know
(``CRM Id``, ``Notes``: kept in the output, never sent), some rows that cannot
be enriched (no company, email or LinkedIn; a malformed email), some
duplicates, and French companies with their SIREN.

Run: ``python examples/make_contacts.py`` (it overwrites the file).
"""

from __future__ import annotations

import csv
import random
import unicodedata
from pathlib import Path

# Same seed, same file.
SEED = 2024
VALID_ROWS = 270
INVALID_ROWS = 18
DUPLICATE_ROWS = 14

HEADER = [
    "First Name",
    "Last Name",
    "Company",
    "Company Website",
    "E-mail",
    "LinkedIn URL",
    "Job Title",
    "Phone",
    "SIREN",
    "CRM Id",
    "Notes",
]
FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Edsger",
    "Élodie",
    "Hélène",
    "François",
    "Zoë",
    "Chloé",
    "Mathis",
    "Inès",
    "Yasmine",
    "Noah",
    "Léa",
    "Camille",
    "Hugo",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Durand",
    "Lefèvre",
    "Moreau",
    "Girard",
    "Fontaine",
    "Rousseau",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Faure",
]
COMPANIES = [
    ("Acme Corp", "acme.example"),
    ("Globex", "globex.example"),
    ("Initech", "initech.example"),
    ("Umbrella Labs", "umbrella.example"),
    ("Hooli", "hooli.example"),
    ("Stark Industries", "stark.example"),
    ("Wayne Enterprises", "wayne.example"),
    ("Soylent", "soylent.example"),
]
# French companies (names made up) with SIREN-shaped numbers, for the registry fields of --siren.
FRENCH = [
    ("Boulangeries Réunies SA", "boulangeries-reunies.example", "552032534"),
    ("Pneumatiques du Centre", "pneus-centre.example", "855200887"),
    ("Cosmétiques de Clichy", "cosmetiques-clichy.example", "632012100"),
]
TITLES = [
    "CEO",
    "CTO",
    "Head of Sales",
    "Marketing Manager",
    "Software Engineer",
    "Directeur commercial",
    "Responsable RH",
    "Account Executive",
    "Data Analyst",
    "",
]


def _ascii(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()


def make_rows(rng: random.Random) -> list[list[str]]:
    """The rows, header excluded."""
    rows: list[list[str]] = []
    for i in range(VALID_ROWS):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        crm = f"CRM-{1000 + i}"
        if i % 45 == 7:
            company, website, siren = FRENCH[(i // 45) % len(FRENCH)]
        else:
            (company, website), siren = rng.choice(COMPANIES), ""
        kind = i % 10
        email = linkedin = ""
        if kind == 3:  # an email alone identifies the person
            company, website = "", ""
            email = f"{_ascii(first)}.{_ascii(last)}{i}@{rng.choice(COMPANIES)[1]}"
        elif kind == 6:  # a LinkedIn profile alone
            company, website = "", ""
            linkedin = f"https://www.linkedin.com/in/{_ascii(first)}-{_ascii(last)}-{i}"
        elif kind == 8:  # company name without website
            website = ""
        phone = f"+33 1 {rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10, 99)}"
        rows.append(
            [
                first,
                f"{last}",
                company,
                website,
                email,
                linkedin,
                rng.choice(TITLES),
                phone if rng.random() < 0.3 else "",
                siren,
                crm,
                "",
            ]
        )
    for j in range(INVALID_ROWS):
        row = [rng.choice(FIRST), rng.choice(LAST), "", "", "", "", rng.choice(TITLES), "", "", f"CRM-X{j}", ""]
        if j % 3 == 0:
            row[4] = f"{_ascii(row[0])}(at)nowhere"  # not an email: rejected before it costs anything
            row[10] = "typo in the email"
        else:
            row[10] = "no company, email or LinkedIn"
        rows.insert(rng.randrange(len(rows)), row)
    for j in range(DUPLICATE_ROWS):
        original = rng.choice([r for r in rows if r[2] or r[4] or r[5]])
        copy = [*original]
        copy[9] = f"CRM-D{j}"
        copy[10] = "imported twice"
        rows.insert(rng.randrange(rows.index(original) + 1, len(rows) + 1), copy)
    return rows


def main() -> None:
    """Write the file beside this script."""
    path = Path(__file__).with_name("contacts.csv")
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(make_rows(random.Random(SEED)))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
