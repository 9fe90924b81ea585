"""The console beyond this machine: HTTPS with a site-CA certificate, and paired devices only.

Real servers, TLS and sockets: the kiosk is a client on loopback; a tablet on the LAN is a
client connecting from this machine's own non-loopback address.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from playwright.sync_api import Page, expect

from edge.errors import GatepostError
from edge.gate.console.app import create_app
from edge.gate.console.pairing import (
    CODE_DIGITS,
    DEVICES_FILE,
    DevicesFull,
    PairedDevices,
    Pairing,
    PairingCodes,
)
from edge.gate.console.routes_pairing import COOKIE, device_trust, render_page
from edge.gate.console.server import ConsoleServer
from edge.web.security import is_loopback, page_policy
from edge.web.tls import ServerCertificate
from firmware_tools.site_pki import SitePki, WebFiles
from simulators.broker import PrivateBroker
from simulators.devices.scanner import SimulatedScanner
from simulators.site import SiteKit
from tests.browser import assert_chinese_renders
from tests.conftest import identity
from tests.console.double import RecordingCheckpoint
from tests.gate.test_gate_node import running_node


def lan_address() -> str:
    """This machine's address on its network (not loopback), or the test is skipped."""
    for target in ("192.0.2.1", "10.255.255.254", "8.8.8.8"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((target, 9))  # UDP: nothing is sent, the route is looked up
            except OSError:
                continue
            address = str(probe.getsockname()[0])
        if not is_loopback(address):
            return address
    pytest.skip("this machine has no non-loopback IPv4 address to be a tablet from")


@pytest.fixture(scope="module")
def lan() -> str:
    return lan_address()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, lan: str) -> WebFiles:
    site = SitePki.init(tmp_path_factory.mktemp("site") / "north", "north")
    return site.issue_web("g01", ["gate-01.lan", lan, "localhost", "127.0.0.1"])


@dataclass
class Gate:
    """A console on every address over HTTPS, with its pairing; clients trusting the CA."""

    server: ConsoleServer
    pairing: Pairing
    lan: str
    ca: Path

    @property
    def kiosk_url(self) -> str:
        return f"https://localhost:{self.server.port}"

    @property
    def lan_url(self) -> str:
        return f"https://{self.lan}:{self.server.port}"

    def kiosk(self) -> httpx.Client:
        return httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca)), timeout=5)

    def tablet(self) -> httpx.Client:
        """A client on the LAN: its connections come from this machine's LAN address."""
        transport = httpx.HTTPTransport(
            local_address=self.lan, verify=ssl.create_default_context(cafile=str(self.ca))
        )
        return httpx.Client(transport=transport, timeout=5)

    def code(self) -> str:
        with self.kiosk() as kiosk:
            made = kiosk.post(f"{self.kiosk_url}/api/pairing/codes")
        assert made.status_code == 201, made.text
        code: str = made.json()["code"]
        return code

    def pair(self, label: str = "平板2") -> str:
        """A tablet paired through the API; returns its cookie's token."""
        with self.tablet() as tablet:
            paired = tablet.post(
                f"{self.lan_url}/api/pairing", json={"code": self.code(), "label": label}
            )
        assert paired.status_code == 200, paired.text
        return paired.cookies[COOKIE]


def serve_gate(state: Path, web: WebFiles, lan: str) -> Iterator[Gate]:
    pairing = Pairing.in_folder(state, limit=3)
    app = create_app(RecordingCheckpoint())
    with ConsoleServer(
        app, "0.0.0.0", 0, allowed_hosts=(lan, "gate-01.lan"),
        tls=ServerCertificate(web.cert, web.key), guard=device_trust(pairing),
    ) as running:  # fmt: skip
        yield Gate(running, pairing, lan, web.ca)
    app.state.console.stream.close()


