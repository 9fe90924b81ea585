"""Depot excursion alarms: delay, hysteresis, restarts, replays and late batches, by reading time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.configfile import ConfigError
from edge.contract.base import new_event_id
from edge.contract.catalogue import encode
from edge.contract.command import Alert
from edge.contract.events import DepotReading, DepotReadingBatch
from edge.contract.topics import AlertKind, Role
from gateway.alarm_cases import alarm_cases
from gateway.alarms import AlarmBook, words_of
from gateway.config import GatewayConfig, SiteSection, load_config
from gateway.depot_rules import ExcursionRules, never_evaluated, step
from gateway.live import LiveFeed
from gateway.rules import AlarmRules
from gateway.storage_classes import BUILT_IN
from gateway.store import open_store
from gateway.store.excursions import Excursion, ExcursionPhase
from gateway.store.records import InboundEvent
from gateway.store.settings import StoreSection

T0 = datetime(2026, 12, 6, 0, 0, tzinfo=UTC)
COLD = "cold-store-1"
HOUR = 60.0


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def reading(minutes: float, temperature: float | None, **fields: Any) -> DepotReading:
    """A sample `minutes` after T0: ok with a temperature, else the status given."""
    values: dict[str, Any] = {
        "sensor": COLD, "bus_address": 1, "at": at(minutes), "status": "ok",
        "temperature_c": temperature, "humidity_pct": 50.0,
    }  # fmt: skip
    values.update(fields)
    if values["status"] != "ok":
        values |= {"temperature_c": None, "humidity_pct": None}
    return DepotReading(**values)


HEAT = BUILT_IN["cold"].conditions[0]  # above 8.0 °C for 600 min, band 0.5


@pytest.mark.parametrize(
    ("before", "minutes", "value", "expected", "change"),
    [
        (None, 0, 7.9, ("inside", None), ""),
        (None, 0, 8.0, ("out", 0), ""),  # the threshold is in the alarm range
        (("inside", None), 10, 8.3, ("out", 10), ""),
        (("out", 0), 599, 8.3, ("out", 0), ""),
        (("out", 0), 600, 8.3, ("raised", 0), "raise"),
        (("out", 0), 300, 7.99, ("inside", None), ""),  # one excursion: a dip inside ends it
        (("raised", 0), 700, 7.6, ("raised", 0), ""),  # inside the band: stays raised
        (("raised", 0), 700, 8.4, ("raised", 0), ""),
        (("raised", 0), 700, 7.5, ("inside", None), "clear"),  # the band's edge clears
    ],
)  # fmt: skip
def test_step__valid(
    before: tuple[ExcursionPhase, float | None] | None, minutes: float, value: float,
    expected: tuple[str, float | None], change: str,
) -> None:  # fmt: skip
    state = never_evaluated("north", "d01", COLD, "heat")
    if before is not None:
        since = None if before[1] is None else at(before[1])
        state = Excursion("north", "d01", COLD, "heat", before[0], since, at(minutes - 1))
    stepped = step(HEAT, state, reading(minutes, value), value)
    assert stepped is not None
    new, made = stepped
    assert (new.phase, new.since) == (
        expected[0], None if expected[1] is None else at(expected[1]),
    )  # fmt: skip
    assert new.last_at == at(minutes)
    assert made == change


@pytest.mark.parametrize("minutes", [100, 99])
def test_step__invalid__a_reading_not_newer_than_the_last_is_not_evaluated(minutes: int) -> None:
    state = Excursion("north", "d01", COLD, "heat", "out", at(0), at(100))
    assert step(HEAT, state, reading(minutes, 9.0), 9.0) is None


class Depot:
    """One depot node's batches through a real store and the gateway's rules.

    The gateway's clock is never read by the excursion rules: each batch arrives when its
    newest reading was taken, so hours of readings run in milliseconds.
    """

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.alerts: list[Alert] = []
        self.seq = 0
        self.open()

    def open(self) -> None:
        """A gateway starting: a new store connection and new rules over the same store."""
        self.store = open_store(self.config.store)
        self.book = AlarmBook(self.store, self.alerts.append, LiveFeed())
        self.rules = AlarmRules(self.config, self.store, self.book, lambda: T0, T0)

    def restart(self) -> None:
        self.store.close()
        self.open()

    def batch(self, *readings: DepotReading, received_at: datetime | None = None) -> InboundEvent:
        self.seq += 1
        newest = max(r.at for r in readings)
        event = DepotReadingBatch(
            event_id=new_event_id(newest), seq=self.seq, node_time=newest, readings=readings
        )
        arrived = received_at or newest
        return InboundEvent("north", "d01", Role.DEPOT, event, encode(event), arrived)

    def arrive(self, *readings: DepotReading) -> InboundEvent:
        item = self.batch(*readings)
        self.deliver(item)
        return item

    def deliver(self, item: InboundEvent) -> None:
        self.rules.on_stored(self.store.write([item], cases=alarm_cases))

    def hourly(self, start_h: float, temperatures: list[float]) -> None:
        """One batch per hour from `start_h` hours after T0."""
        for i, temperature in enumerate(temperatures):
            self.arrive(reading((start_h + i) * HOUR, temperature))

    def states(self) -> list[str]:
        return [a.state for a in self.alerts if a.kind == AlertKind.DEPOT_CLIMATE]


@pytest.fixture
def depot(store_section: StoreSection) -> Iterator[Depot]:
    site = SiteSection.model_validate({
        "name": "north", "depots": ["d01"],
        "storage_classes": {"vaccine-fridge": {"conditions": [
            {"name": "hot", "direction": "above", "threshold": 12.0, "type": "instant"},
        ]}},
        "zones": {"d01": {COLD: "cold", "shelf-a": "room", "fridge-2": "vaccine-fridge"}},
    })  # fmt: skip
    made = Depot(GatewayConfig(sites=(site,), store=store_section))
    yield made
    made.store.close()


def test_excursion__a_cold_store_warming_slowly_raises_after_ten_hours_and_clears_with_hysteresis(
    depot: Depot,
) -> None:
    depot.hourly(0, [5.0, 6.5, 8.2])  # above 8 from hour 2
    depot.hourly(3, [8.6] * 9)  # hours 3 to 11: 9 h above, not yet 10
    assert depot.states() == []
    depot.hourly(12, [8.9])  # 10 h since the first reading above
    assert depot.states() == ["raised"]
    alarm = depot.store.live_alarm(AlertKind.DEPOT_CLIMATE, "north", "d01", f"{COLD}/heat")
    assert alarm is not None
    assert alarm.severity == "critical"
    assert alarm.message == (
        "north/d01 zone cold-store-1 at 8.9 °C: 8.0 °C or above for 600 min (cold heat)"
    )
    assert words_of(alarm).key == "depot-climate.temperature-above"
    depot.hourly(13, [7.8, 7.6])  # back below 8, not yet 0.5 below: still raised
    assert depot.states() == ["raised"]
    depot.hourly(15, [7.5])  # the band's edge: clears
    assert depot.states() == ["raised", "cleared"]


def test_excursion__a_door_open_spike_shorter_than_the_delay_raises_nothing(depot: Depot) -> None:
    for minute, temperature in [(0, 4.5), (1, 11.0), (5, 14.2), (12, 9.1), (20, 5.8), (30, 4.6)]:
        depot.arrive(reading(minute, temperature))
    assert depot.states() == []


def test_excursion__each_excursion_is_timed_alone_a_dip_inside_ends_it(depot: Depot) -> None:
    # Consecutive (single event), as the loggers count it: two 9 h excursions with one
    # reading inside between them are not 18 h (that is what `cumulative` conditions count).
    depot.hourly(0, [8.5] * 10)
    depot.hourly(10, [7.9])
    depot.hourly(11, [8.5] * 10)
    assert depot.states() == []


def test_excursion__an_instant_condition_raises_on_the_first_reading_at_its_threshold(
    depot: Depot,
) -> None:
    depot.arrive(reading(0, 11.9, sensor="fridge-2"))
    assert depot.states() == []
    depot.arrive(reading(1, 12.0, sensor="fridge-2"))  # the threshold is in the alarm range
    assert depot.states() == ["raised"]
    assert depot.alerts[-1].message.endswith("for 0 min (vaccine-fridge hot)")


def test_excursion__readings_wobbling_around_the_threshold_do_not_flap(depot: Depot) -> None:
    depot.hourly(0, [8.4] * 11)
    assert depot.states() == ["raised"]
    for minute, temperature in enumerate([7.9, 8.1, 7.7, 8.3, 7.6, 8.0, 7.9] * 4):
        depot.arrive(reading(11 * HOUR + minute + 1, temperature))
    assert depot.states() == ["raised"]
    depot.arrive(reading(13 * HOUR, 7.0))
    assert depot.states() == ["raised", "cleared"]


def test_excursion__a_restart_mid_excursion_raises_at_the_excursions_own_time(
    depot: Depot,
) -> None:
    depot.hourly(0, [8.5] * 6)  # hours 0 to 5 above
    depot.restart()
    depot.hourly(6, [8.5] * 4)  # up to hour 9: 9 h
    assert depot.states() == []
    depot.restart()
    depot.hourly(10, [8.5])  # 10 h since hour 0, across two restarts
    assert depot.states() == ["raised"]
    depot.restart()
    depot.hourly(11, [7.0])
    assert depot.states() == ["raised", "cleared"]


def test_excursion__two_replicas_splitting_one_nodes_batches_time_it_as_one(
    depot: Depot,
) -> None:
    # Replicas share the store and the broker hands one node's batches to either: each
    # must step on from what the other kept, not from what it kept itself.
    other = Depot(depot.config)
    seq = 0

    def arrive(replica: Depot, hour: float, temperature: float) -> None:
        nonlocal seq
        replica.seq, seq = seq, seq + 1  # one node's outbox: one seq for both replicas
        replica.arrive(reading(hour * HOUR, temperature))

    for hour in range(11):  # hours 0 to 10 above 8 °C, batches alternating
        arrive((depot, other)[hour % 2], hour, 8.5)

    def alerts() -> list[tuple[str, str]]:
        return [(a.state, a.message) for a in [*depot.alerts, *other.alerts]]

    # Raised once, by the batch at 10 h since the excursion's first reading (hour 0).
    assert alerts() == [
        ("raised", "north/d01 zone cold-store-1 at 8.5 °C: 8.0 °C or above for 600 min "
         "(cold heat)"),
    ]  # fmt: skip
    arrive(other, 11, 7.0)  # back inside the band: cleared by the replica that saw it
    arrive(depot, 12, 8.6)  # out again: a new excursion, timed from hour 12
    assert [state for state, _ in alerts()] == ["raised", "cleared"]
    assert depot.store.excursions("north", "d01")[(COLD, "heat")].since == at(12 * HOUR)


def test_excursion__readings_stored_before_a_crash_and_not_evaluated_count_after_restart(
    depot: Depot,
) -> None:
    # The gateway stopped between a batch's commit and its rules: the readings are in
    # the store, the excursion state is not. The first batch after the start reads them.
    depot.hourly(0, [5.0, 5.0])
    for hour in range(2, 12):
        depot.store.write([depot.batch(reading(hour * HOUR, 8.5))])
    depot.restart()
    depot.hourly(12, [8.5])  # 10 h since hour 2, the first reading above, never evaluated
    assert depot.states() == ["raised"]
    depot.store.write([depot.batch(reading(13 * HOUR, 7.0))])  # back inside, unevaluated
    depot.restart()
    depot.hourly(14, [7.8])  # inside the band alone would not clear; the missed 7.0 did
    assert depot.states() == ["raised", "cleared"]


def test_excursion__a_batch_whose_state_was_not_kept_is_read_again_with_the_next(
    depot: Depot, monkeypatch: pytest.MonkeyPatch
) -> None:
    depot.hourly(0, [5.0])

    def broken(states: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(depot.store, "save_excursions", broken)
        with pytest.raises(OSError, match="disk full"):
            depot.hourly(1, [8.5])  # stored, its state lost
    depot.hourly(2, [8.5] * 10)  # hour 11: 9 h since hour 2, 10 h since hour 1
    assert depot.states() == ["raised"]


def test_excursion__a_duplicated_or_replayed_batch_counts_nothing_twice(depot: Depot) -> None:
    first = depot.arrive(reading(0, 8.5), reading(HOUR, 8.5))
    depot.deliver(first)  # the same event_id again: the store ignores it
    depot.hourly(2, [8.5] * 9)
    assert depot.states() == ["raised"]
    depot.hourly(11, [7.0])
    assert depot.states() == ["raised", "cleared"]
    # A replay that reached the rules anyway (not through the store) is older than what
    # they have evaluated: it neither raises again nor restarts an excursion.
    excursions = ExcursionRules(depot.config, depot.store, depot.book)
    excursions.on_stored([first, first])
    depot.hourly(12, [8.5] * 9)
    assert depot.states() == ["raised", "cleared"]


def test_excursion__a_late_older_batch_neither_shortens_nor_lengthens_an_excursion(
    depot: Depot,
) -> None:
    late = depot.batch(reading(HOUR, 4.0))  # taken at hour 1, held back by the node
    depot.hourly(0, [8.5])
    depot.hourly(2, [8.5] * 6)  # hours 2 to 7
    depot.deliver(late)  # inside, but older than hour 7: does not end the excursion
    depot.hourly(8, [8.5, 8.5])  # hour 9: 9 h since hour 0
    assert depot.states() == []
    depot.hourly(10, [8.5])
    assert depot.states() == ["raised"]
    depot.hourly(11, [7.0, 4.0])
    assert depot.states() == ["raised", "cleared"]
    # Nor does a late batch of two hours below freezing, older than hour 12, start one.
    depot.deliver(depot.batch(*(reading(m, -1.0) for m in range(9 * 60, 11 * 60 + 1, 10))))
    assert depot.states() == ["raised", "cleared"]


def test_excursion__a_reading_without_values_neither_counts_nor_clears(depot: Depot) -> None:
    depot.hourly(0, [8.5] * 9)  # hours 0 to 8
    for status in ("timeout", "crc", "range"):
        depot.arrive(reading(10 * HOUR, None, status=status))  # past the delay: no value
    assert depot.states() == []
    depot.hourly(11, [8.5])  # the excursion went on through the silence
    assert depot.states() == ["raised"]
    depot.arrive(reading(12 * HOUR, None, status="timeout"))
    assert depot.states() == ["raised"]


def test_excursion__a_reading_far_in_the_future_is_not_evaluated(depot: Depot) -> None:
    depot.hourly(0, [5.0])
    # A node clock a year ahead for one sample, in a batch that arrived at hour 1.
    depot.deliver(
        depot.batch(reading(HOUR, 5.0), reading(400 * 24 * HOUR, 8.5), received_at=at(HOUR))
    )
    depot.hourly(2, [8.5] * 11)  # the zone's clock was not moved a year ahead
    assert depot.states() == ["raised"]


def test_excursion__humidity_of_a_room_zone_and_zones_without_a_class(depot: Depot) -> None:
    for hour in range(3):
        depot.arrive(
            reading(hour * HOUR, 22.0, sensor="shelf-a", humidity_pct=80.0),
            reading(hour * HOUR, 40.0, sensor="not-assigned", humidity_pct=99.0),
        )
    assert depot.states() == ["raised"]
    alarm = depot.alerts[-1]
    assert alarm.severity == "warning"
    assert alarm.message == (
        "north/d01 zone shelf-a at 80.0 %RH: 75.0 %RH or above for 60 min (room humid)"
    )


CLASS = "sites: [{name: n, depots: [d01], storage_classes: {v: {conditions: [%s]}}}]"
ZONES = "sites: [{name: n, depots: [d01], gates: [g01], zones: {%s}}]"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (CLASS % "{name: hot, direction: above, threshold: 120, delay_min: 5}",
         "sites.0.storage_classes.v.conditions.0.threshold: Value error, outside what a sensor"),
        (CLASS % "{name: wet, quantity: humidity, direction: above, threshold: 101, "
                 "delay_min: 5}", "conditions.0.threshold: Value error, outside"),
        (CLASS % "{name: hot, direction: above, threshold: 12}",
         "delay_min: a consecutive condition needs a delay"),
        (CLASS % "{name: hot, direction: above, threshold: 12, type: instant, delay_min: 5}",
         "delay_min: an instant condition has no delay"),
        (CLASS % "{name: hot, direction: up, threshold: 12, delay_min: 5}",
         "conditions.0.direction: Input should be 'above' or 'below'"),
        (CLASS % "{name: hot, direction: above, threshold: 12, delay_min: 5, hysteresis: -1}",
         "conditions.0.hysteresis"),
        (CLASS % ("{name: a, direction: above, threshold: 12, delay_min: 5}, "
                  "{name: a, direction: below, threshold: 2, delay_min: 5}"),
         "conditions named twice: a"),
        (ZONES % "d01: {cold-store-1: frozen}", "zones.d01.cold-store-1: unknown storage class "
         "frozen"),
        (ZONES % "g01: {cold-store-1: cold}", "zones.g01: not a depot of site n"),
    ],
)  # fmt: skip
def test_load_config__storage_classes__invalid(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert message in str(raised.value)


def test_load_config__storage_classes__valid(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "sites: [{name: n, depots: [d01], zones: {d01: {cold-store-1: cold, shelf-a: v}},\n"
        "  storage_classes: {v: {conditions: [{name: hot, direction: above, threshold: 30,\n"
        "    type: instant}]}}}]"
    )
    site = load_config(path).site("n")
    assert site is not None
    cold = site.storage_class("d01", "cold-store-1")
    assert cold is not None
    assert [(c.name, c.threshold, c.delay_min) for c in cold.conditions] == [
        ("heat", 8.0, 600.0), ("freeze", -0.5, 60.0),
    ]  # fmt: skip
    assert site.storage_class("d01", "nowhere") is None
