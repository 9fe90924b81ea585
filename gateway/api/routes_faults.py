"""Device faults the nodes raised and have not cleared: scanners, thermometers, outboxes,
and the signed documents a node refused."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gateway.api.auth import Caller, ContextDep, require
from gateway.api.errors import responses
from gateway.api.routes_passages import SLUG, SiteParam
from gateway.store.records import NodeFaultRecord

router = APIRouter(prefix="/api/faults", tags=["faults"])

NodeParam = Annotated[str | None, Query(pattern=SLUG, description="only this node")]


@router.get(
    "",
    response_model=list[NodeFaultRecord],
    summary="Open device faults of every node",
    responses=responses(),
)
def list_faults(
    ctx: ContextDep,
    # Whoever may see a node may see what is wrong with it (a depot token: its depots).
    caller: Annotated[Caller, Depends(require("command", "depot"))],
    site: SiteParam = None,
    node: NodeParam = None,
) -> list[NodeFaultRecord]:
    """Each device fault a node raised and has not cleared, by site, node, device and fault.

    `raised_at` is the node's time of its newest raise (a refused document is raised
    again with each refusal, its reason in `detail`). Faults a node raised before it lost
    its state (a new `outbox_id`) are not listed: it raises again what is still wrong.
    """
    return [f for f in ctx.store.node_faults(site, node) if caller.sees_node(f.site, f.node)]
