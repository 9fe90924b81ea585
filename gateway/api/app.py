"""The gateway's app factory: the command center's API, one router per resource."""

from __future__ import annotations

from fastapi import FastAPI

from edge.web.security import SecurityHeaders
from gateway.api import (
    errors,
    routes_admin,
    routes_alarms,
    routes_dashboard,
    routes_depot_series,
    routes_depots,
    routes_disinfections,
    routes_faults,
    routes_holds,
    routes_metrics,
    routes_nodes,
    routes_passages,
    routes_registrations,
    routes_reports,
    routes_stock,
    routes_stock_applications,
    routes_stock_cover,
    routes_stock_report,
    routes_stock_scales,
    routes_stock_supply,
)
from gateway.api.auth import install_failed_logins
from gateway.api.context import GatewayContext


def create_app(context: GatewayContext) -> FastAPI:
    """The gateway's HTTP app over `context`.

    Args:
        context: the store, config, alarm book and live feed the routes work on.

    Returns:
        The app; every route but /metrics needs a bearer token. Serve it with
        ConsoleServer and `allowed_hosts=context.config.http.allowed_hosts`, which
        refuses requests for other host names.
    """
    # Swagger UI and ReDoc load from a CDN, which an offline command center cannot
    # reach; the schema itself stays at /openapi.json.
    app = FastAPI(
        title="Gatepost gateway",
        summary="Nodes, passages, holds, alarms and reports for the command center.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = context
    install_failed_logins(app, context)
    app.add_middleware(SecurityHeaders)
    errors.install(app)
    for module in (
        routes_nodes,
        routes_faults,
        routes_depots,
        routes_depot_series,
        routes_passages,
        routes_holds,
        routes_registrations,
        routes_disinfections,
        routes_alarms,
        routes_admin,
        routes_dashboard,
        routes_reports,
        routes_stock,
        routes_stock_applications,
        routes_stock_cover,
        routes_stock_report,
        routes_stock_scales,
        routes_stock_supply,
        routes_metrics,
    ):
        app.include_router(module.router)
    return app
