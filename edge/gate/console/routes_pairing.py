"""The pairing page and API: codes for the kiosk, a device cookie for a tablet that types one.

Served by DeviceTrust (edge/web/device_trust.py) in front of the console, to every client;
the routes for codes and the list of devices answer this machine only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from math import ceil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp

from edge.gate.console import errors
from edge.gate.console.pairing import LABEL_MAX, DevicesFull, Pairing
from edge.web.device_trust import DeviceTrust, from_this_machine
from edge.web.page import BILINGUAL
from edge.web.security import CSP, SecurityHeaders, page_policy

COOKIE = "gatepost-device"
# Browsers keep a cookie at most 400 days; a tablet unused that long pairs again.
COOKIE_MAX_AGE_S = 400 * 86_400
STATIC = Path(__file__).with_name("static")

router = APIRouter(tags=["pairing"])


class Refused(Exception):
    """A pairing request answered with `status` and a reason code."""

    def __init__(self, status: int, reason: str, detail: str, retry_after_s: int = 0) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail, self.retry_after_s = (
            status, reason, detail, retry_after_s,
        )  # fmt: skip


class PairingStatus(BaseModel):
    this_machine: bool = Field(description="the kiosk: it may make codes")
    paired: bool = Field(description="this browser carries a paired device's cookie")
    device_id: str | None = None


class PairingCode(BaseModel):
    code: str = Field(description="digits to type on the tablet; once, before it expires")
    expires_in_s: int


class PairRequest(BaseModel):
    code: str = Field(min_length=1, max_length=16, description="the code the kiosk shows")
    label: str = Field("", max_length=LABEL_MAX, description="what the device is, e.g. 平板2")


class Device(BaseModel):
    device_id: str
    label: str
    paired_at: str


def render_page() -> str:
    """/pair with the console's style and its own inlined (the console's look, no files)."""
    html = (STATIC / "pair.html").read_text(encoding="utf-8")
    css = "\n".join(
        (STATIC / name).read_text(encoding="utf-8") for name in ("console.css", "pair.css")
    )
    js = "\n".join(path.read_text(encoding="utf-8") for path in (BILINGUAL, STATIC / "pair.js"))
    return html.replace("/*{{style}}*/", css).replace("/*{{script}}*/", js)


async def pairing(request: Request) -> Pairing:
    found: Pairing = request.app.state.pairing
    return found


PairingDep = Annotated[Pairing, Depends(pairing)]


async def this_machine_only(request: Request) -> None:
    """Codes and the device list are the kiosk's and the technician's, on the gate itself."""
    if not from_this_machine(request.scope):
        raise Refused(403, "this-machine-only", "only a browser on the gate itself may do this")
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Refused(403, "cross-site", "a page of another site may not do this")


ThisMachine = Depends(this_machine_only)


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


@router.get("/pair", response_class=HTMLResponse)
def page(request: Request) -> HTMLResponse:
    """Pair this device: type the code shown on the gate's own screen (which makes codes)."""
    html: str = request.app.state.pair_page
    return HTMLResponse(html, headers={"Cache-Control": "no-cache", CSP: page_policy(html)})


@router.get("/api/pairing", response_model=PairingStatus)
def status(request: Request, pairing: PairingDep) -> PairingStatus:
    """Whether this browser is on the gate itself, and whether it is a paired device."""
    device = pairing.devices.device_for(request.cookies.get(COOKIE, ""))
    return PairingStatus(
        this_machine=from_this_machine(request.scope), paired=device is not None,
        device_id=device.device_id if device else None,
    )  # fmt: skip


@router.post("/api/pairing/codes", response_model=PairingCode, status_code=201,
             dependencies=[ThisMachine])  # fmt: skip
def new_code(pairing: PairingDep) -> PairingCode:
    """A new pairing code for the kiosk to show (this machine only)."""
    return PairingCode(
        code=pairing.codes.issue(), expires_in_s=int(pairing.codes.ttl.total_seconds())
    )


@router.post("/api/pairing", response_model=Device)
def pair(body: PairRequest, request: Request, response: Response, pairing: PairingDep) -> Device:
    """Pair this device with a code from the kiosk: sets the device cookie."""
    address = client_address(request)
    if (wait := pairing.wrong_codes.blocked_for(address)) is not None:
        raise Refused(429, "too-many-pairing-tries", "too many wrong codes from this device; "
                      "wait and try again", retry_after_s=_seconds(wait))  # fmt: skip
    if not pairing.codes.redeem(body.code.strip()):
        pairing.wrong_codes.failed(address)
        raise Refused(401, "pairing-code-invalid", "wrong or expired code: ask the gate's "
                      "screen for a new one")  # fmt: skip
    try:
        device, token = pairing.devices.pair(body.label)
    except DevicesFull as exc:
        raise Refused(409, "too-many-devices", str(exc)) from None
    response.set_cookie(
        COOKIE, token, max_age=COOKIE_MAX_AGE_S, path="/", secure=True, httponly=True,
        samesite="strict",
    )  # fmt: skip
    return Device(**device.public())


@router.get("/api/pairing/devices", response_model=list[Device], dependencies=[ThisMachine])
def devices(pairing: PairingDep) -> list[Device]:
    """The paired devices, oldest first (this machine only)."""
    return [Device(**device.public()) for device in pairing.devices.devices()]


@router.delete("/api/pairing/devices/{device_id}", status_code=204, dependencies=[ThisMachine])
def unpair(device_id: str, pairing: PairingDep) -> Response:
    """Unpair a device: its next request is refused (this machine only)."""
    if not pairing.devices.unpair(device_id):
        raise Refused(404, "unknown-device", f"no paired device {device_id[:16]!r}")
    return Response(status_code=204)


def _seconds(wait: timedelta) -> int:
    return max(1, ceil(wait.total_seconds()))


async def refused_answer(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
    content: dict[str, Any] = {"reason": exc.reason, "detail": exc.detail}
    return JSONResponse(status_code=exc.status, content=content, headers=headers)


def pairing_app(pairing: Pairing) -> FastAPI:
    """The pairing page and API as an app of their own, for DeviceTrust to put in front."""
    app = FastAPI(title="Gatepost console pairing", docs_url=None, redoc_url=None,
                  openapi_url=None)  # fmt: skip
    app.state.pairing = pairing
    app.state.pair_page = render_page()
    app.add_middleware(SecurityHeaders)
    errors.install(app)
    app.add_exception_handler(Refused, refused_answer)
    app.include_router(router)
    return app


def device_trust(pairing: Pairing, recheck_s: float = 2.0) -> Callable[[ASGIApp], ASGIApp]:
    """ConsoleServer's `guard`: the console behind DeviceTrust, with pairing in front.

    Args:
        recheck_s: how often a paired device's open event stream checks it is still
            paired; unpaired, the stream ends.
    """
    front = pairing_app(pairing)

    def is_paired(token: str) -> bool:
        return pairing.devices.device_for(token) is not None

    def guard(app: ASGIApp) -> ASGIApp:
        return DeviceTrust(app, front, is_paired, cookie=COOKIE, recheck_s=recheck_s)

    return guard
