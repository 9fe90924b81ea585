"""`gatepost fw publish FILE`: put a signed trust list or revocation list on the site's broker.

The file is what `gatepost fw trust-list` or `gatepost fw revocations` wrote. It is checked
as the nodes will check it (the contract's model and, with --root-key, the site root key's
signature and its dates), compared with the copy the broker holds retained (a node ignores
a serial not above its own), then published retained at QoS 1 and the broker's PUBACK
awaited. Nothing is published unless every check passes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.cli import add_broker_options, endpoint, slug_arg
from edge.contract import catalogue, topics
from edge.contract.documents import SignedRevocationList, SignedTrustList
from edge.contract.topics import Site
from edge.credentials.trust import DocumentRefused, root_keys_for, verify_document
from edge.errors import ContractError, GatepostError
from edge.mqtt import Endpoint, publish
from firmware_tools.broker_exchange import BrokerExchange

FILE_MAX_BYTES = 1024 * 1024
WAIT_DEFAULT_S = 10.0
WAIT_MAX_S = 300.0
# After the SUBACK, how long the broker has to deliver the retained copy.
RETAINED_SETTLE_S = 1.0
TOPICS: dict[str, Callable[[Site], str]] = {
    "trust": topics.trust,
    "revocations": topics.revocations,
}
SiteList = SignedTrustList | SignedRevocationList


class PublishRefused(GatepostError):
    """The list is not one nodes would take, or not newer than the broker's: not published."""


class BrokerFailed(GatepostError):
    """The broker could not be reached, or did not take or acknowledge the list."""


