"""The randomized fault soak: seeded schedules of faults run against real parts, and one invariant checker.

- ``plan``: a schedule drawn from its seed (jobs, parts, faults and their times); pure.
- ``schedule``: carries a plan out against a private Redis, the sandbox and real workers.
- ``fleet``: the schedule's processes (persistent Redis, worker slots, ``dropq webhooks``).
- ``calls``: the ``dropq.enrich`` calls, sent as another application would.
- ``receivers``: the http destination's receiver and the Celery callback's queue, as another application's.
- ``observe``: reads what the run left (ledgers, files, streams, receivers, Redis keys).
- ``invariants``: the one checker over what was observed; pure.

``bench/soak.py`` runs many schedules and prints the figures; ``test_soak_small.py`` runs a few.
"""
