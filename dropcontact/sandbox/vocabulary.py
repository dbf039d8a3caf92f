"""The words the synthetic enrichment draws from: qualifications, job keywords, registry tables.

Data only. Qualification strings are the documented FR/EN pairs; the rest is
plausible filler, chosen so that results look like the real API's.
"""

from __future__ import annotations

__all__ = [
    "QUALIFICATION_LOCAL",
    "QUALIFICATION_DOMAIN",
    "CIVILITY",
    "FREE_MAIL_DOMAINS",
    "DISPOSABLE_DOMAINS",
    "GENERIC_LOCAL_PARTS",
    "FEMALE_FIRST_NAMES",
    "NAME_PARTICLES",
    "COMPANY_SUFFIXES",
    "EMAIL_PATTERNS",
    "JOB_LEVELS",
    "JOB_LEVEL_DEFAULT",
    "JOB_FUNCTIONS",
    "JOB_FUNCTION_DEFAULT",
    "REGISTRY_PLACES",
    "NAF_CODES",
]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The local part of a qualification ("<local>@<domain>") in each language of the API.
QUALIFICATION_LOCAL: dict[str, dict[str, str]] = {
    "fr": {
        "nominative": "nominatif",
        "catch-all": "catch-all",
        "generic": "generique",
        "do-not-contact": "Ne_Pas_Contacter",
        "non-validated": "non_validé",
        "invalid": "invalide",
    },
    "en": {
        "nominative": "nominative",
        "catch-all": "catch-all",
        "generic": "generic",
        "do-not-contact": "Do_Not_Contact",
        "non-validated": "non_validated",
        "invalid": "invalid",
    },
}
QUALIFICATION_DOMAIN: dict[str, dict[str, str]] = {
    "fr": {"pro": "pro", "perso": "perso", "school": "school", "disposable": "jetable", "invalid": "domaine invalide"},
    "en": {"pro": "pro", "perso": "perso", "school": "school", "disposable": "disposable", "invalid": "invalid domain"},
}
CIVILITY: dict[str, dict[str, str]] = {
    "fr": {"male": "Monsieur", "female": "Madame"},
    "en": {"male": "Mr", "female": "Mrs"},
}

FREE_MAIL_DOMAINS = _words(
    "gmail.com hotmail.com hotmail.fr yahoo.com yahoo.fr outlook.com outlook.fr live.com live.fr icloud.com "
    "orange.fr wanadoo.fr free.fr sfr.fr laposte.net gmx.com gmx.fr aol.com protonmail.com proton.me"
)
DISPOSABLE_DOMAINS = _words("mailinator.com yopmail.com guerrillamail.com 10minutemail.com tempmail.com trashmail.com")
GENERIC_LOCAL_PARTS = _words(
    "contact info hello hi sales support admin bonjour team jobs rh hr office marketing commercial "
    "accueil direction compta billing press presse careers recrutement noreply no-reply"
)
FEMALE_FIRST_NAMES = _words(
    "marie anne sophie julie nathalie isabelle sylvie catherine christine sandrine celine camille "
    "laura lea chloe emma manon sarah claire helene valerie aurelie emilie elodie audrey caroline "
    "virginie stephanie pauline lucie charlotte alice agnes agathe ines jade louise margaux mathilde "
    "mary jennifer linda elizabeth susan jessica karen nancy lisa betty sandra ashley kimberly emily "
    "michelle amanda melissa rebecca laurence dominique beatrice brigitte monique francoise odile"
)
# Lower-case nobiliary particles inside a surname ("de la Fontaine").
NAME_PARTICLES = _words("de du des la le van von der den da di d")
# Legal forms dropped when a domain is guessed from a company name.
COMPANY_SUFFIXES = _words("sas sa sarl sasu eurl inc llc ltd gmbh group groupe corp co")

# (pattern, weight): how companies build addresses; f = first name, l = last name, i = first initial.
EMAIL_PATTERNS: tuple[tuple[str, int], ...] = (
    ("{f}.{l}", 40),
    ("{i}{l}", 15),
    ("{f}{l}", 12),
    ("{i}.{l}", 10),
    ("{f}", 8),
    ("{f}_{l}", 5),
    ("{l}", 5),
    ("{f}-{l}", 5),
)

# First match wins; keywords are whole words of the accent-free, lower-case title.
JOB_LEVELS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "Executive",
        _words(
            "ceo cto cfo coo cmo cio chief founder cofounder co-founder fondateur fondatrice president presidente "
            "gerant gerante owner dg pdg partner associe associee"
        ),
    ),
    ("Director", _words("director directeur directrice head vp")),
    ("Manager", _words("manager responsable lead chef supervisor")),
    ("Senior", _words("senior sr principal expert")),
)
JOB_LEVEL_DEFAULT = "Employee"
JOB_FUNCTIONS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "General Management",
        _words("ceo founder cofounder co-founder fondateur fondatrice president gerant dg pdg owner"),
    ),
    ("Engineering", _words("cto engineer ingenieur developer developpeur software devops tech technical data")),
    ("Finance", _words("cfo finance financial comptable accountant controller controleur daf")),
    ("Marketing", _words("cmo marketing growth brand communication seo content")),
    ("Sales", _words("sales commercial commerciale business account vente ventes bizdev")),
    ("Human Resources", _words("hr rh drh people talent recruiter recruteur recrutement")),
    ("Operations", _words("coo operations logistics logistique supply production")),
    ("Customer Success", _words("customer client support success")),
    ("Product", _words("product produit")),
    ("Legal", _words("legal juridique lawyer avocat counsel")),
)
JOB_FUNCTION_DEFAULT = "Other"

# (street, zip, city) for the French registry fields.
REGISTRY_PLACES: tuple[tuple[str, str, str], ...] = (
    ("12 Rue de la Paix", "75002", "Paris"),
    ("5 Avenue Jean Jaures", "69007", "Lyon"),
    ("8 Quai de la Fosse", "44000", "Nantes"),
    ("21 Rue Sainte-Catherine", "33000", "Bordeaux"),
    ("3 Place du Capitole", "31000", "Toulouse"),
    ("14 Rue Nationale", "59800", "Lille"),
    ("2 Rue Rotland", "67140", "Mittelbergheim"),
    ("40 Boulevard Longchamp", "13001", "Marseille"),
)
NAF_CODES: tuple[tuple[str, str], ...] = (
    ("62.01Z", "Programmation informatique"),
    ("70.22Z", "Conseil pour les affaires et autres conseils de gestion"),
    ("46.90Z", "Commerce de gros non spécialisé"),
    ("73.11Z", "Activités des agences de publicité"),
    ("58.29C", "Edition de logiciels applicatifs"),
    ("01.21Z", "Culture de la vigne"),
    ("47.91B", "Vente à distance sur catalogue spécialisé"),
    ("64.19Z", "Autres intermédiations monétaires"),
)
