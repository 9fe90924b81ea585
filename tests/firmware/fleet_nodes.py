"""A site's nodes in every state the fleet view tells apart, stored as the gateway stores them."""

from __future__ import annotations

from datetime import datetime, timedelta

from edge.contract.events import DeviceFault
from edge.contract.presence import Birth, Death, Health
from edge.contract.topics import Role
from gateway.config import GatewayConfig, SiteSection
from gateway.store import SqlStore
from gateway.store.records import InboundPresence
from gateway.store.settings import StoreSection
from tests.gateway.factory import Gates

CONFIG_HASH = "c0ffee" * 4
CONFIG_SERIAL = 8  # the signed config the gates g01 run (7 at birth); the others do not say
# Worst problem first, then by site and node: what `fw fleet` and the dashboard list.
ORDER = [
    ("north", "g04", ["offline"]),  # in the inventory, never heard from
    ("south", "g01", ["offline"]),  # shut down
    ("north", "g02", ["trust-stale"]),  # its trust list is three days old
    ("north", "g03", ["clock-skew"]),  # its clock runs two minutes ahead
    ("north", "d01", ["device-fault"]),  # a probe faulted
    ("north", "g01", []),  # well
]


def fleet_config(store: StoreSection) -> GatewayConfig:
    """North with gates g01 to g04 and depot d01, south with gate g01; the default limits
    (trust lists up to 48 h, clocks within 30 s); on `store` (either backend)."""
    return GatewayConfig(
        sites=(
            SiteSection(name="north", gates=("g01", "g02", "g03", "g04"), depots=("d01",)),
            SiteSection(name="south", gates=("g01",)),
        ),
        store=store,
    )


def _devices(role: Role) -> dict[str, str]:
    return {"probe": "ok"} if role is Role.DEPOT else {"scanner": "ok", "thermometer": "ok"}


def birth(
    site: str, node: str, at: datetime, trust_age_s: float | None, session: int = 1
) -> InboundPresence:
    """A node's birth at `at` (gateway and node time alike), all its devices ok."""
    role = Role.DEPOT if node.startswith("d") else Role.GATE
    devices = _devices(role)
    payload = Birth(
        session=session, node_time=at, role=role, version="1.4.2", config_hash=CONFIG_HASH,
        devices=devices, trust_list_age_s=None if role is Role.DEPOT else trust_age_s,
        heartbeat_s=10, config_serial=CONFIG_SERIAL - 1 if node == "g01" else None,
    )  # fmt: skip
    return InboundPresence(site, node, role, payload, at)


def _health(node: str, at: datetime, skew_s: float, **fields: object) -> InboundPresence:
    # A heartbeat says again what the birth said of devices and the trust list.
    role = Role.DEPOT if node.startswith("d") else Role.GATE
    payload = Health.model_validate({
        "node_time": at + timedelta(seconds=skew_s), "session": 1, "uptime_s": 600.0,
        "last_seq": 0, "outbox_depth": 3, "outbox_capacity": 10_000, "devices": _devices(role),
        "trust_list_age_s": None if role is Role.DEPOT else 60.0, **fields,
    })  # fmt: skip
    return InboundPresence("north", node, role, payload, at)


def seed_fleet(store: SqlStore, now: datetime) -> None:
    """Store births, heartbeats, a death and a device fault so that the nodes stand as ORDER
    says at `now`."""
    store.write([], presence=[
        birth("north", "g01", now, 60.0),
        birth("north", "g02", now, 72 * 3600.0),
        birth("north", "g03", now, 60.0),
        birth("north", "d01", now, None),
        birth("south", "g01", now, 60.0),
    ])  # fmt: skip
    store.write([], presence=[
        _health("g01", now, 0.4, config_serial=CONFIG_SERIAL),  # applied a newer one since
        _health("g03", now, 120.0),
        _health("d01", now, -0.2, devices={"probe": "fault"}),
        InboundPresence(
            "south", "g01", Role.GATE, Death(session=1, node_time=now, reason="shutdown"), now
        ),
    ])  # fmt: skip
    store.write([Gates("north", now).inbound(
        "d01", DeviceFault, device="probe", fault="timeout", state="raised", node_time=now
    )])  # fmt: skip
