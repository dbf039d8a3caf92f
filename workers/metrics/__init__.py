"""Metrics: what the workers count in Redis, and the Prometheus collector that ``dropq metrics`` serves.

- ``fields``: the counters' field names and histogram buckets (pure), shared by writers and reader.
- ``recorder``: the per-process counter of API requests (batched, flushed once a second) and the
  workers' heartbeats.
- ``broker_depth``: messages ready, scheduled (countdown/ETA) and unacknowledged in a Redis broker.
- ``collector``: ``DropqCollector``, every value computed from Redis at scrape time.

This package's ``__init__`` imports nothing: the job stores import ``fields`` alone.
"""
