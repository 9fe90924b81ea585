"""Escalation: an alarm nobody acknowledged within alarms.escalate_after_min is sent once more,
marked, for every kind of alarm; kept in the store, so a restart never sends it twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from edge.contract import catalogue, topics
from edge.contract.base import new_event_id
from edge.contract.command import Alert
from edge.contract.events import Passage, Registration
from edge.contract.topics import AlertKind, EventKind, Role
from edge.mqtt import publish
from firmware_tools.site_pki import IdentityRole
from gateway.alarm_cases import alarm_cases
from gateway.alarms import AlarmBook, draft
from gateway.api.context import GatewayContext
from gateway.config import AlarmSection, GatewayConfig, HttpSection, SiteSection
from gateway.live import LiveFeed
from gateway.rules import AlarmRules
from gateway.store import open_store
from gateway.store.settings import StoreSection
from simulators.broker import PrivateBroker
from tests.conftest import Subscriber, connect, gateway_broker, identity, running_gateway
from tests.gateway.factory import ID_HASH, Gates
from tests.gateway.test_api_access import bearer, open_api

T0 = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)


class Desk:
    """The gateway's alarm book and rules over a real store, on a clock the test moves."""

    def __init__(self, store: StoreSection, escalate_after_min: float = 10.0) -> None:
        self.config = GatewayConfig(
            sites=(SiteSection(name="north", gates=("g01",), depots=("d01",)),),
            store=store,
            alarms=AlarmSection(escalate_after_min=escalate_after_min, heartbeats_missed=100),
        )
        self.now = T0
        self.alerts: list[Alert] = []
        self.open()

    def open(self) -> None:
        self.store = open_store(self.config.store)
        self.book = AlarmBook(self.store, self.alerts.append, LiveFeed(), lambda: self.now)
        self.rules = AlarmRules(self.config, self.store, self.book, lambda: self.now, T0)

    def restart(self) -> None:
        self.store.close()
        self.open()

    def at(self, minutes: float) -> Desk:
        self.now = T0 + timedelta(minutes=minutes)
        return self

    def raise_offline(self) -> str:
        raised = self.book.raise_alarm(
            draft(AlertKind.NODE_OFFLINE, "node-offline.lost", "north", "d01", "critical")
        )
        assert raised is not None
        return raised.alarm_id

    def escalated(self) -> list[Alert]:
        return [a for a in self.alerts if a.escalated_at is not None and a.state == "raised"]


@pytest.fixture
def desk(store_section: StoreSection) -> Iterator[Desk]:
    made = Desk(store_section)
    yield made
    made.store.close()


@pytest.mark.parametrize(
    ("escalate_after_min", "checked_at_min", "meanwhile", "escalated"),
    [
        (10, 9, None, False),
        (10, 10, None, True),  # at the limit
        (10, 30, None, True),
        (10, 30, "acknowledged", False),  # someone saw it in time
        (10, 30, "cleared", False),
        (0, 24 * 60, None, False),  # 0: escalation off
    ],
)
def test_escalation__only_a_raised_alarm_nobody_acknowledged_in_time(
    store_section: StoreSection, escalate_after_min: float, checked_at_min: float,
    meanwhile: str | None, escalated: bool,
) -> None:  # fmt: skip
    desk = Desk(store_section, escalate_after_min)
    alarm_id = desk.raise_offline()
    if meanwhile == "acknowledged":
        desk.at(5).book.acknowledge(alarm_id, "duty-officer")
    elif meanwhile == "cleared":
        desk.at(5).book.clear(alarm_id, "duty-officer")
    desk.at(checked_at_min).rules.check()
    assert [a.alert_id for a in desk.escalated()] == ([alarm_id] if escalated else [])
    assert (desk.store.alarm(alarm_id).escalated_at is not None) == escalated
    desk.store.close()


def test_escalation__sent_once_across_checks_and_a_restart(desk: Desk) -> None:
    alarm_id = desk.raise_offline()
    for minute in (10, 11, 60):
        desk.at(minute).rules.check()
    desk.restart()
    desk.at(70).rules.check()
    assert [(a.alert_id, a.state, a.at, a.escalated_at) for a in desk.escalated()] == [
        (alarm_id, "raised", desk.at(10).now, desk.at(10).now)
    ]
    desk.at(80).book.acknowledge(alarm_id, "duty-officer")
    last = desk.alerts[-1]
    assert (last.state, last.escalated_at) == ("acknowledged", T0 + timedelta(minutes=10))
    desk.at(200).rules.check()
    assert len(desk.escalated()) == 1


