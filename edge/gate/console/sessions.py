"""Volunteer sessions: the console acts only for an on-duty volunteer who scanned a badge.

A session opens when a volunteer's badge verifies at the console (starting a shift, or
signing in again while on duty). The browser holds only a random token in an HttpOnly,
SameSite=Strict cookie; the node keeps its hash, the volunteer it names and when it was
last used. A session ends when the volunteer signs out, when their shift ends (at the
console or by the badge at the gate's scanner), after `idle_s` without a request, and
after `longest_s` in all. Sessions live in memory: a restarted node asks for the badge
again, which is what a volunteer expects of a rebooted kiosk.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response

from edge.gate.config import SessionLimits
from edge.gate.views import Checkpoint, Volunteer

COOKIE = "gatepost-session"


class SessionRefused(Exception):
    """No acting volunteer: 401 without a live session, 403 for one no longer on duty."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.status = status
        self.reason = reason
        self.detail = detail


@dataclass
class _Session:
    volunteer: Volunteer
    opened: float
    last_used: float


class VolunteerSessions:
    """The open sessions of one console.

    Args:
        limits: how long a session lasts unused and in all, and how many are kept
            (opening one more ends the least recently used).
        monotonic: the clock (tests pass their own).
    """

    def __init__(
        self, limits: SessionLimits | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        limits = limits or SessionLimits()
        self.idle_s = limits.idle_min * 60
        self.longest_s = limits.longest_h * 3600
        self.most = limits.most
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._open: dict[str, _Session] = {}

    def open(self, volunteer: Volunteer) -> str:
        """A new session for `volunteer`; returns the token for the cookie."""
        token = secrets.token_urlsafe(32)
        now = self._monotonic()
        with self._lock:
            if len(self._open) >= self.most:
                oldest = min(self._open, key=lambda key: self._open[key].last_used)
                del self._open[oldest]
            self._open[_key(token)] = _Session(volunteer, now, now)
        return token

    def find(self, token: str | None, *, use: bool = True) -> Volunteer | None:
        """The volunteer of a live session, or None.

        Args:
            use: count this as the session's use (a request); False for a check that
                must not keep an idle session open, such as an open event stream's.
        """
        if not token:
            return None
        now = self._monotonic()
        with self._lock:
            session = self._open.get(key := _key(token))
            if session is None:
                return None
            if now - session.last_used > self.idle_s or now - session.opened > self.longest_s:
                del self._open[key]
                return None
            if use:
                session.last_used = now
            return session.volunteer

    def close(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._open.pop(_key(token), None)

    def end_for(self, volunteer_id: str) -> int:
        """End every session of `volunteer_id` (their shift ended); returns how many."""
        with self._lock:
            ended = [k for k, s in self._open.items() if s.volunteer.volunteer_id == volunteer_id]
            for key in ended:
                del self._open[key]
        return len(ended)


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def set_cookie(response: Response, request: Request, token: str) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, and Secure when served over HTTPS."""
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="strict", path="/",
        secure=request.url.scheme == "https",
    )  # fmt: skip


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, httponly=True, samesite="strict", path="/", secure=request.url.scheme == "https"
    )


def session_volunteer(
    sessions: VolunteerSessions, checkpoint: Checkpoint, token: str | None, *, use: bool = True
) -> Volunteer:
    """The on-duty volunteer of the session `token` names (`use` as in VolunteerSessions.find).

    Raises:
        SessionRefused: 401 `session-required` without a live session; 403 `not-on-duty`
            when the session's volunteer is no longer on duty (that session ends).
    """
    volunteer = sessions.find(token, use=use)
    if volunteer is None:
        raise SessionRefused(401, "session-required", "scan your badge to sign in")
    if volunteer.volunteer_id not in checkpoint.on_duty:
        sessions.close(token)
        raise SessionRefused(
            403, "not-on-duty", f"{volunteer.volunteer_id} is not on duty at this gate"
        )
    return volunteer


def acting_volunteer(request: Request) -> Volunteer:
    """The volunteer this request acts for: from the session cookie, never from the body.

    Sync on purpose: a checkpoint may wait for its lock to say who is on duty; off the loop.
    """
    context = request.app.state.console
    return session_volunteer(context.sessions, context.checkpoint, request.cookies.get(COOKIE))


ActorDep = Annotated[Volunteer, Depends(acting_volunteer)]
