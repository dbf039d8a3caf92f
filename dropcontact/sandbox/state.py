"""The account as the sandbox keeps it: credits, batches in flight, webhook targets, the rate window.

Pure: every method takes ``now`` (seconds on a monotonic clock) and reads no
clock, so the arithmetic is tested with explicit times. Not thread-safe: the
runtime holds one lock around every call.

Life of a batch: accepted at ``now`` and charged one credit per record, it is
ready at ``now`` plus a processing time drawn uniformly from the configured
range. When ``now`` passes that point (at the next call of any kind), the batch
is settled once: enriched, serialised, one credit refunded per record where no
email was found (an email given for verification is never refunded), and its
webhook pushes queued. Results can be fetched until ``retention_s`` after
submission; after that, or for an id never issued, the answer is "not ready",
as the API does.
"""

from __future__ import annotations

import heapq
import random
import string
from collections import deque
from dataclasses import dataclass

from dropq.dropcontact.sandbox import envelopes
from dropq.dropcontact.sandbox.config import SandboxConfig
from dropq.dropcontact.sandbox.enrichment import Enrichment, EnrichOptions, enrich_record
from dropq.dropcontact.sandbox.faults import Fault, choose_fault, parse_fault_header
from dropq.dropcontact.sandbox.outbox import WebhookDelivery, WebhookOutbox
from dropq.dropcontact.sandbox.stats import SandboxStats
from dropq.dropcontact.sandbox.submission import Submission
from dropq.dropcontact.sandbox.subscriptions import Subscription, SubscriptionError, edit_subscription, new_subscription
from dropq.dropcontact.sandbox.window import SlidingWindow

__all__ = ["SandboxState", "Answer", "WebhookDelivery"]

# Request ids look like the docs' example: 15 lower-case letters.
_REQUEST_ID_LENGTH = 15
_NEVER = float("-inf")


@dataclass(frozen=True, slots=True)
class Answer:
    """A status and a serialised JSON body."""

    status: int
    body: bytes


class _Batch:
    __slots__ = (
        "data_json",
        "enrichments",
        "expires_at",
        "is_settled",
        "options",
        "ready_at",
        "request_id",
        "submission",
        "submitted_at",
        "webhook_fault",
    )

    def __init__(
        self,
        request_id: str,
        submission: Submission,
        options: EnrichOptions,
        now: float,
        ready_at: float,
        expires_at: float,
    ) -> None:
        self.request_id = request_id
        self.submitted_at = now
        self.submission: Submission | None = submission
        self.options = options
        self.ready_at = ready_at
        self.expires_at = expires_at
        self.webhook_fault: str | None = None
        self.enrichments: list[Enrichment] | None = None
        self.data_json = b"[]"
        self.is_settled = False

    def enrich(self) -> list[Enrichment]:
        if self.enrichments is None:
            sub = self.submission
            records = sub.records if sub else []
            keys = sub.keys if sub else []
            self.enrichments = [enrich_record(r, self.options, key) for r, key in zip(records, keys, strict=True)]
        return self.enrichments


