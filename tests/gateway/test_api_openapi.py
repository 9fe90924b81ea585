"""Gateway API against its own OpenAPI schema: no generated request may cause a server error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import schemathesis

from edge.contract.topics import AlertKind
from gateway.access import hash_token
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.store import SqlStore
from gateway.store.records import AlarmDraft, DeadLetter
from tests.gateway.factory import Gates
from tests.openapi import boundaries, operations_of, random_cases

ADMIN_TOKEN = "gpt_schema-admin"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def seeded_alarm(gateway_context: GatewayContext, store: SqlStore, gates: Gates) -> str:
    """A few events of each kind, so lists are not empty; returns a raised alarm's id."""
    now = datetime.now(UTC)
    store.add_token(hash_token(ADMIN_TOKEN), "fuzz", "admin", now)
    held = gates.passage(outcome="hold")
    hold = gates.hold(held)
    store.write(
        [gates.passage(), gates.passage("g02", subject="vehicle", occupants=2), held, hold,
         gates.resolved(hold), gates.registration(), gates.disinfection(), gates.shift()],
        dead=[DeadLetter("gatepost/north/g01/event", b"\x00junk", "not-cbor", now)],
    )  # fmt: skip
    alarm = gateway_context.alarms.raise_alarm(
        AlarmDraft(kind=AlertKind.FEVER, site="north", node="g01", subject=held.event.event_id,
                   severity="warning", message="fever hold at g01")
    )  # fmt: skip
    assert alarm is not None
    return alarm.alarm_id


@pytest.fixture
def api_schema(gateway_context: GatewayContext, seeded_alarm: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(gateway_context))
    # Event streams never end on their own; a request to one would hang the run.
    return schema.exclude(path_regex="stream")


# One test over every operation, in subtests: schemathesis' own pytest integration
# (`schemathesis.pytest.from_fixture`) fails under pytest 9, and the schema needs this
# test's store.
def test_api__no_generated_request_is_a_server_error(
    api_schema: schemathesis.BaseSchema, seeded_alarm: str, subtests: pytest.Subtests
) -> None:
    operations = operations_of(api_schema)
    labels = {operation.label for operation in operations}
    assert {"GET /api/passages", "POST /api/alarms/{alarm_id}/clear", "GET /metrics"} <= labels
    real = {"alarm_id": seeded_alarm, "site": "north", "node": "g01"}
    for operation in operations:
        with subtests.test(msg=f"{operation.label} (boundaries)"):
            boundaries(api_schema, operation, ADMIN)
        with subtests.test(msg=f"{operation.label} (random)"):
            random_cases(operation, real, ADMIN)
