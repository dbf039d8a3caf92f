"""The Celery application: ``celery -A dropq worker`` / ``celery -A dropq flower``.

This is the one module-level singleton of the project. Settings are read once,
here, when a process imports the app; a bad value stops start-up with a
message that names the variable.
"""

from __future__ import annotations

from celery import Celery

from dropq.config.celeryconfig import TASK_MODULES, build_celery_config
from dropq.config.settings import from_env
from dropq.workers import broker, keys, logs, queues, runtime, startup, sweeper
from dropq.workers.metrics import recorder
from dropq.workers.redaction import ContactSafeAMQP

__all__ = ["app", "settings"]

settings = from_env()
keys.use_prefix(settings.key_prefix)

# ContactSafeAMQP: a dropq.enrich message this app sends shows a count of contacts, never the contacts.
app = Celery("dropq", amqp=ContactSafeAMQP)
app.conf.update(build_celery_config(settings))
if settings.effective_broker_url.startswith(broker.REDIS_SCHEMES):
    app.conf.broker_transport = broker.TRANSPORT
app.conf.imports = TASK_MODULES
logs.install(settings)
queues.install(settings, app)
runtime.install(settings, app)
startup.install(settings)
sweeper.install(settings, app)
recorder.install(settings.redis_url)
