"""The app factory of ``memsvc serve --workers N``: each uvicorn worker process calls it.

A composition root like the CLI (it hands ``consolidation.dispatch.build_service`` to the
app), with settings from the environment (``MEMSVC_*``).
"""

from __future__ import annotations

from fastapi import FastAPI

from api.main import create_app
from consolidation.dispatch import build_service
from memsvc.observability.logs import configure_logging
from memsvc.settings import get_settings

__all__ = ["app"]


def app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log.format)
    return create_app(settings, service_factory=build_service)