class SandboxState:
    """Everything the sandbox remembers between requests.

    Args:
        config: the knobs.
        now: the current time, which starts a timed 429 storm if ``storm_s`` is set.
        wall_offset_s: add to ``now`` to get seconds since the epoch (webhook ``occurred_at``).
    """

    def __init__(self, config: SandboxConfig, now: float, wall_offset_s: float = 0.0) -> None:
        self.config = config
        self.stats = SandboxStats()
        self.balance = config.credits
        self.default_webhook_url: str | None = None
        self.subscriptions: dict[str, Subscription] = {}
        self._rng = random.Random(config.seed)
        self._wall_offset_s = wall_offset_s
        self._limiter = SlidingWindow(config.rate_window_s)
        self._storm_until = now + config.storm_s if config.storm_s else _NEVER
        self._batches: dict[str, _Batch] = {}
        self._due: list[tuple[float, str]] = []
        self._by_age: deque[str] = deque()
        self._outbox = WebhookOutbox()
        # Pushes taken by the webhook thread and not yet recorded: still pending for the stats.
        self._pushes_in_flight = 0

    # --- configuration and faults -------------------------------------------------------------

    def reconfigure(self, config: SandboxConfig, now: float) -> None:
        """Apply new knobs: a new ``credits`` sets the balance, a new ``storm_s`` starts a storm now."""
        old, self.config = self.config, config
        if config.credits != old.credits:
            self.balance = config.credits
        if config.storm_s != old.storm_s:
            self._storm_until = now + config.storm_s if config.storm_s else _NEVER
        if config.rate_window_s != old.rate_window_s:
            self._limiter = SlidingWindow(config.rate_window_s)

    def choose_fault(self, now: float, header: str | None) -> Fault:
        """The fault for a request: the header's when given, else a draw from the probabilities.

        Raises:
            FaultHeaderError: the header holds an unknown token.
        """
        if header:
            return parse_fault_header(header, self.config.slow_s)
        return choose_fault(self.config, self._rng, is_storming=now < self._storm_until)

    def admit(self, now: float) -> bool:
        """Let a request through the rate limit, or tell that it must be answered 429."""
        if not self._limiter.try_add(now, self.config.rate_limit):
            return False
        self.stats.record_accepted(now)
        return True

    # --- enrichment -------------------------------------------------------------------------------

    def submit(self, submission: Submission, now: float, webhook_fault: str | None = None) -> Answer:
        """Accept a checked batch, or refuse it with 403 when the balance cannot cover every record."""
        self.settle(now)
        request_id = self._new_request_id()
        options = EnrichOptions(
            language=submission.language,
            siren=submission.siren,
            seed=self.config.seed,
            no_email_probability=self.config.no_email_probability,
            phone_probability=self.config.phone_probability,
        )
        if submission.is_credit_check:
            # The old docs' free balance check: answered, kept (its GET works), never charged nor pushed.
            self.stats.credit_checks += 1
            batch = _Batch(request_id, submission, options, now, now, now + self.config.retention_s)
            batch.enrichments, batch.data_json, batch.is_settled = [], b"[{}]", True
        else:
            cost = len(submission.records)
            if self.balance < cost:
                return Answer(403, envelopes.reason_body(envelopes.NOT_ENOUGH_CREDITS))
            self.balance -= cost
            self.stats.credits_charged += cost
            self.stats.record_batch(submission.keys)
            delay_s = self._rng.uniform(self.config.processing_min_s, self.config.processing_max_s)
            batch = _Batch(request_id, submission, options, now, now + delay_s, now + self.config.retention_s)
            batch.webhook_fault = webhook_fault
            heapq.heappush(self._due, (batch.ready_at, request_id))
        self._batches[request_id] = batch
        self._by_age.append(request_id)
        body = {"credits_left": self.balance, "error": False, "request_id": request_id, "success": True}
        return Answer(200, envelopes.dump(body))

    def fetch(self, request_id: str, now: float, *, force: bool = False) -> Answer:
        """Answer a results GET: ready data, partial data with ``force``, or the not-ready envelope."""
        self.settle(now)
        batch = self._batches.get(request_id)
        if batch is None or now >= batch.expires_at:
            self.stats.polls_not_ready += 1
            return Answer(200, envelopes.NOT_READY_BODY)
        tail = b'"error":false,"status":"ready","success":true}' if force else b'"error":false,"success":true}'
        if batch.is_settled:
            self.stats.polls_ready += 1
            return Answer(200, b'{"data":%s,"credits_left":%d,%s' % (batch.data_json, self.balance, tail))
        if not force:
            self.stats.polls_not_ready += 1
            return Answer(200, envelopes.NOT_READY_BODY)
        # forceResults while processing: a prefix proportional to the elapsed time is done, the rest echoes input.
        self.stats.polls_in_progress += 1
        submission = batch.submission
        records = submission.records if submission else []
        total_s = batch.ready_at - batch.submitted_at
        elapsed_s = now - batch.submitted_at
        done = min(len(records), int(len(records) * elapsed_s / total_s)) if total_s > 0 else len(records)
        data = [e.record for e in batch.enrich()[:done]] + records[done:]
        body = {"data": data, "credits_left": self.balance, "error": False, "status": "in_progress", "success": True}
        return Answer(200, envelopes.dump(body))

    def settle(self, now: float) -> None:
        """Finish every batch whose processing time has passed: enrich, refund, queue its pushes; drop expired."""
        due = self._due
        while due and due[0][0] <= now:
            _, request_id = heapq.heappop(due)
            batch = self._batches.get(request_id)
            if batch is not None and not batch.is_settled:
                self._finish(batch)
        while self._by_age:
            batch = self._batches.get(self._by_age[0])
            is_over_cap = len(self._batches) > self.config.max_kept_batches
            if batch is not None and now < batch.expires_at and not is_over_cap:
                break
            self._by_age.popleft()
            if batch is not None:
                del self._batches[batch.request_id]

    def _finish(self, batch: _Batch) -> None:
        enrichments = batch.enrich()
        refund = sum(1 for e in enrichments if not e.is_verification and not e.is_email_found)
        self.balance += refund
        self.stats.credits_refunded += refund
        self.stats.batches_completed += 1
        batch.data_json = envelopes.dump([e.record for e in enrichments])
        batch.is_settled = True
        submission = batch.submission
        # Inputs are no longer needed once the serialised results exist: memory stays flat under load.
        batch.submission, batch.enrichments = None, None
        # Precedence: the request's custom_callback_url, else the default URL, else active subscriptions.
        callback_url = (submission.callback_url if submission else None) or self.default_webhook_url
        if callback_url:
            body = self._webhook_body(batch)
            self._outbox.push_now(callback_url, body, batch.request_id, batch.webhook_fault, env=self._env())
            return
        for subscription in self.subscriptions.values():
            if subscription.active:
                self._outbox.queue_for(
                    subscription.id, self._webhook_body(batch), batch.request_id, batch.webhook_fault
                )

    def _webhook_body(self, batch: _Batch) -> bytes:
        """The old docs' event array, with the results of one batch."""
        return (
            b'[{"id":"%s","version":1,"event_type":"enrich_api_result","occurred_at":%d,"data":{"data":%s,"request_id":"%s"}}]'
            % (
                self._new_hex_id().encode(),
                int(batch.ready_at + self._wall_offset_s),
                batch.data_json,
                batch.request_id.encode(),
            )
        )

    def _env(self) -> tuple[SandboxConfig, random.Random, SandboxStats]:
        return self.config, self._rng, self.stats

    # --- webhook pushes ---------------------------------------------------------------------------

    def take_deliveries(self, now: float) -> list[WebhookDelivery]:
        """Settle due batches and take every push that may go out at ``now``."""
        self.settle(now)
        deliveries = self._outbox.release(now, self.subscriptions, self._env())
        self._pushes_in_flight += sum(delivery.copies for delivery in deliveries)
        return deliveries

    def next_wake_at(self) -> float | None:
        """When the next batch completes or a held-back push may go out; None when nothing is waiting."""
        times = [
            t
            for t in (self._due[0][0] if self._due else None, self._outbox.next_release_at(self.subscriptions))
            if t is not None
        ]
        return min(times, default=None)

    def record_push(self, *, is_delivered: bool) -> None:
        """Count one push attempt and whether the receiver answered 2xx."""
        self._pushes_in_flight = max(0, self._pushes_in_flight - 1)
        self.stats.webhooks_sent += 1
        if not is_delivered:
            self.stats.webhooks_failed += 1

    # --- account endpoints ------------------------------------------------------------------------

    def credits(self, now: float) -> Answer:
        """The free balance endpoint."""
        self.settle(now)
        return Answer(200, envelopes.dump({"credits": self.balance}))

    def set_default_webhook(self, body: object) -> Answer:
        """PUT the account's default webhook URL; a body without ``callback_url`` gets a 422."""
        url = body.get("callback_url") if isinstance(body, dict) else None
        if not isinstance(url, str) or not url:
            kind, msg = (
                ("missing", "Field required") if url is None else ("string_type", "Input should be a valid string")
            )
            return Answer(422, envelopes.validation_body(["body", "callback_url"], msg, kind))
        self.default_webhook_url = url
        return Answer(200, envelopes.dump({"error": False, "success": True, "callback_url": url}))

    def get_default_webhook(self) -> Answer:
        """GET the default webhook URL (null when none is set)."""
        body = {"error": False, "success": True, "callback_url": self.default_webhook_url}
        return Answer(200, envelopes.dump(body))

    def delete_default_webhook(self) -> Answer:
        """DELETE the default webhook URL; 404 when there is none."""
        if self.default_webhook_url is None:
            return Answer(404, envelopes.reason_body(envelopes.NO_DEFAULT_WEBHOOK))
        self.default_webhook_url = None
        return Answer(200, envelopes.detail_body(envelopes.DEFAULT_WEBHOOK_DELETED))

    def create_subscription(self, body: object) -> Answer:
        """Create a subscription (old docs); answers its id."""
        try:
            subscription = new_subscription(self._new_hex_id(), body)
        except SubscriptionError as exc:
            return Answer(422, exc.body)
        self.subscriptions[subscription.id] = subscription
        return Answer(200, envelopes.dump({"error": False, "id": subscription.id, "success": True}))

    def list_subscriptions(self) -> Answer:
        """List the subscriptions."""
        data = [subscription.to_dict() for subscription in self.subscriptions.values()]
        return Answer(200, envelopes.dump({"data": data, "error": False, "success": True}))

    def edit_subscription(self, subscription_id: str, body: object) -> Answer:
        """Edit a subscription's URL, throttle or ``active`` flag; answers the subscription."""
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            return Answer(404, envelopes.detail_body(envelopes.SUBSCRIPTION_NOT_FOUND))
        try:
            edit_subscription(subscription, body)
        except SubscriptionError as exc:
            return Answer(422, exc.body)
        return Answer(200, envelopes.dump({"data": subscription.to_dict(), "error": False, "success": True}))

    def delete_subscription(self, subscription_id: str) -> Answer:
        """Delete a subscription; its held-back pushes are dropped."""
        if self.subscriptions.pop(subscription_id, None) is None:
            return Answer(404, envelopes.detail_body(envelopes.SUBSCRIPTION_NOT_FOUND))
        return Answer(200, envelopes.detail_body(envelopes.SUBSCRIPTION_DELETED))

    # --- inspection -------------------------------------------------------------------------------

    def snapshot(self, now: float) -> dict[str, object]:
        """The stats, with settled batches counted."""
        self.settle(now)
        return self.stats.to_dict(self.balance, len(self._outbox) + self._pushes_in_flight)

    def _new_request_id(self) -> str:
        while True:
            request_id = "".join(self._rng.choices(string.ascii_lowercase, k=_REQUEST_ID_LENGTH))
            if request_id not in self._batches:
                return request_id

    def _new_hex_id(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"
