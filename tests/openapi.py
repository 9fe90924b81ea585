"""Property-based runs over an app's own OpenAPI schema (schemathesis), shared by its tests."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err

Operation = schemathesis.APIOperation[Any, Any, Any, Any]


def operations_of(schema: schemathesis.BaseSchema) -> list[Operation]:
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        found.append(result.ok())
    return found


def boundaries(
    schema: schemathesis.BaseSchema, operation: Operation, headers: dict[str, str]
) -> None:
    # Schemathesis' coverage phase: each parameter at and just past its limits, wrong
    # types, missing required ones, unexpected methods. Deterministic, about a second.
    config = schema.config.generation_for(operation=operation, phase="coverage")
    for case in schema.iter_coverage_cases(
        operation, generation_modes=list(GenerationMode), generation_config=config
    ):
        case.call_and_validate(headers=headers, checks=[not_a_server_error])


def random_cases(operation: Operation, real: dict[str, str], headers: dict[str, str]) -> None:
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
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    call()