def load_list(path: Path, site: Site) -> tuple[str, SiteList]:
    """The signed list in `path` and the topic it goes to, checked against the contract.

    Raises:
        PublishRefused: unreadable, too big, not JSON, a config (pushed otherwise), or
            a document its topic's model refuses; the message names the file.
    """
    try:
        with path.open("rb") as file:
            data = file.read(FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise PublishRefused(f"{path}: {exc.strerror}") from None
    if len(data) > FILE_MAX_BYTES:
        raise PublishRefused(f"{path}: more than {FILE_MAX_BYTES} bytes; not a signed list")
    try:
        kind = json.loads(data).get("document")
    except (ValueError, AttributeError):
        raise PublishRefused(f"{path}: not a JSON object; not a signed list") from None
    if kind == "config":
        raise PublishRefused(
            f"{path}: a node config; push it with `gatepost fw config push NODE`, which "
            "signs it for the node and waits for its answer"
        )
    if not isinstance(kind, str) or kind not in TOPICS:
        raise PublishRefused(
            f"{path}: document is {kind!r}; give a trust list or revocation list "
            "(`gatepost fw trust-list`, `gatepost fw revocations`)"
        )
    topic = TOPICS[kind](site)
    try:
        document = catalogue.decode(topic, data, site.prefix).payload
    except ContractError as exc:
        raise PublishRefused(f"{path}: {exc}") from None
    assert isinstance(document, SignedTrustList | SignedRevocationList)
    return topic, document


def check_signed(document: SiteList, root_key: Ed25519PublicKey, now: datetime) -> None:
    """That nodes holding `root_key` would take `document` today (signature and dates).

    Raises:
        PublishRefused: naming the nodes' reason (`bad-signature`, `expired`, ...).
    """
    try:
        verify_document(document, root_keys_for([root_key]), now)
    except DocumentRefused as refused:
        raise PublishRefused(
            f"{document.document} serial {document.serial}: nodes would refuse it "
            f"({refused.reason}): {refused}"
        ) from None


class _Link(BrokerExchange):
    """The connection of one publish; keeps the first retained copy of the list's topic."""

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic
        self.retained: bytes | None = None

    def on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        with self.changed:
            if message.topic == self.topic and message.retain and self.retained is None:
                self.retained = bytes(message.payload) or None


def publish_list(
    broker: Endpoint,
    topic: str,
    document: SiteList,
    *,
    prefix: str,
    force: bool = False,
    wait_s: float = WAIT_DEFAULT_S,
    progress: Callable[[str], None] = lambda _line: None,
) -> None:
    """Publish `document` retained to `topic` once it is newer than the broker's copy.

    Args:
        broker: the site's broker, as an admin identity (the only one that writes lists).
        topic: the list's topic (`load_list` gives it).
        document: the checked list.
        prefix: the topic prefix.
        force: publish even if the broker holds this serial or a higher one.
        wait_s: bound on each wait for the broker (connect, subscribe, PUBACK).
        progress: called with a line for each step.

    Raises:
        PublishRefused: the serial is not above the retained one (and not `force`), or
            the broker will not let this identity read or write the topic.
        BrokerFailed: unreachable, refused the connection, or no answer in time.
    """
    if not 0 < wait_s <= WAIT_MAX_S:
        raise PublishRefused(f"--wait: between 0 and {WAIT_MAX_S:.0f} s, got {wait_s}")
    link = _Link(topic)
    try:
        client = link.start("gatepost-fw-publish", broker)
    except OSError as exc:
        raise BrokerFailed(f"broker {broker}: {exc}") from None
    try:
        if not link.wait(lambda: link.connected is not None, wait_s):
            raise BrokerFailed(f"broker {broker} did not answer within {wait_s:g} s")
        if link.connected is not None and link.connected.is_failure:
            raise BrokerFailed(f"broker {broker} refused the connection: {link.connected}")
        progress(f"connected to {broker}")
        client.subscribe(topic, qos=1)
        if not link.wait(lambda: link.subscribed is not None, wait_s):
            raise BrokerFailed(f"broker {broker} did not answer the subscription to {topic}")
        if any(reason.is_failure for reason in link.subscribed or []):
            raise PublishRefused(
                f"the broker will not let this identity read {topic}: use an admin certificate"
            )
        time.sleep(RETAINED_SETTLE_S)  # the retained copy follows the SUBACK
        _check_newer(link.retained, topic, prefix, document, force=force, progress=progress)
        info = publish(client, topic, document)
        if not link.wait(lambda: info.mid in link.acked, wait_s):
            raise BrokerFailed(f"the broker did not acknowledge {topic} within {wait_s:g} s")
        if link.acked[info.mid].is_failure:
            raise PublishRefused(
                f"the broker refused {topic} ({link.acked[info.mid]}): only an admin "
                "identity may write it"
            )
        progress(f"published {document.document} serial {document.serial} to {topic} "
                 "(retained, acknowledged)")  # fmt: skip
    finally:
        client.disconnect()
        client.loop_stop()


def _check_newer(
    retained: bytes | None, topic: str, prefix: str, document: SiteList, *, force: bool,
    progress: Callable[[str], None],
) -> None:  # fmt: skip
    if retained is None:
        progress(f"the broker holds no {document.document} list on {topic}")
        return
    try:
        held = catalogue.decode(topic, retained, prefix).payload
    except ContractError:
        progress(f"the broker's copy on {topic} is not a valid list; it is replaced")
        return
    serial = getattr(held, "serial", 0)
    progress(f"the broker holds {document.document} serial {serial}")
    if document.serial > serial:
        return
    if not force:
        raise PublishRefused(
            f"{document.document} serial {document.serial} is not above the broker's {serial}: "
            "nodes would ignore it (stale-serial); sign it with a higher --serial"
        )
    progress(f"--force: replacing serial {serial} with {document.serial}; nodes that hold "
             f"{serial} keep it, only new or reset nodes take this one")  # fmt: skip


def add_publish(tools: Any) -> None:
    """Register `gatepost fw publish`."""
    parser = tools.add_parser(
        "publish",
        help="publish a signed trust list or revocation list to the site's broker",
        description="Check FILE (from `gatepost fw trust-list` or `revocations`) as the "
        "nodes will, refuse it if its serial is not above the broker's retained one, publish "
        "it retained and wait for the broker's acknowledgement. Exit 0 published, 1 refused "
        "(nothing published), 2 broker unreachable or did not acknowledge. Use an admin "
        "identity (--cert/--key): only admins write the lists.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the signed list (JSON)")
    parser.add_argument("--site", type=slug_arg("site"), required=True)
    parser.add_argument(
        "--root-key", type=Path, metavar="PEM",
        help="the site root public key (or the key): strongly recommended; a list it does "
        "not verify, or one expired or not yet valid, is refused instead of published",
    )  # fmt: skip
    parser.add_argument(
        "--force", action="store_true",
        help="publish even if the broker holds this serial or a higher one (e.g. to replace "
        "a list signed by mistake with a far too high serial, for nodes provisioned later)",
    )  # fmt: skip
    parser.add_argument(
        "--wait", type=float, default=WAIT_DEFAULT_S, metavar="S",
        help=f"seconds to wait for the broker at each step (default: {WAIT_DEFAULT_S:g})",
    )  # fmt: skip
    add_broker_options(parser)
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from firmware_tools.provision import load_root_public_key
    from firmware_tools.site_pki import SiteError

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        site = Site(args.site, args.prefix)
        topic, document = load_list(args.file, site)
        say(f"[1/3] {args.file}: {document.document} serial {document.serial}, valid for {topic}")
        if args.root_key is None:
            say("      not checked against the root key (give --root-key)")
        else:
            key = load_root_public_key(args.root_key, args.root_key.parent)
            check_signed(document, key, datetime.now(UTC))
            say(f"      signed by the root key in {args.root_key} and in date")
        say("[2/3] reading what the broker holds")
        broker = endpoint(args)
        publish_list(broker, topic, document, prefix=site.prefix, force=args.force,
                     wait_s=args.wait, progress=lambda line: say(f"      {line}"))  # fmt: skip
        say("[3/3] published")
        return 0
    except BrokerFailed as exc:
        print(f"gatepost fw publish: error: {exc}", file=sys.stderr)
        return 2
    except (PublishRefused, SiteError) as exc:
        print(f"gatepost fw publish: refused: {exc}; nothing published", file=sys.stderr)
        return 1
