"""`gatepost fw config push NODE`: sign a gate's live config, publish it, wait for its answer.

The tool reads what the broker holds for the node (the retained signed config, its
status) to learn the serial it runs, lays the new fields over the retained config's
sections, signs the result with the site root key at the next serial, publishes it
retained, and waits for the node's answer: a `Health` or `Birth` whose `config_serial`
is the new serial (applied) or whose `config_refused` names it (refused). Technicians'
identities read no events, so the answer is taken from those, never from the
`device-fault` event the gateway also gets.

A refused document is taken back (the retained copy before it is put back, or the topic
cleared), so that no node takes it later; one that is not answered stays retained, and
the node takes it when it comes back.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as paho
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from edge.cli import add_broker_options, endpoint, slug_arg
from edge.contract import catalogue, topics
from edge.contract.documents import (
    NodeConfigBody,
    RefusalReason,
    SignedNodeConfig,
)
from edge.contract.presence import Birth, Death, Health
from edge.contract.topics import Role, Site
from edge.credentials.issuer import Signer
from edge.credentials.trust import DocumentRefused, new_signed, root_keys_for, verify_document
from edge.errors import ContractError
from edge.mqtt import Endpoint, publish
from firmware_tools.broker_exchange import BrokerExchange
from firmware_tools.config_sections import (
    ConfigPushError,
    Sections,
    check_sections,
    load_sections,
    parse_sets,
)

WAIT_DEFAULT_S = 60.0
WAIT_MAX_S = 3600.0
CONNECT_TIMEOUT_S = 10.0
# After the SUBACK, how long the broker has to deliver the retained config and status.
RETAINED_SETTLE_S = 1.0
# Heartbeats kept while waiting: one a second for the longest wait.
REPORTS_MAX = int(WAIT_MAX_S)

Outcome = Literal["applied", "refused", "superseded", "no-answer"]


@dataclass(frozen=True)
class PushResult:
    """What became of one pushed config.

    Attributes:
        node: the gate it was for.
        serial: the serial it was signed with.
        outcome: `applied`; `refused` (see `reason`); `superseded` (the node took a newer
            serial meanwhile); `no-answer` within the wait (the document stays retained).
        node_serial: the serial the node last said it runs; None if it said nothing.
        reason: why it was refused.
        detail: the node's words for the refusal.
        restored: a refused document was taken back off the broker.
    """

    node: str
    serial: int
    outcome: Outcome
    node_serial: int | None = None
    reason: RefusalReason | None = None
    detail: str | None = None
    restored: bool = False

    @property
    def exit_code(self) -> int:
        """0 applied, 2 no answer in time, 1 anything else."""
        return {"applied": 0, "no-answer": 2}.get(self.outcome, 1)

    def describe(self) -> str:
        """One line for the technician."""
        if self.outcome == "applied":
            return f"{self.node}: applied config serial {self.serial}"
        if self.outcome == "refused":
            back = "; taken back off the broker" if self.restored else ""
            why = f": {self.detail}" if self.detail else ""
            return f"{self.node}: refused config serial {self.serial} ({self.reason}){why}{back}"
        if self.outcome == "superseded":
            return (
                f"{self.node}: runs config serial {self.node_serial}, newer than {self.serial} "
                "(pushed by someone else meanwhile); push again to change it"
            )
        return (
            f"{self.node}: no answer in time; config serial {self.serial} stays retained on "
            "the broker and the node takes it when it comes back"
        )


def load_root_key(path: Path) -> Ed25519PrivateKey:
    """The site root key (Ed25519, PEM).

    Raises:
        CredentialError: unreadable, or no private key.
        ConfigPushError: a private key, but not Ed25519.
    """
    key = Signer.load(path, issuer="").key
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigPushError(f"{path}: the site root key must be Ed25519 (keygen --alg eddsa)")
    return key


# The push.
class _Exchange(BrokerExchange):
    """The messages of one push, gathered on paho's thread and read on the caller's."""

    def __init__(self, site: Site, node: str) -> None:
        super().__init__()
        self.config_topic = topics.config(site, node)
        gate = site.node(Role.GATE, node)
        self.status_topic = topics.status(gate)
        self.health_topic = topics.health(gate)
        self.prefix = site.prefix
        self.retained: bytes | None = None  # the config the broker held before the push
        self.status: Birth | Death | None = None
        self.serial_before: int | None = None  # the newest serial the node said it ran
        self.answers: list[Birth | Health] = []  # what the node said once we published
        self.pushing = False

    def on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        with self.changed:
            if message.topic == self.config_topic:
                if not self.pushing and message.retain:
                    self.retained = bytes(message.payload) or None
                return
            try:
                payload = catalogue.decode(message.topic, message.payload, self.prefix).payload
            except ContractError:
                return  # `gatepost watch` is the tool that reports broken messages
            if isinstance(payload, Birth | Death) and message.topic == self.status_topic:
                self.status = payload
            if isinstance(payload, Birth | Health):
                if self.pushing:
                    if len(self.answers) < REPORTS_MAX:
                        self.answers.append(payload)
                elif payload.config_serial is not None:
                    self.serial_before = max(self.serial_before or 0, payload.config_serial)
            self.changed.notify_all()

    def node_serial(self) -> int | None:
        """The newest serial the node said it runs, before or after the push."""
        with self.changed:
            serials = [r.config_serial for r in self.answers if r.config_serial is not None]
            if self.serial_before is not None:
                serials.append(self.serial_before)
        return max(serials) if serials else None


def push_config(
    broker: Endpoint,
    site: Site,
    node: str,
    sections: Mapping[str, Mapping[str, Any]],
    root_key: Ed25519PrivateKey,
    *,
    serial: int | None = None,
    replace: bool = False,
    wait_s: float = WAIT_DEFAULT_S,
    progress: Callable[[str], None] = lambda _line: None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PushResult:
    """Sign `sections` for gate `node`, publish them retained and wait for its answer.

    Args:
        broker: the site's broker, as a technician's identity (it writes `config/+`).
        site: the node's site (and topic prefix).
        node: the gate's name.
        sections: live sections (`policy`, `report`) and their fields.
        root_key: the site root key the node trusts.
        serial: sign with this serial; None: one above any the node or broker holds.
        replace: start from `sections` alone; else they are laid over the retained config's.
        wait_s: how long to wait for the node's answer once published.
        progress: called with a line for each step.
        clock: aware wall clock, for `issued_at`.

    Returns:
        What the node did with it; `no-answer` if it said nothing within `wait_s`.

    Raises:
        ConfigPushError: bad sections or serial, or the broker refused the connection or
            the topics: nothing was published.
    """
    checked = check_sections(sections)
    if not 0 < wait_s <= WAIT_MAX_S:
        raise ConfigPushError(f"--wait: between 0 and {WAIT_MAX_S:.0f} s, got {wait_s}")
    if serial is not None and serial < 1:
        raise ConfigPushError(f"--serial: 1 or more, got {serial}")
    exchange = _Exchange(site, node)
    try:
        client = exchange.start("gatepost-config-push", broker)
    except OSError as exc:
        raise ConfigPushError(f"broker {broker}: {exc}") from None
    try:
        _subscribe(client, exchange, broker)
        return _push(
            client, exchange, node=node, sections=checked, root_key=root_key, serial=serial,
            replace=replace, wait_s=wait_s, progress=progress, clock=clock,
        )  # fmt: skip
    finally:
        client.disconnect()
        client.loop_stop()


def _subscribe(client: paho.Client, exchange: _Exchange, broker: Endpoint) -> None:
    if not exchange.wait(lambda: exchange.connected is not None, CONNECT_TIMEOUT_S):
        raise ConfigPushError(f"broker {broker} did not answer within {CONNECT_TIMEOUT_S:.0f} s")
    if exchange.connected is not None and exchange.connected.is_failure:
        raise ConfigPushError(f"broker {broker} refused the connection: {exchange.connected}")
    wanted = [exchange.config_topic, exchange.status_topic, exchange.health_topic]
    client.subscribe([(topic, 1) for topic in wanted])
    if not exchange.wait(lambda: exchange.subscribed is not None, CONNECT_TIMEOUT_S):
        raise ConfigPushError(f"broker {broker} did not answer the subscription")
    refused = [t for t, r in zip(wanted, exchange.subscribed or [], strict=False) if r.is_failure]
    if refused:
        raise ConfigPushError(
            f"the broker will not let this identity read {', '.join(refused)}: "
            "use a technician's (admin) certificate"
        )
    time.sleep(RETAINED_SETTLE_S)  # retained copies follow the SUBACK


def _push(
    client: paho.Client, exchange: _Exchange, *, node: str, sections: Sections,
    root_key: Ed25519PrivateKey, serial: int | None, replace: bool, wait_s: float,
    progress: Callable[[str], None], clock: Callable[[], datetime],
) -> PushResult:  # fmt: skip
    now = clock()
    previous = _retained_document(exchange.retained, exchange.config_topic, exchange.prefix)
    node_serial = exchange.node_serial()
    _say_where(exchange.status, node_serial, node, progress)
    if previous is not None:
        progress(f"the broker holds config serial {previous.serial} for {node}")
    held = max(node_serial or 0, previous.serial if previous else 0)
    if serial is None:
        serial = held + 1
    elif serial in (node_serial, previous.serial if previous else None):
        raise ConfigPushError(
            f"--serial {serial}: {node} runs or the broker holds that serial already, and a "
            f"node ignores a serial equal to its own; give {held + 1} or leave --serial out"
        )
    config = sections
    if not replace and previous is not None and _ours(previous, root_key, now):
        kept = {s: f for s, f in previous.body.config.items() if isinstance(f, dict)}
        config = {s: {**kept.get(s, {}), **f} for s, f in {**kept, **sections}.items()}
        if kept:
            progress(f"keeping the other fields of serial {previous.serial} (--replace drops them)")
        config = check_sections(config)
    try:
        document = new_signed(
            SignedNodeConfig, NodeConfigBody(node=node, config=config), serial, now, root_key
        )
    except ValidationError as exc:
        raise ConfigPushError(f"config: {exc.errors()[0]['msg']}") from None
    with exchange.changed:
        exchange.pushing = True
    _publish(client, exchange.config_topic, document)
    progress(f"published config serial {serial} to {exchange.config_topic} (retained)")
    progress(f"waiting up to {wait_s:g} s for {node}'s answer")
    result: PushResult | None = None

    def answered() -> bool:
        nonlocal result
        result = _answer(exchange.answers, node, document, held)
        return result is not None

    exchange.wait(answered, wait_s)
    if result is None:
        return PushResult(node, serial, "no-answer", exchange.node_serial())
    if result.outcome == "refused":
        _take_back(client, exchange)
        return dataclasses.replace(result, restored=True)
    return result


def _answer(
    reports: Sequence[Birth | Health], node: str, document: SignedNodeConfig, held: int
) -> PushResult | None:
    """The node's answer to `document` among `reports`, if it has given one.

    A refusal names the document by serial and issue time (one pushed twice is told
    apart); an application shows as a serial above what was held before the push.
    """
    serial = document.serial
    for report in reports:
        refusal = report.config_refused
        if refusal and (refusal.serial, refusal.issued_at) == (serial, document.issued_at):
            return PushResult(node, serial, "refused", report.config_serial, refusal.reason,
                              refusal.detail)  # fmt: skip
        running = report.config_serial
        if running is not None and running > held and running >= serial:
            outcome: Outcome = "applied" if running == serial else "superseded"
            return PushResult(node, serial, outcome, running)
    return None


def _say_where(
    status: Birth | Death | None, node_serial: int | None, node: str,
    progress: Callable[[str], None],
) -> None:  # fmt: skip
    if status is None:
        progress(f"{node} has never said it is online on this broker (is the name right?)")
    elif isinstance(status, Death):
        progress(f"{node} is offline ({status.reason} at {status.node_time.isoformat()})")
    else:
        runs = "its config file only" if not node_serial else f"config serial {node_serial}"
        progress(f"{node} is online, running {runs}")


def _retained_document(data: bytes | None, topic: str, prefix: str) -> SignedNodeConfig | None:
    if data is None:
        return None
    try:
        payload = catalogue.decode(topic, data, prefix).payload
    except ContractError:
        return None  # a broken retained copy is replaced, and its serial never counted
    return payload if isinstance(payload, SignedNodeConfig) else None


def _ours(document: SignedNodeConfig, root_key: Ed25519PrivateKey, now: datetime) -> bool:
    """Whether `document` is signed by `root_key`: only then are its fields carried over."""
    try:
        verify_document(document, root_keys_for([root_key.public_key()]), now)
    except DocumentRefused as refused:
        return refused.reason in ("expired", "not-yet-valid")
    return True


def _publish(client: paho.Client, topic: str, document: SignedNodeConfig) -> None:
    info = publish(client, topic, document)
    info.wait_for_publish(CONNECT_TIMEOUT_S)
    if not info.is_published():
        raise ConfigPushError(f"the broker did not acknowledge {topic}")


def _take_back(client: paho.Client, exchange: _Exchange) -> None:
    """Put the retained copy from before the push back as received, or clear the topic."""
    info = client.publish(exchange.config_topic, exchange.retained or b"", qos=1, retain=True)
    info.wait_for_publish(CONNECT_TIMEOUT_S)


# The command.
def add_config(tools: Any) -> None:
    """Register `gatepost fw config push`."""
    config = tools.add_parser("config", help="push a signed config to a gate and wait for it")
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    push = actions.add_parser(
        "push",
        help="sign live config sections for a gate, publish them, print the gate's answer",
        description="Sign the given sections with the site root key at the next serial, "
        "publish them retained to the gate's config topic and wait for its answer: applied, "
        "refused (the retained config before is put back) or no answer in time (exit 2; the "
        "document stays retained and the gate takes it when it comes back). Fields are laid "
        "over the retained config's unless --replace. See docs/config-push.md.",
    )
    push.add_argument("node", type=slug_arg("node"), metavar="NODE", help="the gate, e.g. g01")
    push.add_argument("--site", type=slug_arg("site"), required=True)
    push.add_argument("--root-key", type=Path, required=True, help="Ed25519 site root key (PEM)")
    push.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="a field to set; VALUE is JSON (37.5, true, null) or text; repeat for more",
    )  # fmt: skip
    push.add_argument("--file", type=Path, help="YAML file of sections (the --set apply over it)")
    push.add_argument("--replace", action="store_true", help="drop the retained config's fields")
    push.add_argument("--serial", type=int, help="sign with this serial (default: the next one)")
    push.add_argument(
        "--wait", type=float, default=WAIT_DEFAULT_S, metavar="S",
        help=f"seconds to wait for the gate's answer (default: {WAIT_DEFAULT_S:g})",
    )  # fmt: skip
    add_broker_options(push)
    push.set_defaults(run=_run_push)


def _run_push(args: argparse.Namespace) -> int:
    sections = load_sections(args.file) if args.file else {}
    for section, fields in parse_sets(args.sets).items():
        sections[section] = {**sections.get(section, {}), **fields}
    check_sections(sections)  # before the key and the broker: a typo costs nothing
    result = push_config(
        endpoint(args), Site(args.site, args.prefix), args.node, sections,
        load_root_key(args.root_key), serial=args.serial, replace=args.replace,
        wait_s=args.wait, progress=lambda line: print(line, flush=True),
    )  # fmt: skip
    print(result.describe(), flush=True)
    return result.exit_code
