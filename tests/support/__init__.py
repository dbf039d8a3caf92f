"""Test support: real processes (Redis, Celery workers, the sandbox) started per test session."""
