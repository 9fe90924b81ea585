"""The gateway over HTTPS: a web certificate of the site CA, real TLS, plain HTTP refused."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from edge.configfile import ConfigError
from edge.errors import GatepostError
from edge.web.tls import ServerCertificate
from firmware_tools.site_pki import SitePki, WebFiles
from gateway.config import AlarmSection, GatewayConfig, HttpSection, SiteSection, load_config
from gateway.service import Gateway
from gateway.store.settings import StoreSection
from simulators.broker import PrivateBroker
from tests.conftest import gateway_broker


@pytest.fixture(scope="module")
def web_site(tmp_path_factory: pytest.TempPathFactory) -> SitePki:
    """A site CA of its own: the web certificates below are not the broker suite's."""
    return SitePki.init(tmp_path_factory.mktemp("web-site") / "north", "north")


@pytest.fixture(scope="module")
def web(web_site: SitePki) -> WebFiles:
    return web_site.issue_web("gateway", ["gateway.command.lan", "localhost", "127.0.0.1"])


def trusting(ca: Path) -> ssl.SSLContext:
    """A client that trusts the site CA only, as a command center's browser set up for it."""
    return ssl.create_default_context(cafile=str(ca))


@contextmanager
def gateway_over_https(
    broker: PrivateBroker, tmp_path: Path, http: HttpSection
) -> Iterator[Gateway]:
    config = GatewayConfig(
        sites=(SiteSection(name="north", gates=("g01",)),),
        broker=gateway_broker(broker, "gw-https"),
        store=StoreSection(path=tmp_path / "gateway.db"),
        http=http,
        alarms=AlarmSection(check_every_s=0.2),
    )
    gateway = Gateway(config)
    stop, ready = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            gateway.run(stop, lambda _g: ready.set())
        except BaseException as exc:
            failed.append(exc)
            ready.set()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert ready.wait(30), "the gateway did not start"
        if failed:
            raise failed[0]
        yield gateway
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "the gateway did not stop"


# --- config -------------------------------------------------------------------------------------


def test_config_tls__valid(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("sites: [{name: n}]\nhttp: {tls_cert: web/cert.pem, tls_key: web/key.pem}")
    http = load_config(path).http
    cert, key = tmp_path / "web/cert.pem", tmp_path / "web/key.pem"
    assert (http.tls_cert, http.tls_key) == (cert, key)
    assert http.certificate() == ServerCertificate(cert, key)
    assert HttpSection().certificate() is None


@pytest.mark.parametrize("given", ["tls_cert: c.pem", "tls_key: k.pem"])
def test_config_tls__invalid(tmp_path: Path, given: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(f"sites: [{{name: n}}]\nhttp: {{{given}}}")
    with pytest.raises(ConfigError, match="give tls_cert and tls_key together"):
        load_config(path)


def test_the_documented_example_shows_https(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "gateway.yaml"
    assert "tls_cert" in example.read_text()


# --- the server certificate ---------------------------------------------------------------------


def test_web_certificate__names_every_host(web: WebFiles) -> None:
    context = ServerCertificate(web.cert, web.key).context()
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert web.key.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("missing", ["cert", "key"])
def test_server_certificate__invalid__names_the_file(
    web: WebFiles, tmp_path: Path, missing: str
) -> None:
    absent = tmp_path / f"absent-{missing}.pem"
    files = {"cert": web.cert, "key": web.key, missing: absent}
    with pytest.raises(GatepostError, match=str(absent)):
        ServerCertificate(files["cert"], files["key"]).context()


def test_server_certificate__a_key_of_another_certificate__invalid(
    web: WebFiles, web_site: SitePki
) -> None:
    other = web_site.issue_web("other", ["other.lan"])
    with pytest.raises(GatepostError, match="not a pair"):
        ServerCertificate(web.cert, other.key).context()


# --- the running gateway ------------------------------------------------------------------------


def test_gateway_https__verified_against_the_site_ca(
    broker: PrivateBroker, tmp_path: Path, web: WebFiles
) -> None:
    http = HttpSection(port=0, tls_cert=web.cert, tls_key=web.key)
    with gateway_over_https(broker, tmp_path, http) as gateway:
        assert gateway.url.startswith("https://127.0.0.1:")
        port = gateway.http.port
        for host in ("127.0.0.1", "localhost"):
            page = httpx.get(f"https://{host}:{port}/", verify=trusting(web.ca), timeout=5)
            assert page.status_code == 200
            assert page.url.scheme == "https"
            assert page.headers["x-frame-options"] == "DENY"
        nodes = httpx.get(f"https://127.0.0.1:{port}/api/nodes", verify=trusting(web.ca), timeout=5)
        assert nodes.status_code == 401  # HTTPS changes the channel, not who may read


def test_gateway_https__plain_http_and_unknown_ca__invalid(
    broker: PrivateBroker, tmp_path: Path, web: WebFiles
) -> None:
    http = HttpSection(port=0, tls_cert=web.cert, tls_key=web.key)
    with gateway_over_https(broker, tmp_path, http) as gateway:
        port = gateway.http.port
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/api/nodes", timeout=5)
        # The system's CAs do not know the site CA: a browser not set up is warned.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://127.0.0.1:{port}/api/nodes", timeout=5)
        # Nor is the certificate good for a name it does not carry.
        with (
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
            httpx.Client(verify=trusting(web.ca), timeout=5) as client,
        ):
            client.get(
                f"https://127.0.0.1:{port}/api/nodes", extensions={"sni_hostname": "evil.example"}
            )


def test_gateway_https__an_unusable_key_stops_the_start_naming_it(
    broker: PrivateBroker, tmp_path: Path, web: WebFiles
) -> None:
    absent = tmp_path / "gone" / "key.pem"
    http = HttpSection(port=0, tls_cert=web.cert, tls_key=absent)
    with (
        pytest.raises(GatepostError, match=f"HTTPS key {absent}"),
        gateway_over_https(broker, tmp_path, http),
    ):
        pass