@pytest.fixture
def gate(tmp_path: Path, web: WebFiles, lan: str) -> Iterator[Gate]:
    yield from serve_gate(tmp_path / "state", web, lan)


@pytest.fixture(autouse=True)
def _state(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()


def not_paired(response: httpx.Response) -> bool:
    return response.status_code == 401 and response.json()["reason"] == "device-not-paired"


# --- HTTPS --------------------------------------------------------------------------------------


def test_console_https__verified_against_the_site_ca(gate: Gate) -> None:
    assert gate.server.https
    assert gate.server.url.startswith("https://127.0.0.1:")
    assert gate.server._app.state.https is True  # what the session cookie reads
    with gate.kiosk() as kiosk:
        page = kiosk.get(f"{gate.kiosk_url}/")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"


def test_console_https__the_volunteer_session_cookie_is_secure(gate: Gate) -> None:
    with gate.kiosk() as kiosk:
        signed = kiosk.post(f"{gate.kiosk_url}/api/session", json={"badge_text": "HC1:BADGE-V001"})
        assert signed.status_code == 200, signed.text
        header = signed.headers["set-cookie"]
        assert header.startswith("gatepost-session=")
        for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
            assert attribute in header
        assert kiosk.get(f"{gate.kiosk_url}/api/state").status_code == 200


def test_console_https__plain_http_and_an_unknown_ca__invalid(gate: Gate) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{gate.server.port}/", timeout=5)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{gate.kiosk_url}/", timeout=5)


def test_console_plain_http__app_state_says_so() -> None:
    app = create_app(RecordingCheckpoint())
    with ConsoleServer(app, port=0) as server:
        assert not server.https and app.state.https is False
    app.state.console.stream.close()


def test_console_https__an_unusable_certificate_stops_the_start_naming_it(
    web: WebFiles, tmp_path: Path
) -> None:
    absent = tmp_path / "absent.pem"
    server = ConsoleServer(
        create_app(RecordingCheckpoint()), port=0, tls=ServerCertificate(absent, web.key)
    )
    with pytest.raises(GatepostError, match=f"HTTPS certificate {absent}"):
        server.start()
    assert not server.running


def test_console_https__beyond_this_machine_does_not_warn(
    tmp_path: Path, web: WebFiles, lan: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "edge.gate.console.server"):
        for _ in serve_gate(tmp_path / "state", web, lan):
            pass
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- device trust -------------------------------------------------------------------------------


def test_the_kiosk_on_loopback_needs_no_pairing(gate: Gate) -> None:
    with gate.kiosk() as kiosk:
        assert kiosk.get(f"{gate.kiosk_url}/").status_code == 200
        assert not not_paired(kiosk.get(f"{gate.kiosk_url}/api/state"))
        status = kiosk.get(f"{gate.kiosk_url}/api/pairing").json()
    assert status == {"this_machine": True, "paired": False, "device_id": None}


def test_an_unpaired_tablet__invalid(gate: Gate) -> None:
    with gate.tablet() as tablet:
        state = tablet.get(f"{gate.lan_url}/api/state")
        assert not_paired(state)
        assert "/pair" in state.json()["detail"]
        assert "node" not in state.json()
        assert not_paired(tablet.post(f"{gate.lan_url}/api/shifts", json={}))
        page = tablet.get(f"{gate.lan_url}/")
        assert (page.status_code, page.headers["location"]) == (303, "/pair")
        assert page.headers["x-frame-options"] == "DENY"
        # A forged cookie is no better than none.
        forged = tablet.get(f"{gate.lan_url}/api/state", headers={"Cookie": f"{COOKIE}=guess"})
        assert not_paired(forged)
        # Codes and the device list are the gate's own screen's.
        for method, path in [("POST", "/api/pairing/codes"), ("GET", "/api/pairing/devices"),
                             ("DELETE", "/api/pairing/devices/abcd1234")]:  # fmt: skip
            refused = tablet.request(method, f"{gate.lan_url}{path}")
            assert refused.status_code == 403, path
            assert refused.json()["reason"] == "this-machine-only"


