"""How the console API answers a refused action (409), a form with wrong fields (422), and a
request without an on-duty volunteer's session (401, 403)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from edge.gate.console.plain_words import explain
from edge.gate.console.sessions import SessionRefused
from edge.gate.views import Refusal

# The checkpoint's own check of the actor answers as the session check does.
FORBIDDEN = frozenset({"not-on-duty", "supervisor-required"})


class RefusalBody(BaseModel):
    """The checkpoint refused the action; `reason` is a code the page puts into words."""

    reason: str = Field(description="reason code, e.g. unknown-hold, bad-signature")
    detail: str = ""


class FieldProblem(BaseModel):
    """One field the page marks, with the sentence to show next to it in each language."""

    loc: list[str | int]
    msg: str = Field(description="the English sentence (FastAPI's usual key)")
    type: str
    field: str = Field(description='dotted path, e.g. "registration.id_number"; "" = whole form')
    zh: str
    en: str


class ValidationProblems(BaseModel):
    """422 body: FastAPI's usual `detail` list, in plain words and without the inputs."""

    detail: list[FieldProblem]


SESSION_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": RefusalBody, "description": "No volunteer session (session-required)"},
    403: {"model": RefusalBody, "description": "The volunteer is not on duty (not-on-duty)"},
}
ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    **SESSION_RESPONSES,
    409: {"model": RefusalBody, "description": "The checkpoint refused the action"},
    422: {"model": ValidationProblems, "description": "Fields to correct, in plain words"},
}


def problem(field_loc: tuple[str | int, ...], kind: str, message: str) -> dict[str, Any]:
    """A validation error a route raises itself, shaped like pydantic's."""
    return {"loc": field_loc, "type": kind, "msg": message, "input": None}


async def refusal_answer(request: Request, exc: Exception) -> JSONResponse:
    """409 with the refusal's reason code: the action conflicts with the gate's state."""
    assert isinstance(exc, Refusal)
    status = 403 if exc.reason in FORBIDDEN else 409
    return JSONResponse(
        status_code=status, content=RefusalBody(reason=exc.reason, detail=exc.detail).model_dump()
    )


async def session_answer(request: Request, exc: Exception) -> JSONResponse:
    """401 or 403 with the reason code the page puts into words (sign in; not on duty)."""
    assert isinstance(exc, SessionRefused)
    body = RefusalBody(reason=exc.reason, detail=exc.detail)
    return JSONResponse(status_code=exc.status, content=body.model_dump())


async def validation_answer(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each failing field in both languages; inputs are not echoed back."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        path, zh, en = explain(error)
        loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
        problems.append(
            FieldProblem(loc=loc, msg=en, type=str(error.get("type", "")), field=path, zh=zh, en=en)
        )
    return JSONResponse(status_code=422, content=ValidationProblems(detail=problems).model_dump())


def install(app: FastAPI) -> None:
    """Register both answers on `app`."""
    app.add_exception_handler(Refusal, refusal_answer)
    app.add_exception_handler(SessionRefused, session_answer)
    app.add_exception_handler(RequestValidationError, validation_answer)
