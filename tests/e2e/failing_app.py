"""An app factory for the real-server tests: the API, plus one route that fails unexpectedly.

``uvicorn --factory tests.e2e.failing_app:create`` with ``MEMSVC_*`` settings in the environment.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.main import create_app
from consolidation.dispatch import build_service
from memsvc.settings import Settings


class ForcedError(RuntimeError):
    """An error no handler maps: it must become a JSON 500, not a dropped connection."""


def create() -> FastAPI:
    app = create_app(Settings(), service_factory=build_service)

    @app.get("/test/fail")
    def fail() -> None:
        raise ForcedError("forced by the test")

    return app
