"""Who is calling: a bearer token, looked up by its hash, and the roles a route allows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from math import ceil
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Security
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from edge.web.failed_logins import FailedLogins
from gateway.access import hash_token
from gateway.api.context import GatewayContext, context
from gateway.api.errors import ApiError
from gateway.store.records import AccessRole

# Roles that may see names, phones, registrations and the personal fields of events.
PERSONAL_ROLES: frozenset[AccessRole] = frozenset({"registrar", "admin"})
# Roles that see every depot; a depot token sees those it names.
DEPOTS_ALL_ROLES: frozenset[AccessRole] = frozenset({"command", "admin"})

ContextDep = Annotated[GatewayContext, Depends(context)]

_CHALLENGE = {"WWW-Authenticate": "Bearer"}

# auto_error=False: the answer for a missing token is ours (reason code, challenge header).
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <token>")
# Browsers' EventSource cannot set headers, so the dashboard's stream passes the token here.
_query_token = APIKeyQuery(
    name="access_token", auto_error=False, description="the token, for EventSource"
)


QUERY_TOKEN_PATHS = frozenset({"/api/stream"})


@dataclass(frozen=True)
class Caller:
    """The holder of a live token: its name (who, in the audit log), its role and, for a
    depot token, the depots it names (site, node).

    `token_hash` lets a long request (an event stream) ask later whether it is still live.
    """

    name: str
    role: AccessRole
    token_hash: str = field(default="", repr=False)
    depots: frozenset[tuple[str, str]] = frozenset()

    @property
    def sees_personal(self) -> bool:
        """Whether personal fields are shown to this caller (and its reads audited)."""
        return self.role in PERSONAL_ROLES

    def sees_depot(self, site: str, node: str | None) -> bool:
        """Whether this caller may see depot `site/node` (its readings, figures, alarms).

        The one place that decides it: command and admin see every depot, a depot token
        the depots it names (none, if made before tokens named them), other roles none.
        """
        if self.role in DEPOTS_ALL_ROLES:
            return True
        return self.role == "depot" and node is not None and (site, node) in self.depots

    def sees_node(self, site: str, node: str) -> bool:
        """Whether this caller may see node `site/node`'s presence and device faults: a
        depot token only its depots' (a gate's faults tell of its people's flow), other
        roles let into those routes every node."""
        return self.role != "depot" or self.sees_depot(site, node)


def install_failed_logins(app: FastAPI, ctx: GatewayContext) -> FailedLogins:
    """Give `app` its table of wrong tokens per client address, by `ctx`'s config and clock."""
    http = ctx.config.http
    window = timedelta(seconds=http.auth_failure_window_s)
    table = FailedLogins(http.auth_failures_max, window, ctx.clock)
    app.state.failed_logins = table
    return table


def _refuse_guessers(request: Request) -> tuple[FailedLogins, str]:
    """The app's failure table and the caller's address; 429 while that address is blocked."""
    table: FailedLogins = request.app.state.failed_logins
    address = request.client.host if request.client else ""
    wait = table.blocked_for(address)
    if wait is not None:
        seconds = max(1, ceil(wait.total_seconds()))
        raise ApiError(
            429,
            "too-many-failed-logins",
            f"too many wrong tokens from {address}; try again in {seconds} s",
            {"Retry-After": str(seconds)},
        )
    return table, address


def _token_of(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None,
    query_token: str | None,
) -> str:
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    # In a URL a token ends up in access logs: taken only where a browser has no other way.
    if query_token and request.url.path in QUERY_TOKEN_PATHS:
        return query_token
    if "authorization" in request.headers:
        raise ApiError(401, "token-invalid", "Authorization must be 'Bearer <token>'", _CHALLENGE)
    raise ApiError(
        401,
        "token-missing",
        "send Authorization: Bearer <token> (or ?access_token= for an event stream)",
        _CHALLENGE,
    )


def require(*roles: AccessRole) -> Callable[..., Caller]:
    """A FastAPI dependency that lets in a live token of one of `roles` (admin always).

    Args:
        roles: the roles the route serves besides admin.

    Returns:
        The dependency; it answers the Caller, or raises ApiError 401 (no token, or not a
        live one, which counts against the caller's address), 403 (a live token of another
        role) or 429 (the address sent too many wrong tokens lately, whatever it sends now).
    """
    allowed: tuple[AccessRole, ...] = tuple(dict.fromkeys((*roles, "admin")))

    def caller(
        request: Request,
        ctx: ContextDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        query_token: Annotated[str | None, Security(_query_token)],
    ) -> Caller:
        table, address = _refuse_guessers(request)
        token_hash = hash_token(_token_of(request, bearer, query_token))
        token = ctx.store.token(token_hash)
        if token is None:
            table.failed(address)
            raise ApiError(401, "token-invalid", "unknown or revoked token", _CHALLENGE)
        if token.role not in allowed:
            raise ApiError(
                403,
                "role-forbidden",
                f"this needs the role {' or '.join(allowed)}; "
                f"token {token.name!r} has the role {token.role}",
            )
        named = (depot.partition("/") for depot in token.depots)
        depots = frozenset((site, node) for site, _, node in named)
        return Caller(name=token.name, role=token.role, token_hash=token_hash, depots=depots)

    return caller
