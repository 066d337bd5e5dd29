"""The FastAPI application: ``/health``, ``/openapi.json`` and ``/api/v1``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from api import problems
from api.keys import KeyRing
from api.routes import bills, care, catalogue, rerating, tariffs, usage
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
    app.include_router(usage.router)
    app.include_router(tariffs.router)
    app.include_router(bills.router)
    app.include_router(rerating.router)

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

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
    )
    def metrics(request: Request) -> str:
        platform: Platform = request.app.state.platform
        lines = [
            "# HELP monetise_actioned_items Actioned items by status.",
            "# TYPE monetise_actioned_items gauge",
        ]
        counts = platform.views.actioned_items.counts()
        for status in ("awaiting", "sent", "completed", "error", "dead", "cancelled"):
            lines.append(
                f'monetise_actioned_items{{status="{status}"}} {counts.get(status, 0)}'
            )
        lines += [
            "# HELP monetise_projection_lag Notifications a read model is behind.",
            "# TYPE monetise_projection_lag gauge",
        ]
        for name, state in platform.views.status().items():
            lines.append(
                f'monetise_projection_lag{{projection="{name}"}} {state["lag"]}'
            )
        return "\n".join(lines) + "\n"

    return app
