"""The stages of a job, as plain functions over a ``Runtime``: produce, submit, poll, sink, deliver, finish.

Each stage returns the follow-up messages to send (``Followup``) instead of
sending them, so the Celery tasks stay thin: they turn JSON arguments into a
stage call and send what it returns.
"""

from __future__ import annotations

from dropq.workers.pipeline.followup import Followup

__all__ = ["Followup"]
