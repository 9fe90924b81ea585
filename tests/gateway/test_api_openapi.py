"""Gateway API against its own OpenAPI schema: no generated request may cause a server error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err

from edge.contract.topics import AlertKind
from gateway.access import hash_token
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.store import SqliteStore
from gateway.store.records import AlarmDraft, DeadLetter
from tests.gateway.factory import Gates

ADMIN_TOKEN = "gpt_schema-admin"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
Operation = schemathesis.APIOperation[Any, Any, Any, Any]


@pytest.fixture
def seeded_alarm(gateway_context: GatewayContext, store: SqliteStore, gates: Gates) -> str:
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
    operations = _operations(api_schema)
    labels = {operation.label for operation in operations}
    assert {"GET /api/passages", "POST /api/alarms/{alarm_id}/clear", "GET /metrics"} <= labels
    real = {"alarm_id": seeded_alarm, "site": "north", "node": "g01"}
    for operation in operations:
        with subtests.test(msg=f"{operation.label} (boundaries)"):
            _boundaries(api_schema, operation)
        with subtests.test(msg=f"{operation.label} (random)"):
            _random(operation, real)


def _operations(schema: schemathesis.BaseSchema) -> list[Operation]:
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        found.append(result.ok())
    return found


def _boundaries(schema: schemathesis.BaseSchema, operation: Operation) -> None:
    # Schemathesis' coverage phase: each parameter at and just past its limits, wrong
    # types, missing required ones, unexpected methods. Deterministic, about a second.
    config = schema.config.generation_for(operation=operation, phase="coverage")
    for case in schema.iter_coverage_cases(
        operation, generation_modes=list(GenerationMode), generation_config=config
    ):
        case.call_and_validate(headers=ADMIN, checks=[not_a_server_error])


def _random(operation: Operation, real: dict[str, str]) -> None:
    # Valid and invalid inputs alike, some on ids that exist (a random alarm id is a 404).
    known = {
        name: value
        for name, value in real.items()
        if any(p.name == name for p in operation.path_parameters)
    }
    strategies: list[st.SearchStrategy[Any]] = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    if known:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known))

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        # The store is per test, not per example: examples see each other's writes
        # (audit rows, acknowledged alarms), which is fine for "never a 5xx".
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case[Operation]) -> None:
        case.call_and_validate(headers=ADMIN, checks=[not_a_server_error])

    call()
