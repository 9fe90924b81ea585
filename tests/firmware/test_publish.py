"""`gatepost fw publish FILE`: signed lists put on a site's locked broker by an admin
identity, and what a gate's identity then gets retained from it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.cli import endpoint_args, main
from edge.contract import catalogue, topics
from edge.contract.documents import (
    NodeConfigBody,
    Revocation,
    RevocationListBody,
    SignedDocument,
    SignedNodeConfig,
    SignedRevocationList,
    SignedTrustList,
)
from edge.contract.topics import Site
from edge.credentials.keys import write_private_key
from edge.credentials.trust import new_signed
from edge.mqtt import Endpoint
from firmware_tools.publish import FILE_MAX_BYTES
from firmware_tools.site_pki import IdentityRole
from simulators.broker import PrivateBroker
from simulators.site import SiteKit
from tests.conftest import Subscriber, locked_site

SITE = "north"
TRUST_TOPIC = topics.trust(Site(SITE))
REVOCATIONS_TOPIC = topics.revocations(Site(SITE))
NOWHERE = ["--broker", "mqtt://127.0.0.1:1"]  # refusals come before the broker


@pytest.fixture
def site(tmp_path: Path) -> Iterator[PrivateBroker]:
    identities = [(IdentityRole.ADMIN, "tech"), (IdentityRole.GATE, "g01")]
    with locked_site(tmp_path, SITE, identities) as broker:
        yield broker


@pytest.fixture
def kit(tmp_path: Path) -> SiteKit:
    return SiteKit(tmp_path / "site", SITE)  # root.pem: the root public key


def write(folder: Path, name: str, document: SignedDocument) -> Path:
    path = folder / name
    path.write_text(document.model_dump_json(exclude_none=True), encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`gatepost fw publish …` as a technician runs it: exit code and everything printed."""
    code = main(["fw", "publish", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def publish_as(
    capsys: pytest.CaptureFixture[str], broker: Endpoint, kit: SiteKit, path: Path, *more: str
) -> tuple[int, str]:
    root = str(kit.folder / "root.pem")
    return run(capsys, str(path), "--site", SITE, "--root-key", root, *more,
               *endpoint_args(broker))  # fmt: skip


def retained(broker: Endpoint, topic: str) -> SignedDocument | None:
    """What a node subscribing to `topic` now gets retained; None if nothing."""
    reader = Subscriber.connect(broker, "witness")
    try:
        reader.subscribe(topic)
        try:
            message = reader.next(1.5)
        except AssertionError:
            return None
    finally:
        reader.close()
    assert message.retain
    document = catalogue.decode(message.topic, message.payload).payload
    assert isinstance(document, SignedDocument)
    return document


def revocations(kit: SiteKit, serial: int) -> SignedRevocationList:
    body = RevocationListBody(entries=(Revocation(by="cti", sha256="ab" * 32),))
    return kit.sign(SignedRevocationList, body, serial)


def test_an_admin_publishes_both_lists_and_a_gate_gets_them_retained(
    site: PrivateBroker, kit: SiteKit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = site.endpoint("admin-tech")
    trust_file = write(tmp_path, "trust-list.json", kit.trust_list())
    code, out = publish_as(capsys, admin, kit, trust_file)
    assert code == 0, out
    assert "the broker holds no trust list" in out
    assert f"published trust serial 1 to {TRUST_TOPIC}" in out
    revocations_file = write(tmp_path, "revocations.json", revocations(kit, 3))
    code, out = publish_as(capsys, site.endpoint("admin-tech"), kit, revocations_file)
    assert code == 0, out
    gate = site.endpoint("gate-g01")
    held = retained(gate, TRUST_TOPIC)
    assert held is not None and (held.document, held.serial) == ("trust", 1)
    held = retained(gate, REVOCATIONS_TOPIC)
    assert held is not None and (held.document, held.serial) == ("revocations", 3)
    # The next list replaces it; --root-key may name the key itself (its public half is used).
    key = tmp_path / "root-key.pem"
    write_private_key(key, kit.root_key)
    code, out = run(capsys, str(write(tmp_path, "trust-2.json", kit.trust_list())),
                    "--site", SITE, "--root-key", str(key), *endpoint_args(admin))  # fmt: skip
    assert code == 0, out
    assert "the broker holds trust serial 1" in out
    held = retained(gate, TRUST_TOPIC)
    assert held is not None and held.serial == 2


@pytest.mark.parametrize("problem", ["forged", "expired"])
def test_a_list_nodes_would_refuse_is_not_published(
    site: PrivateBroker, kit: SiteKit, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    problem: str,
) -> None:  # fmt: skip
    admin = site.endpoint("admin-tech")
    code, out = publish_as(capsys, admin, kit, write(tmp_path, "one.json", kit.trust_list()))
    assert code == 0, out
    now, body = datetime.now(UTC), kit.trust_list().body
    if problem == "forged":  # signed by a key that is not the site's root key
        document = new_signed(SignedTrustList, body, 9, now, Ed25519PrivateKey.generate())
        why = "unknown-signer"
    else:
        document = new_signed(SignedTrustList, body, 9, now - timedelta(days=2), kit.root_key,
                              expires_at=now - timedelta(days=1))  # fmt: skip
        why = "expired"
    path = write(tmp_path, f"{problem}.json", document)
    code, out = publish_as(capsys, admin, kit, path)
    assert code == 1, out
    assert f"serial 9: nodes would refuse it ({why}" in out
    assert "nothing published" in out
    held = retained(site.endpoint("gate-g01"), TRUST_TOPIC)
    assert held is not None and held.serial == 1


def test_a_serial_not_above_the_brokers_is_refused_unless_forced(
    site: PrivateBroker, kit: SiteKit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin, gate = site.endpoint("admin-tech"), site.endpoint("gate-g01")
    code, out = publish_as(capsys, admin, kit, write(tmp_path, "r5.json", revocations(kit, 5)))
    assert code == 0, out
    for serial in (5, 4):
        older = write(tmp_path, f"r{serial}b.json", revocations(kit, serial))
        code, out = publish_as(capsys, admin, kit, older)
        assert code == 1, out
        assert f"revocations serial {serial} is not above the broker's 5" in out
        assert "stale-serial" in out
        held = retained(gate, REVOCATIONS_TOPIC)
        assert held is not None and held.serial == 5
    code, out = publish_as(capsys, admin, kit, older, "--force")
    assert code == 0, out
    held = retained(gate, REVOCATIONS_TOPIC)
    assert held is not None and held.serial == 4


def test_a_gate_identity_may_not_publish_a_list(
    site: PrivateBroker, kit: SiteKit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = site.endpoint("gate-g01")
    code, out = publish_as(capsys, gate, kit, write(tmp_path, "t.json", kit.trust_list()))
    assert code == 1, out
    assert f"the broker refused {TRUST_TOPIC}" in out
    assert "only an admin identity may write it" in out
    assert retained(site.endpoint("admin-tech"), TRUST_TOPIC) is None


def test_an_unreachable_broker_is_exit_2(
    kit: SiteKit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "t.json", kit.trust_list())
    code, out = run(capsys, str(path), "--site", SITE, "--wait", "2", *NOWHERE)
    assert code == 2, out
    assert "broker mqtt://127.0.0.1:1" in out


def test_a_config_is_refused_with_the_command_that_pushes_it(
    kit: SiteKit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = NodeConfigBody(node="g01", config={"policy": {"fever_c": 37.5}})
    path = write(tmp_path, "config.json", kit.sign(SignedNodeConfig, body, 1))
    code, out = run(capsys, str(path), "--site", SITE, *NOWHERE)
    assert code == 1, out
    assert f"{path}: a node config; push it with `gatepost fw config push NODE`" in out


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"not json {", "not a JSON object"),
        (b"[1, 2]", "not a JSON object"),
        (b" " * FILE_MAX_BYTES + b"{}", f"more than {FILE_MAX_BYTES} bytes"),
        (b'{"document": "trust", "serial": 0}', "serial"),
        (b'{"document": "keys"}', "document is 'keys'"),
        (b'{"document": ["trust"]}', "document is ['trust']"),
    ],
)
def test_a_file_that_is_not_a_signed_list_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, why: str
) -> None:
    path = tmp_path / "list.json"
    path.write_bytes(content)
    code, out = run(capsys, str(path), "--site", SITE, *NOWHERE)
    assert code == 1, out
    assert f"{path}: " in out and why in out
    assert "nothing published" in out