def test_the_pairing_page__open_to_an_unpaired_tablet(gate: Gate) -> None:
    with gate.tablet() as tablet:
        page = tablet.get(f"{gate.lan_url}/pair")
        status = tablet.get(f"{gate.lan_url}/api/pairing").json()
    assert page.status_code == 200
    assert "设备配对" in page.text and "Pair this device" in page.text
    assert page.headers["content-security-policy"] == page_policy(page.text)
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    # Nothing from elsewhere: no file, font or script to fetch.
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page.text)
    assert status == {"this_machine": False, "paired": False, "device_id": None}


def test_pairing__a_code_from_the_kiosk_pairs_a_tablet_until_unpaired(gate: Gate) -> None:
    code = gate.code()
    assert re.fullmatch(rf"\d{{{CODE_DIGITS}}}", code)
    with gate.tablet() as tablet:
        paired = tablet.post(f"{gate.lan_url}/api/pairing", json={"code": code, "label": "平板2"})
        assert paired.status_code == 200, paired.text
        device = paired.json()
        assert device["label"] == "平板2"
        cookie = paired.headers["set-cookie"]
        for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/", "Max-Age="):
            assert attribute.lower() in cookie.lower(), cookie
        headers = {"Cookie": f"{COOKIE}={paired.cookies[COOKIE]}"}
        assert tablet.get(f"{gate.lan_url}/", headers=headers).status_code == 200
        assert not not_paired(tablet.get(f"{gate.lan_url}/api/state", headers=headers))
        status = tablet.get(f"{gate.lan_url}/api/pairing", headers=headers).json()
        assert status == {"this_machine": False, "paired": True, "device_id": device["device_id"]}
        # The code was used once.
        again = tablet.post(f"{gate.lan_url}/api/pairing", json={"code": code})
        assert (again.status_code, again.json()["reason"]) == (401, "pairing-code-invalid")

        with gate.kiosk() as kiosk:
            listed = kiosk.get(f"{gate.kiosk_url}/api/pairing/devices").json()
            assert listed == [device]
            gone = kiosk.delete(f"{gate.kiosk_url}/api/pairing/devices/{device['device_id']}")
            assert gone.status_code == 204
            unknown = kiosk.delete(f"{gate.kiosk_url}/api/pairing/devices/{device['device_id']}")
            assert (unknown.status_code, unknown.json()["reason"]) == (404, "unknown-device")
        assert not_paired(tablet.get(f"{gate.lan_url}/api/state", headers=headers))


def test_pairing__kept_across_a_restart_and_stored_hashed(
    tmp_path: Path, web: WebFiles, lan: str
) -> None:
    state = tmp_path / "state"
    for gate in serve_gate(state, web, lan):
        token = gate.pair()
    stored = (state / DEVICES_FILE).read_text()
    assert token not in stored
    assert (state / DEVICES_FILE).stat().st_mode & 0o077 == 0
    for gate in serve_gate(state, web, lan):
        with gate.tablet() as tablet:
            headers = {"Cookie": f"{COOKIE}={token}"}
            assert tablet.get(f"{gate.lan_url}/", headers=headers).status_code == 200


def test_pairing__wrong_codes_are_throttled_per_client(gate: Gate) -> None:
    with gate.tablet() as tablet:
        for wrong_code in ("00000000", "一二三四五六七八", " ", "1234567", "x' OR 1=1"):
            wrong = tablet.post(f"{gate.lan_url}/api/pairing", json={"code": wrong_code})
            assert (wrong.status_code, wrong.json()["reason"]) == (401, "pairing-code-invalid")
        blocked = tablet.post(f"{gate.lan_url}/api/pairing", json={"code": gate.code()})
        assert (blocked.status_code, blocked.json()["reason"]) == (429, "too-many-pairing-tries")
        assert 0 < int(blocked.headers["retry-after"]) <= 60
    # Another client is not affected (the kiosk may pair its own browser too).
    with gate.kiosk() as kiosk:
        other = kiosk.post(f"{gate.kiosk_url}/api/pairing", json={"code": gate.code()})
    assert other.status_code == 200


