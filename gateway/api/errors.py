"""How the gateway API answers a request it cannot serve: one JSON body, `reason` + `detail`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """Why the request failed; `reason` is a stable code a client can branch on."""

    reason: str = Field(description="e.g. token-missing, role-forbidden, unknown-alarm")
    detail: str = Field("", description="the same in a sentence, for people")


class FieldProblem(BaseModel):
    """One input the client must correct."""

    field: str = Field(description='where: "query.since", "path.alarm_id", …')
    message: str


class ValidationBody(ErrorBody):
    """422: the inputs that failed, each by name (the values are not echoed back)."""

    fields: list[FieldProblem]


class ApiError(Exception):
    """A refusal a route raises; answered as ErrorBody with `status`.

    Args:
        status: the HTTP status.
        reason: the stable code.
        detail: the sentence.
        headers: extra response headers (WWW-Authenticate on a 401).
    """

    def __init__(
        self, status: int, reason: str, detail: str = "", headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.status = status
        self.reason = reason
        self.detail = detail
        self.headers = dict(headers or {})


_DESCRIPTIONS = {
    401: "No token, or not a live one",
    403: "The token's role may not do this",
    404: "Nothing has that name",
    409: "The action conflicts with the current state",
    429: "Too many wrong tokens from this address lately (too-many-failed-logins)",
}

# Codes FastAPI's own 404/405 and friends get, so every error body has a reason.
_HTTP_REASONS = {404: "not-found", 405: "method-not-allowed", 429: "too-many-streams"}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route: 401/403/429 always, plus the given statuses.

    Args:
        statuses: further error statuses the route can answer (404, 409).

    Returns:
        The mapping for the route decorator's `responses=`.
    """
    answers: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        for status in (401, 403, 429, *statuses)
    }
    answers[422] = {"model": ValidationBody, "description": "Inputs to correct, by name"}
    return answers


def field_error(loc: tuple[str | int, ...], message: str) -> RequestValidationError:
    """A validation error a route finds itself (e.g. a window that ends before it starts)."""
    return RequestValidationError([{"loc": loc, "type": "value_error", "msg": message}])


async def api_error_answer(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    body = ErrorBody(reason=exc.reason, detail=exc.detail)
    return JSONResponse(body.model_dump(), status_code=exc.status, headers=exc.headers)


async def validation_answer(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each failing input; values are left out (they may be tokens or names)."""
    assert isinstance(exc, RequestValidationError)
    problems = [
        FieldProblem(
            field=".".join(str(part) for part in error.get("loc", ())),
            message=str(error.get("msg", "invalid")),
        )
        for error in exc.errors()
    ]
    detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
    body = ValidationBody(reason="invalid-input", detail=detail, fields=problems)
    return JSONResponse(body.model_dump(), status_code=422)


async def unstorable_answer(request: Request, exc: Exception) -> JSONResponse:
    """422 for a value PostgreSQL cannot hold (a NUL character in text: psycopg refuses it
    before sending); the store's transaction was rolled back, so nothing changed."""
    assert isinstance(exc, psycopg.DataError)
    log.warning("refused on %s %s: %s", request.method, request.url.path, exc)
    problem = FieldProblem(field="body", message="a value the database cannot store")
    body = ValidationBody(reason="unstorable-value", detail=f"body: {exc}", fields=[problem])
    return JSONResponse(body.model_dump(), status_code=422)


async def http_answer(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (unknown path, wrong method) in the same shape."""
    assert isinstance(exc, StarletteHTTPException)
    reason = _HTTP_REASONS.get(exc.status_code, f"http-{exc.status_code}")
    body = ErrorBody(reason=reason, detail=str(exc.detail))
    return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=exc.headers)


async def internal_answer(request: Request, exc: Exception) -> JSONResponse:
    """500 without internals; bad input never gets here (it is a 422 above)."""
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    body = ErrorBody(reason="internal", detail="the gateway failed; see its log")
    return JSONResponse(body.model_dump(), status_code=500)


def install(app: FastAPI) -> None:
    """Register every answer above on `app`."""
    app.add_exception_handler(ApiError, api_error_answer)
    app.add_exception_handler(RequestValidationError, validation_answer)
    app.add_exception_handler(StarletteHTTPException, http_answer)
    app.add_exception_handler(psycopg.DataError, unstorable_answer)
    app.add_exception_handler(Exception, internal_answer)
