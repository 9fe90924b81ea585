"""The console against its own OpenAPI schema, on a real checkpoint: no request is a server error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis

from edge.gate.console.app import create_app
from edge.gate.views import Registration
from simulators.site import SiteKit
from tests.gate.test_checkpoint import Clock, Gate, start_gate
from tests.openapi import boundaries, operations_of, random_cases


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    clock = Clock(datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0))
    kit = SiteKit(tmp_path / "site")
    running = start_gate(tmp_path, kit, clock)
    running.outbox.capacity = 100_000  # the run records many events
    running.scan(kit.code("badge", now=clock.wall, volunteer="v017"))
    running.temperature(38.6)
    running.scan(kit.code("green", now=clock.wall))  # one open hold to act on
    yield running
    running.io.close()


def test_console__no_generated_request_is_a_server_error(
    gate: Gate, subtests: pytest.Subtests
) -> None:
    app = create_app(gate.checkpoint)
    # Event streams never end on their own; a request to one would hang the run.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex="stream")
    hold_id = gate.checkpoint.update().holds[0].hold_id
    operations = operations_of(schema)
    assert any("registrations" in operation.label for operation in operations)
    for operation in operations:
        with subtests.test(msg=f"{operation.label} (boundaries)"):
            boundaries(schema, operation, {})
        with subtests.test(msg=f"{operation.label} (random)"):
            random_cases(operation, {"hold_id": hold_id}, {})


def test_console__a_passport_number_registers(gate: Gate) -> None:
    # The form takes 6-18 letters or digits; the event must take what the form took.
    form = Registration(name="李四", id_number="G1234567A")
    event_id = gate.checkpoint.register(form, volunteer_id="v017")
    (registration,) = [e for e in gate.events() if getattr(e, "kind", "") == "registration"]
    assert registration.event_id == event_id  # type: ignore[attr-defined]
    assert registration.id_last4 == "567A"  # type: ignore[attr-defined]
