"""Nodes: every gate and depot the gateway has heard from or expects, and how each is doing."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from edge.contract.topics import Role
from gateway.api.auth import Caller, ContextDep, require
from gateway.api.context import GatewayContext
from gateway.api.errors import ApiError, responses
from gateway.api.routes_passages import SLUG
from gateway.fleet import FleetNode, fleet_node, fleet_order
from gateway.store.records import NodeFaultRecord, NodeRecord

router = APIRouter(prefix="/api/nodes", tags=["nodes"])

NEVER_SEEN = "never-seen"  # offline_reason of an inventory node that has sent nothing yet

# Depot staff see their depots' nodes (Caller.sees_node); the command center every node.
Reader = Annotated[Caller, Depends(require("command", "depot"))]
Admin = Annotated[Caller, Depends(require())]  # the fleet view: technicians' data


class NodeView(NodeRecord):
    """A node as the command center sees it: its record, and whether it is in the inventory."""

    expected: bool = Field(description="listed under its site in the gateway's config")
    trust_list_age_now_s: float | None = Field(
        None, description="the trust list's age now: the reported age grown since the report"
    )


def _inventory(ctx: GatewayContext, site: str | None) -> dict[tuple[str, str], Role]:
    listed = ctx.config.inventory
    return listed if site is None else {k: v for k, v in listed.items() if k[0] == site}


def _never_seen(site: str, node: str, role: Role) -> NodeView:
    # A node that never said anything is offline to the command center, not absent:
    # a gate that never came up is exactly what they must see.
    return NodeView(
        site=site, node=node, role=role, online=False, offline_reason=NEVER_SEEN,
        seq_contiguous=0, seq_max=0, expected=True,
    )  # fmt: skip


def _view(record: NodeRecord, listed: dict[tuple[str, str], Role], now: datetime) -> NodeView:
    return NodeView(
        **record.model_dump(),
        expected=(record.site, record.node) in listed,
        trust_list_age_now_s=record.trust_age_now(now),
    )


@router.get(
    "",
    response_model=list[NodeView],
    summary="Every node, heard from or expected",
    responses=responses(),
)
def list_nodes(
    ctx: ContextDep,
    caller: Reader,
    site: Annotated[str | None, Query(pattern=SLUG, description="only this site")] = None,
) -> list[NodeView]:
    """Nodes by site and name; inventory nodes that never reported are offline (`never-seen`).

    Nodes that reported but are not in the inventory are listed with `expected` false. A
    depot token sees its depots only.
    """
    listed = _inventory(ctx, site)
    views = {(r.site, r.node): _view(r, listed, ctx.clock()) for r in ctx.store.nodes(site)}
    for key, role in listed.items():
        views.setdefault(key, _never_seen(*key, role))
    return [views[key] for key in sorted(views) if caller.sees_node(*key)]


@router.get(
    "/fleet",
    response_model=list[FleetNode],
    summary="The fleet: every node's software and health, problems first (admin)",
    responses=responses(),
)
def fleet(
    ctx: ContextDep,
    caller: Admin,
    site: Annotated[str | None, Query(pattern=SLUG, description="only this site")] = None,
) -> list[FleetNode]:
    """Every node, heard from or expected, with version, config hash, trust list age, clock
    skew, outbox depth, devices and open faults, and its `problems` judged by the alarm
    limits (offline, trust-stale, clock-skew, device-fault): worst first, then by name."""
    now = ctx.clock()
    listed = _inventory(ctx, site)
    records = {(r.site, r.node): r for r in ctx.store.nodes(site)}
    for key, role in listed.items():
        records.setdefault(key, _never_seen(*key, role))
    faults: dict[tuple[str, str], list[NodeFaultRecord]] = {}
    for fault in ctx.store.node_faults(site):
        faults.setdefault((fault.site, fault.node), []).append(fault)
    limits = ctx.config.alarms
    rows = [
        fleet_node(r, expected=k in listed, faults=faults.get(k, []), limits=limits, now=now)
        for k, r in records.items()
    ]
    return sorted(rows, key=fleet_order)


@router.get(
    "/{site}/{node}",
    response_model=NodeView,
    summary="One node",
    responses=responses(404),
)
def get_node(
    ctx: ContextDep,
    caller: Reader,
    site: Annotated[str, Path(pattern=SLUG)],
    node: Annotated[str, Path(pattern=SLUG)],
) -> NodeView:
    """One node's status; 404 `unknown-node` if it neither reported nor is in the inventory,
    or is not one of a depot token's depots."""
    if not caller.sees_node(site, node):
        raise ApiError(404, "unknown-node", f"no node {node!r} at site {site!r}")
    listed = _inventory(ctx, site)
    record = ctx.store.node(site, node)
    if record is not None:
        return _view(record, listed, ctx.clock())
    role = listed.get((site, node))
    if role is None:
        raise ApiError(404, "unknown-node", f"no node {node!r} at site {site!r}")
    return _never_seen(site, node, role)
