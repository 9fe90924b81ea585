"""A provisioned site for demos and tests: root key, code signer, trust list, gate configs, codes.

Everything is made with the real issuer and signed the real way; only the keys are
throwaway. A site folder holds what a technician would install on a node: the root
public key, the ID-hash key and a config file per gate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import cbor2
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from edge.configfile import broker_section
from edge.contract import topics
from edge.contract.base import Payload
from edge.contract.documents import SignedTrustList, TrustListBody
from edge.contract.topics import Site
from edge.credentials.base45 import b45decode
from edge.credentials.hcert import decompress, unprefix, wrap
from edge.credentials.issuer import Signer, issue, mask_name, subject_ref
from edge.credentials.native import Badge, HealthCode, HouseholdPass
from edge.credentials.trust import SignedT, new_signed
from edge.mqtt import Endpoint, new_client, publish

SUBJECT_SECRET = b"demo-site-subject-secret-32bytes"
CodeKind = Literal["green", "yellow", "red", "expired", "forged", "household", "badge"]


@dataclass
class SiteKit:
    """A site's keys and the files a gate node needs, in `folder`.

    Args:
        folder: where root.pem, id-hash.key and the gate configs go.
        site: the site's topic segment.
    """

    folder: Path
    site: str = "demo"
    root_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    signer: Signer = field(default_factory=lambda: Signer.generate("ES256", "demo-health"))
    serial: int = 0

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        pem = self.root_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (self.folder / "root.pem").write_bytes(pem)
        key_file = self.folder / "id-hash.key"
        key_file.write_bytes(os.urandom(32).hex().encode())
        key_file.chmod(0o600)

    @property
    def topic_site(self) -> Site:
        return Site(self.site)

    def trust_list(self, now: datetime | None = None) -> SignedTrustList:
        """A newly signed trust list naming the site's code signer (serial grows each call)."""
        now = now or datetime.now(UTC)
        self.serial += 1
        entry = self.signer.trust_entry(
            ("health-code", "household-pass", "badge"),
            now - timedelta(days=30), now + timedelta(days=365),
        )  # fmt: skip
        body = TrustListBody(entries=(entry,))
        return new_signed(
            SignedTrustList, body, self.serial, now - timedelta(minutes=1), self.root_key
        )

    def publish_trust_list(self, broker: Endpoint) -> None:
        """Publish a newly signed trust list retained, as provisioning does."""
        self.publish(broker, topics.trust(self.topic_site), self.trust_list())

    def sign(self, model: type[SignedT], body: BaseModel, serial: int) -> SignedT:
        """A document signed by the site root key, issued a minute ago."""
        issued = datetime.now(UTC) - timedelta(minutes=1)
        return new_signed(model, body, serial, issued, self.root_key)

    def publish(self, broker: Endpoint, topic: str, document: Payload) -> None:
        """Publish `document` as the contract says (retained), waiting for the broker's ack."""
        client = new_client(f"provisioning-{self.site}", broker)
        client.connect(broker.host, broker.port)
        client.loop_start()
        try:
            publish(client, topic, document).wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()

    def gate_config(
        self, name: str, endpoint: Endpoint, devices: dict[str, Any], **sections: Any
    ) -> Path:
        """Write a gate config file for node `name`; `sections` override whole sections."""
        config: dict[str, Any] = {
            "node": {"site": self.site, "name": name, "state_dir": f"state-{name}"},
            "broker": {**broker_section(endpoint), "heartbeat_s": 5, "reconnect_max_s": 2},
            "devices": devices,
            # Simulated pins: no door contact is fitted (a mock input would read "open").
            "gpio": {"pin_factory": "mock", "door": None},
            "trust": {"root_keys": ["root.pem"]},
            "console": {"port": 0},
            "secrets": {"id_hash_key_file": "id-hash.key"},
        }
        for section, value in sections.items():
            config[section] = {**config.get(section, {}), **value}
        path = self.folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
        return path

    def code(self, kind: CodeKind, *, name: str = "张三丰", id_number: str = "110101199001011234",
             now: datetime | None = None, test_at: datetime | None = None,
             weekly_exits: int = 3, volunteer: str = "v017",
             role: str = "volunteer") -> str:  # fmt: skip
        """The text of a QR code of `kind`, valid now unless it is expired or forged."""
        now = now or datetime.now(UTC)
        masked = mask_name(name)
        valid_for, issued = timedelta(hours=24), now - timedelta(hours=1)
        credential: HealthCode | HouseholdPass | Badge
        if kind == "household":
            credential = HouseholdPass(household=f"h-{id_number[-6:]}", weekly_exits=weekly_exits,
                                       name=masked)  # fmt: skip
        elif kind == "badge":
            credential = Badge(volunteer=volunteer, role=role, name=masked)
            valid_for = timedelta(days=90)
        else:
            colour: Literal["green", "yellow", "red"]
            colour = kind if kind in ("green", "yellow", "red") else "green"
            credential = HealthCode(colour=colour, subject=subject_ref(id_number, SUBJECT_SECRET),
                                    name=masked, test_at=test_at)  # fmt: skip
        if kind == "expired":
            issued = now - timedelta(hours=30)
        text = issue(credential, self.signer, issued, valid_for)
        return forge(text) if kind == "forged" else text


def forge(text: str) -> str:
    """`text` with one bit of its signature flipped: the kid is genuine, the signature is not."""
    tag = cbor2.loads(decompress(b45decode(unprefix(text))))
    protected, unprotected, payload, signature = tag.value
    signature = signature[:-1] + bytes([signature[-1] ^ 0x01])
    return wrap(cbor2.dumps(cbor2.CBORTag(tag.tag, [protected, unprotected, payload, signature])))