def test_pairing__bounded_devices(gate: Gate) -> None:
    for _ in range(3):
        gate.pair()
    with gate.tablet() as tablet:
        full = tablet.post(f"{gate.lan_url}/api/pairing", json={"code": gate.code()})
    assert (full.status_code, full.json()["reason"]) == (409, "too-many-devices")


@pytest.mark.parametrize(
    "body", [{}, {"code": ""}, {"code": "1" * 17}, {"code": "12345678", "label": "x" * 41}]
)
def test_pairing_request__invalid(gate: Gate, body: dict[str, str]) -> None:
    with gate.tablet() as tablet:
        answer = tablet.post(f"{gate.lan_url}/api/pairing", json=body)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["zh"]


# --- codes and the devices file -----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_codes__single_use_short_lived_and_few() -> None:
    clock = Clock()
    codes = PairingCodes(clock)
    first = codes.issue()
    assert codes.redeem(first) and not codes.redeem(first)
    late = codes.issue()
    clock.now += timedelta(seconds=120)
    assert not codes.redeem(late)
    made = [codes.issue() for _ in range(4)]  # one past the bound: the oldest goes
    assert not codes.redeem(made[0])
    assert all(codes.redeem(code) for code in made[1:])
    assert not codes.redeem("") and not codes.redeem("x" * 100) and not codes.redeem("一二三")


def test_devices__bounded_and_unpaired(tmp_path: Path) -> None:
    devices = PairedDevices(tmp_path / DEVICES_FILE, limit=2)
    (one, token), _ = devices.pair("  平板 \x00 1\n"), devices.pair("\x1b")
    assert one.label == "平板 1"
    assert devices.device_for(token) == one and devices.device_for("") is None
    with pytest.raises(DevicesFull, match="unpair one first"):
        devices.pair("third")
    assert devices.unpair(one.device_id) and not devices.unpair(one.device_id)
    assert devices.device_for(token) is None
    assert [d.label for d in PairedDevices(tmp_path / DEVICES_FILE, limit=2).devices()] == [
        "tablet"
    ]


def test_devices__an_unreadable_file_is_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / DEVICES_FILE
    path.write_text(json.dumps({"devices": [{"device_id": "x"}]}))
    with caplog.at_level(logging.ERROR):
        devices = PairedDevices(path, limit=2)
    assert len(devices) == 0
    assert (tmp_path / f"{DEVICES_FILE}.unreadable").exists()
    assert "must pair again" in caplog.text


def test_the_pairing_page_is_rendered_from_this_tree_only() -> None:
    html = render_page()
    assert "/*{{" not in html
    policy = page_policy(html)
    assert policy.count("'sha256-") == 2  # its one style block and its one script


# --- the page in a browser ----------------------------------------------------------------------


@pytest.mark.browser
def test_the_pairing_page_in_a_browser__chinese_and_a_code_on_the_kiosk(
    page: Page, tmp_path: Path
) -> None:
    # On loopback over HTTP: the kiosk's view (chromium would need the site CA installed).
    pairing = Pairing.in_folder(tmp_path / "state", limit=3)
    app = create_app(RecordingCheckpoint())
    with ConsoleServer(app, port=0, guard=device_trust(pairing)) as server:
        page.goto(f"{server.url}/pair")
        expect(page.locator("body[data-ready=true]")).to_be_attached()
        expect(page.get_by_test_id("make-code")).to_be_visible()
        expect(page.get_by_test_id("enter-code")).to_be_hidden()
        assert_chinese_renders(page, "main")
        page.get_by_test_id("make-code-button").click()
        expect(page.get_by_test_id("code")).to_have_text(re.compile(rf"^\d{{{CODE_DIGITS}}}$"))
        code = page.get_by_test_id("code").inner_text()
        assert pairing.codes.redeem(code)
        assert_chinese_renders(page, "#message")
    app.state.console.stream.close()


