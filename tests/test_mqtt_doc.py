"""docs/mqtt.md is the reference for the contract: every topic, model and builder is in it,
and every example payload in it decodes through the real codec."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from edge.contract import catalogue, topics
from edge.errors import PayloadInvalid

DOC = Path(__file__).resolve().parent.parent / "docs" / "mqtt.md"
# An example is introduced by: Example (`Model`) on `concrete/topic`:  then a ```json block.
EXAMPLE = re.compile(r"Example \(`(\w+)`\) on `([^`]+)`:\s*\n```json\n(.*?)\n```", re.S)
FILTERS = {"everything", "shared", "kind_filters", "parse", "check_slug"}


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def examples(doc: str) -> list[tuple[str, str, str]]:
    return EXAMPLE.findall(doc)


@pytest.mark.parametrize("spec", catalogue.CATALOGUE.values(), ids=lambda s: s.kind.value)
def test_every_topic_is_documented(doc: str, spec: catalogue.TopicSpec) -> None:
    assert f"`{spec.pattern}`" in doc, f"docs/mqtt.md lacks the topic {spec.pattern}"
    assert f"topics.{spec.builder.__name__}(" in doc, "docs/mqtt.md lacks its builder"


def test_every_payload_model_has_a_doc_example(doc: str) -> None:
    documented = {name for name, _, _ in examples(doc)}
    models = {m.__name__ for spec in catalogue.CATALOGUE.values() for m in spec.models}
    assert models - documented == set(), "payload models without an example in docs/mqtt.md"


def test_every_doc_example_decodes_as_its_model(doc: str) -> None:
    found = examples(doc)
    assert found, "no examples found in docs/mqtt.md"
    for name, topic, body in found:
        message = catalogue.decode(topic, body)
        assert type(message.payload).__name__ == name, f"{topic}: example is not a {name}"


def test_every_topic_builder_has_a_catalogue_entry() -> None:
    builders = {
        name
        for name, fn in inspect.getmembers(topics, inspect.isfunction)
        if fn.__module__ == topics.__name__ and not name.startswith("_")
    }
    catalogued = {spec.builder.__name__ for spec in catalogue.CATALOGUE.values()}
    assert builders - FILTERS - catalogued == set()


def test_every_event_kind_and_alert_kind_is_documented(doc: str) -> None:
    for kind in [*topics.EventKind, *topics.AlertKind]:
        assert f"`{kind.value}`" in doc, f"docs/mqtt.md does not name the kind {kind.value}"


def test_qos_and_retain_in_doc_table_match_the_catalogue(doc: str) -> None:
    for spec in catalogue.CATALOGUE.values():
        row = next(
            (line for line in doc.splitlines() if line.startswith(f"| `{spec.pattern}` |")), None
        )
        assert row is not None, f"no table row for {spec.pattern}"
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == str(spec.qos), f"{spec.pattern}: doc says QoS {cells[2]}"
        assert cells[3] == ("yes" if spec.retained else "no"), f"{spec.pattern}: retained"


BAD_EXAMPLE = re.compile(
    r"```json\n\s*(\{[^`]*?\})\n\s*```\s*\n\s*On `([^`]+)`, `decode\(\)` raises:\s*\n\s*```text\n\s*(.*?)\n",
    re.S,
)


def test_the_bad_input_example_gives_the_error_the_doc_shows(doc: str) -> None:
    found = BAD_EXAMPLE.search(doc)
    assert found, "docs/mqtt.md lost its bad-input example"
    payload, topic, shown = found.groups()
    with pytest.raises(PayloadInvalid) as caught:
        catalogue.decode(topic, payload)
    assert str(caught.value) == shown