def test_escalation__every_kind_of_alarm_each_on_its_own_time(desk: Desk) -> None:
    fever = Gates("north").passage(outcome="hold", temperature_c=38.6)
    desk.rules.on_stored(desk.store.write([fever], cases=alarm_cases))
    (opened,) = desk.store.alarms()  # opened with its event, by the store's own clock
    desk.now = opened.raised_at + timedelta(minutes=5)
    desk.raise_offline()
    desk.now = opened.raised_at + timedelta(minutes=12)
    desk.rules.check()
    assert [a.kind for a in desk.escalated()] == [AlertKind.FEVER]
    desk.now = opened.raised_at + timedelta(minutes=15)
    desk.rules.check()
    assert [a.kind for a in desk.escalated()] == [AlertKind.FEVER, AlertKind.NODE_OFFLINE]


def test_escalation__shown_in_the_api(store_section: StoreSection) -> None:
    desk = Desk(store_section)
    escalated, later = (
        desk.raise_offline(),
        desk.at(5).book.raise_alarm(
            draft(AlertKind.CLOCK_SKEW, "clock-skew", "north", "d01", "warning", skew_s="+95")
        ),
    )
    assert later is not None
    desk.at(12).rules.check()
    context = GatewayContext(config=desk.config, store=desk.store, alarms=desk.book,
                             live=LiveFeed())  # fmt: skip
    response = open_api(context).get("/api/alarms", headers=bearer("command"))
    assert response.status_code == 200
    shown = {a["alarm_id"]: a["escalated_at"] for a in response.json()}
    assert shown == {escalated: "2026-12-06T02:12:00Z", later.alarm_id: None}
    desk.store.close()


def test_alert__an_alarm_never_escalated_is_sent_as_before() -> None:
    desk_alert = Alert(
        alert_id=new_event_id(T0), kind=AlertKind.FEVER, state="raised", severity="critical",
        site="north", node="g01", raised_at=T0, at=T0, message="fever 38.6 °C held at north/g01",
    )  # fmt: skip
    assert "escalated_at" not in json.loads(catalogue.encode(desk_alert))


# --- on MQTT, through the real gateway --------------------------------------------------


def test_escalation__on_mqtt_the_alert_again_marked_with_no_personal_data(
    broker: PrivateBroker, store_section: StoreSection
) -> None:
    site = topics.Site("north")
    g01 = site.node(Role.GATE, "g01")
    config = GatewayConfig(
        sites=(SiteSection(name="north", gates=("g01",)),),
        broker=gateway_broker(broker, "gw-escalation"), store=store_section,
        http=HttpSection(port=0),
        alarms=AlarmSection(check_every_s=0.2, escalate_after_min=0.02),  # 1.2 s
    )  # fmt: skip
    watcher = Subscriber.connect(identity(broker, "command-desk"), "command-desk")
    watcher.subscribe(f"{site.root}/alert/#")
    gate = connect(identity(broker, "g01", IdentityRole.GATE), "gate-g01")
    now = datetime.now(UTC)
    person = {"name": "张三", "id_hash": ID_HASH, "id_last4": "123X", "phone": "13800138000",
              "volunteer_id": "v017"}  # fmt: skip
    registration = Registration(event_id=new_event_id(now), seq=1, node_time=now, **person)
    passage = Passage(event_id=new_event_id(now), seq=2, node_time=now, direction="in",
                      outcome="hold", colour="green", credential="health-code",
                      temperature_c=38.6, reasons=("fever",))  # fmt: skip
    try:
        with running_gateway(config):
            publish(gate, topics.event(g01, EventKind.REGISTRATION), registration).wait_for_publish(
                5
            )
            publish(gate, topics.event(g01, EventKind.PASSAGE), passage).wait_for_publish(5)
            received = [watcher.next(10), watcher.next(10)]
    finally:
        gate.disconnect()
        gate.loop_stop()
        watcher.close()
    alerts = [catalogue.decode(m.topic, m.payload).payload for m in received]
    assert all(isinstance(a, Alert) for a in alerts)
    first, again = alerts
    assert isinstance(first, Alert) and isinstance(again, Alert)
    assert received[0].topic == received[1].topic == f"{site.root}/alert/fever"
    assert (first.state, first.escalated_at) == ("raised", None)
    assert (again.alert_id, again.state, again.message) == (first.alert_id, "raised", first.message)
    assert again.escalated_at is not None and again.at == again.escalated_at
    for message in received:
        for value in person.values():
            assert value.encode() not in message.payload
