"""The Celery app, built from :class:`~memsvc.settings.Settings` (the only place one is made).

Redis (``MEMSVC_REDIS_URL``) is the broker; there is no result backend: a job's state is its
SQL row. Tasks are acknowledged late and rejected when their worker dies, so a killed worker's
task runs again; a Redis unacknowledged task comes back after the visibility timeout. The beat
keeps its schedule in memory (interval tasks need no state, and nothing is pickled to disk).
"""

from __future__ import annotations

import threading

from celery import Celery

from memsvc.settings import Settings

__all__ = ["QUEUE", "celery_app", "create_celery"]

QUEUE = "memsvc"

_apps: dict[str, Celery] = {}
_lock = threading.Lock()


def create_celery(settings: Settings) -> Celery:
    """A new Celery app for these settings (workers, beat and the API's producer use it)."""
    if not settings.redis_url:
        raise ValueError("MEMSVC_REDIS_URL is not set: the embedded default needs no Celery")
    config = settings.consolidation
    app = Celery("memsvc", broker=settings.redis_url, include=["consolidation.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": config.visibility_timeout_seconds,
            "socket_connect_timeout": 3,
            "socket_timeout": 10,
        },
        task_annotations={
            "memsvc.consolidate_job": {
                "max_retries": config.max_retries,
                "retry_backoff_max": config.retry_backoff_max_seconds,
            }
        },
        beat_scheduler="celery.beat:Scheduler",
        beat_schedule={
            "scan": {"task": "memsvc.scan", "schedule": config.scan_seconds},
            "decay": {"task": "memsvc.decay", "schedule": config.decay_seconds},
            "deliver-webhooks": {
                "task": "memsvc.deliver_webhooks",
                "schedule": settings.webhooks.poll_seconds,
            },
        },
        worker_hijack_root_logger=False,
        # Tasks rebuild the same settings in every worker process from this JSON.
        memsvc_settings=settings.model_dump_json(),
    )
    return app


def celery_app(settings: Settings) -> Celery:
    """The process's app for these settings, made once (producers call it per enqueue)."""
    key = settings.model_dump_json()
    with _lock:
        if key not in _apps:
            _apps[key] = create_celery(settings)
        return _apps[key]
