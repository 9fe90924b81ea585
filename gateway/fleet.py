"""The fleet as a technician sees it: every node's software and health, and what is wrong."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from edge.contract.base import DEVICES_MAX
from edge.contract.topics import Role
from gateway.config import AlarmSection
from gateway.store.records import NodeFaultRecord, NodeRecord

# What can be wrong with a node, worst first: the fleet is sorted by its worst one.
Problem = Literal["offline", "trust-stale", "clock-skew", "device-fault"]
PROBLEMS: tuple[Problem, ...] = ("offline", "trust-stale", "clock-skew", "device-fault")
FAULTS_SHOWN = 20  # open faults listed per node; a node with more has a problem either way
HEALTHY_DEVICE_STATES = frozenset({"ok", "disabled"})


class FleetNode(BaseModel):
    """One node's row in the fleet view."""

    site: str
    node: str
    role: Role
    expected: bool = Field(description="listed under its site in the gateway's config")
    online: bool
    offline_reason: str | None = Field(
        None, description="lost, shutdown, heartbeat, never-seen; none while online"
    )
    last_seen: datetime | None = Field(None, description="gateway time of its last message")
    version: str | None = Field(None, description="software version from its birth")
    config_hash: str | None = Field(None, description="the config it runs, from its birth")
    config_serial: int | None = Field(
        None, description="serial of the signed node config it runs; 0: its config file only"
    )
    trust_list_age_s: float | None = Field(
        None, description="the trust list's age now (gates); none: unknown or no list"
    )
    clock_skew_s: float | None = Field(None, description="node clock minus gateway clock")
    outbox_depth: int | None = Field(None, description="events the gateway has not confirmed")
    devices: dict[str, str] = Field(
        default_factory=dict, max_length=DEVICES_MAX, description="device: ok, fault, …"
    )
    faults: list[str] = Field(
        default_factory=list, max_length=FAULTS_SHOWN,
        description=f"open device faults as device/fault, at most {FAULTS_SHOWN}",
    )  # fmt: skip
    problems: list[Problem] = Field(
        default_factory=list, max_length=len(PROBLEMS), description="worst first; none: well"
    )


def fleet_node(
    record: NodeRecord, *, expected: bool, faults: list[NodeFaultRecord], limits: AlarmSection,
    now: datetime,
) -> FleetNode:  # fmt: skip
    """The fleet row of a node's record, judged by the same limits the alarms use.

    Args:
        record: the node as stored (a never-seen inventory node: online false, no times).
        expected: whether the site's inventory lists it.
        faults: its open device faults.
        limits: the gateway's alarm limits (trust list age, clock skew).
        now: the gateway's time, to age the trust list.
    """
    trust_age = record.trust_age_now(now)
    problems: list[Problem] = []
    if not record.online:
        problems.append("offline")
    # Only gates check codes against a trust list, as the trust-stale alarm does; a node
    # never heard from has no list to judge.
    heard = record.last_seen is not None
    stale = trust_age is None or trust_age > limits.trust_max_age_h * 3600
    if record.role is Role.GATE and heard and stale:
        problems.append("trust-stale")
    if record.clock_skew_s is not None and abs(record.clock_skew_s) > limits.clock_skew_max_s:
        problems.append("clock-skew")
    unwell = any(state not in HEALTHY_DEVICE_STATES for state in record.devices.values())
    if faults or unwell:
        problems.append("device-fault")
    return FleetNode(
        site=record.site, node=record.node, role=record.role, expected=expected,
        online=record.online, offline_reason=record.offline_reason,
        last_seen=record.last_seen, version=record.version, config_hash=record.config_hash,
        config_serial=record.config_serial,
        trust_list_age_s=trust_age, clock_skew_s=record.clock_skew_s,
        outbox_depth=record.outbox_depth, devices=record.devices,
        faults=[f"{f.device}/{f.fault}" for f in faults[:FAULTS_SHOWN]], problems=problems,
    )  # fmt: skip


def fleet_order(row: FleetNode) -> tuple[int, str, str]:
    """Sort key: nodes with the worst problem first, well ones last, then by site and name."""
    worst = min((PROBLEMS.index(p) for p in row.problems), default=len(PROBLEMS))
    return (worst, row.site, row.node)