# --- the gate node ------------------------------------------------------------------------------


@pytest.fixture
def kit(tmp_path: Path, broker: PrivateBroker) -> SiteKit:
    kit = SiteKit(tmp_path / "site")
    kit.publish_trust_list(identity(broker, "provisioning"))
    return kit


def test_gate_node__serves_its_console_over_https_to_paired_tablets(
    kit: SiteKit, broker: PrivateBroker, tmp_path: Path, web: WebFiles, lan: str
) -> None:
    scanner = SimulatedScanner(tmp_path / "scanner").start()
    console = {"host": "0.0.0.0", "port": 0, "allowed_hosts": [lan],
               "tls_cert": str(web.cert), "tls_key": str(web.key)}  # fmt: skip
    devices = {"scanner": {"url": str(scanner.path), "profile": "gm65-scanner"}}
    config = kit.gate_config("g01", identity(broker, "g01"), devices, console=console)
    try:
        with running_node(config) as node:
            assert node.console_url is not None and node.console_url.startswith("https://")
            gate = Gate(node.console, Pairing.in_folder(tmp_path, 1), lan, web.ca)
            with gate.tablet() as tablet:
                assert not_paired(tablet.get(f"{gate.lan_url}/api/state"))
            gate.pair()
            state = node.config.node.state_dir
            assert len(json.loads((state / DEVICES_FILE).read_text())["devices"]) == 1
    finally:
        scanner.stop()


def test_unpairing_ends_the_devices_open_event_stream(
    tmp_path: Path, web: WebFiles, lan: str
) -> None:
    # An app that streams until told the client went away, as the console's events do.
    app = FastAPI()

    @app.get("/api/events")
    def events() -> StreamingResponse:
        async def frames() -> AsyncIterator[bytes]:
            while True:
                yield b": keep-alive\n\n"
                await anyio.sleep(0.1)

        return StreamingResponse(frames(), media_type="text/event-stream")

    pairing = Pairing.in_folder(tmp_path / "state", limit=3)
    with ConsoleServer(
        app, "0.0.0.0", 0, allowed_hosts=(lan,), tls=ServerCertificate(web.cert, web.key),
        guard=device_trust(pairing, recheck_s=0.2),
    ) as server:  # fmt: skip
        gate = Gate(server, pairing, lan, web.ca)
        token = gate.pair()
        (device,) = pairing.devices.devices()
        headers = {"Cookie": f"{COOKIE}={token}"}
        with gate.tablet() as tablet, tablet.stream(
            "GET", f"{gate.lan_url}/api/events", headers=headers
        ) as stream:  # fmt: skip
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(lines) == ": keep-alive"
            pairing.devices.unpair(device.device_id)
            started = time.monotonic()
            for _ in lines:  # the stream ends: the loop does too
                assert time.monotonic() - started < 5, "the stream outlived the pairing"
        assert time.monotonic() - started < 5


def test_the_app_sees_https_as_the_scheme_and_in_its_state(web: WebFiles) -> None:
    # What a session cookie's Secure flag is decided from, inside the app.
    app = FastAPI()

    @app.get("/scheme")
    def scheme(request: Request) -> dict[str, object]:
        return {"scheme": request.url.scheme, "https": request.app.state.https}

    with ConsoleServer(app, port=0, tls=ServerCertificate(web.cert, web.key)) as server:
        verify = ssl.create_default_context(cafile=str(web.ca))
        answer = httpx.get(f"{server.url}/scheme", verify=verify, timeout=5).json()
    assert answer == {"scheme": "https", "https": True}
