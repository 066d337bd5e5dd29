"""The FastAPI application: ``/health``, ``/openapi.json`` and ``/api/v1``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from api import problems
from api.keys import KeyRing
from api.routes import care, catalogue
from application.platform import Platform

VERSION = "0.1.0"


def create_app(platform: Platform, keys: KeyRing) -> FastAPI:
    """An API over ``platform``, admitting the callers in ``keys``."""
    app = FastAPI(
        title="monetise",
        version=VERSION,
        description=(
            "Customer care and billing for digital service providers. Every "
            "request under /api/v1 needs an API key: `Authorization: Bearer KEY`. "
            "Errors are RFC 9457 problem details."
        ),
    )
    app.state.platform = platform
    app.state.keys = keys
    problems.install(app)
    app.include_router(catalogue.router)
    app.include_router(care.router)

    @app.get("/health", tags=["operations"], summary="Liveness and storage check")
    def health(request: Request) -> dict[str, Any]:
        platform: Platform = request.app.state.platform
        # Reading the catalogue touches the event store: a broken database
        # shows here rather than on the first agent's request.
        platform.catalogue.catalogue()
        return {
            "status": "ok",
            "version": VERSION,
            "database": platform.database.backend,
        }

    return app
