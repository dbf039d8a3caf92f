"""A faithful local emulator of the Dropcontact API, served over real HTTP.

``SandboxServer`` runs it in-process (tests, demos); ``create_app`` gives the
ASGI app to serve elsewhere; ``dropq sandbox`` runs it as a server. Its knobs
are ``SandboxConfig``; ``/_sandbox/stats`` reports what it saw.
"""

from __future__ import annotations

from dropq.dropcontact.sandbox.app import CONTROL_PREFIX, create_app
from dropq.dropcontact.sandbox.config import SandboxConfig, SandboxConfigError
from dropq.dropcontact.sandbox.enrichment import EnrichOptions, enrich_record
from dropq.dropcontact.sandbox.faults import FAULT_HEADER
from dropq.dropcontact.sandbox.server import SandboxServer
from dropq.dropcontact.sandbox.submission import MAX_RECORD_BYTES, MAX_RECORDS_PER_REQUEST

__all__ = [
    "SandboxServer",
    "SandboxConfig",
    "SandboxConfigError",
    "create_app",
    "FAULT_HEADER",
    "CONTROL_PREFIX",
    "MAX_RECORDS_PER_REQUEST",
    "MAX_RECORD_BYTES",
    "EnrichOptions",
    "enrich_record",
]
