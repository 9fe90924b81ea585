"""Named depot scenarios on a simulated sensor bus: day and night, a failed compressor, faults."""

# A scenario is what happens in a depot over time on the bus's clock (simulated seconds
# from 0, which is midnight): it changes the values of some zones' sensors or switches
# their faults. Scenarios combine (`normal,door-open`), each acting on its zones, and a
# CompressedClock runs them: at a speedup of 3600 an hour passes each second. The wire
# stays SimulatedModbusBus's, with its real timing at the bus baud.

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, TypeVar

from edge.contract.topics import check_slug
from simulators.devices.modbus_bus import (
    SensorFaults,
    SimulatedModbusBus,
    SimulatedSensor,
    noise,
)

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S
ZONES_MAX = 32  # one RS485 segment carries 32 unit loads
SCENARIOS_MAX = 12
SPEC_CHARS_MAX = 2000  # a --sensors or --scenario argument
SLAVE_IDS = range(1, 248)

Climate = Literal["cold", "room"]
CLIMATES: tuple[Climate, ...] = ("cold", "room")
# Where each climate is held, and how far day and night move it (normal scenario).
SET_POINT_C: dict[Climate, float] = {"cold": 5.0, "room": 21.0}
DAY_SWING_C: dict[Climate, float] = {"cold": 1.0, "room": 3.0}
HUMIDITY_RH: dict[Climate, float] = {"cold": 70.0, "room": 55.0}
DAY_SWING_RH: dict[Climate, float] = {"cold": 5.0, "room": 10.0}
WARMEST_S = 15 * HOUR_S  # 15:00, the warmest hour of the day

T = TypeVar("T")


@dataclass(frozen=True)
class DepotZone:
    """One sensor on the bus and the zone it stands in.

    Attributes:
        name: the zone (the reading's sensor name), e.g. cold-store-1.
        slave_id: the module's Modbus address, 1..247.
        climate: `cold` (a cold store held at 5 °C) or `room` (21 °C).
    """

    name: str
    slave_id: int
    climate: Climate = "room"

    def __post_init__(self) -> None:
        check_slug(self.name, "zone")
        if self.slave_id not in SLAVE_IDS:
            raise ValueError(f"zone {self.name}: slave id {self.slave_id} is outside 1..247")
        if self.climate not in CLIMATES:
            raise ValueError(f"zone {self.name}: climate {self.climate!r} is not cold or room")


@dataclass(frozen=True)
class Occurrence:
    """When an event happens: at `start_s`, for `duration_s` (None: for good), every `every_s`."""

    start_s: float = 0.0
    duration_s: float | None = None
    every_s: float | None = None

    def __post_init__(self) -> None:
        if self.start_s < 0 or (self.duration_s is not None and self.duration_s <= 0):
            raise ValueError("an event starts at 0 s or later and lasts more than 0 s")
        if self.every_s is not None and (
            self.every_s <= 0 or self.duration_s is None or self.every_s < self.duration_s
        ):
            raise ValueError("an event repeats no sooner than it ends")

    def since(self, at: float) -> float | None:
        """Seconds since the latest start at or before `at`, ended or not; None before the first."""
        if at < self.start_s:
            return None
        elapsed = at - self.start_s
        return elapsed % self.every_s if self.every_s else elapsed

    def active(self, at: float) -> bool:
        """True while an occurrence lasts."""
        elapsed = self.since(at)
        return elapsed is not None and (self.duration_s is None or elapsed < self.duration_s)


@dataclass
class Scenario:
    """What happens to some zones of a depot over time; subclasses say what.

    Attributes:
        zone: the zone it acts on; None: the scenario's own choice (`picks`).
    """

    name: ClassVar[str]
    zone: str | None = None

    def picks(self, zones: Sequence[DepotZone]) -> list[DepotZone]:
        """The zones it acts on: `zone` if named, else the first cold zone (or the first)."""
        if self.zone is not None:
            return [z for z in zones if z.name == self.zone]
        return [next((z for z in zones if z.climate == "cold"), zones[0])]

    def temperature(self, zone: DepotZone, at: float, value: float) -> float:
        """The zone's temperature at `at`, given what it would be without this scenario."""
        del zone, at
        return value

    def humidity(self, zone: DepotZone, at: float, value: float) -> float:
        """The zone's humidity at `at`, given what it would be without this scenario."""
        del zone, at
        return value

    def faults(self, zone: DepotZone, at: float, faults: SensorFaults) -> SensorFaults:
        """The sensor's faults at `at`, given the others' (asked once per answer)."""
        del zone, at
        return faults


@dataclass
class Normal(Scenario):
    """Day and night: a cold store 4-6 °C, a room 18-24 °C, warmest at 15:00; humidity inversely."""

    name: ClassVar[str] = "normal"

    def picks(self, zones: Sequence[DepotZone]) -> list[DepotZone]:
        return [z for z in zones if self.zone in (None, z.name)]

    def temperature(self, zone: DepotZone, at: float, value: float) -> float:
        return value + DAY_SWING_C[zone.climate] * _day(at)

    def humidity(self, zone: DepotZone, at: float, value: float) -> float:
        return value - DAY_SWING_RH[zone.climate] * _day(at)


def _day(at: float) -> float:
    """-1 at 03:00, +1 at 15:00."""
    return math.cos(2 * math.pi * (at - WARMEST_S) / DAY_S)


@dataclass
class CompressorFailure(Scenario):
    """A cold store's compressor stops: the store warms toward the ambient over hours.

    Newton's cooling: the gap to `ambient_c` shrinks by e every `warming_s`; from 5 °C
    toward 25 °C with 12 h, 8 °C is crossed after 1.95 h. When the compressor comes back
    (`occurrence.duration_s` after the failure) it pulls the store back to where it would
    be, the gap halving about every 42 min (`cooling_s` 1 h).
    """

    name: ClassVar[str] = "compressor-failure"
    occurrence: Occurrence = field(default_factory=lambda: Occurrence(HOUR_S, 14 * HOUR_S))
    ambient_c: float = 25.0
    warming_s: float = 12 * HOUR_S
    cooling_s: float = HOUR_S

    def temperature(self, zone: DepotZone, at: float, value: float) -> float:
        elapsed = self.occurrence.since(at)
        if elapsed is None:
            return value
        failed = self.occurrence.duration_s
        if failed is None or elapsed < failed:
            return value + self._warmed(value, elapsed)
        return value + self._warmed(value, failed) * math.exp(-(elapsed - failed) / self.cooling_s)

    def _warmed(self, value: float, elapsed: float) -> float:
        return (self.ambient_c - value) * (1 - math.exp(-elapsed / self.warming_s))

    def reaches(self, threshold_c: float, from_c: float) -> float:
        """Seconds after the failure at which a store held at `from_c` reaches `threshold_c`.

        Raises:
            ValueError: the store never gets there (the threshold is not between the two).
        """
        if not from_c < threshold_c < self.ambient_c:
            raise ValueError(f"{threshold_c} °C is not between {from_c} and {self.ambient_c} °C")
        return self.warming_s * math.log((self.ambient_c - from_c) / (self.ambient_c - threshold_c))


@dataclass
class DoorOpen(Scenario):
    """A door left open: a zone rises by up to `rise_c` within minutes, then recovers.

    While open the zone closes the gap to `rise_c` above itself by e every `opening_s`
    (2 min: 63 % of it after 2 min); once shut, what it gained decays by e every
    `closing_s` (5 min). Humidity rises with it (`rise_rh`: moist air let in).
    """

    name: ClassVar[str] = "door-open"
    occurrence: Occurrence = field(
        default_factory=lambda: Occurrence(30 * 60, 5 * 60, every_s=4 * HOUR_S)
    )
    rise_c: float = 8.0
    rise_rh: float = 10.0
    opening_s: float = 120.0
    closing_s: float = 300.0

    def share(self, at: float) -> float:
        """How far the zone is toward its rise at `at`: 0 shut and recovered, toward 1 open."""
        elapsed = self.occurrence.since(at)
        if elapsed is None:
            return 0.0
        opened = self.occurrence.duration_s
        if opened is None or elapsed < opened:
            return 1 - math.exp(-elapsed / self.opening_s)
        peak = 1 - math.exp(-opened / self.opening_s)
        return peak * math.exp(-(elapsed - opened) / self.closing_s)

    def temperature(self, zone: DepotZone, at: float, value: float) -> float:
        return value + self.rise_c * self.share(at)

    def humidity(self, zone: DepotZone, at: float, value: float) -> float:
        return value + self.rise_rh * self.share(at)


@dataclass
class DeadSensor(Scenario):
    """A sensor stops answering (its power or its A/B pair lost) for a while, then answers again."""

    name: ClassVar[str] = "dead-sensor"
    occurrence: Occurrence = field(default_factory=lambda: Occurrence(20 * 60, 30 * 60))

    def picks(self, zones: Sequence[DepotZone]) -> list[DepotZone]:
        return [z for z in zones if z.name == self.zone] if self.zone else [zones[-1]]

    def faults(self, zone: DepotZone, at: float, faults: SensorFaults) -> SensorFaults:
        return dataclasses.replace(faults, dead=True) if self.occurrence.active(at) else faults


@dataclass
class BusNoise(Scenario):
    """A noisy line (a motor beside the cable, no termination): damaged answers and noise.

    Of every answer on the bus, a share `crc_share` arrives with a damaged CRC and another
    `noise_share` is followed by line noise between frames; drawn from a seeded sequence.
    """

    name: ClassVar[str] = "bus-noise"
    crc_share: float = 0.15
    noise_share: float = 0.15
    seed: int = 0
    _draws: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if min(self.crc_share, self.noise_share) < 0 or self.crc_share + self.noise_share > 1:
            raise ValueError("bus-noise: the shares are between 0 and 1 and add up to 1 at most")
        self._draws = random.Random(self.seed)

    def picks(self, zones: Sequence[DepotZone]) -> list[DepotZone]:
        return [z for z in zones if self.zone in (None, z.name)]

    def faults(self, zone: DepotZone, at: float, faults: SensorFaults) -> SensorFaults:
        draw = self._draws.random()
        if draw < self.crc_share:
            return dataclasses.replace(faults, bad_crc=True)
        if draw < self.crc_share + self.noise_share:
            return dataclasses.replace(faults, noise_after=noise(8, seed=int(at)))
        return faults


@dataclass
class WrongId(Scenario):
    """A sensor answers with another slave id (a module readdressed, or two set alike).

    Attributes:
        answer_as: the id it answers with; None: its own + 1 (247: 1).
    """

    name: ClassVar[str] = "wrong-id"
    answer_as: int | None = None
    occurrence: Occurrence = field(default_factory=Occurrence)

    def picks(self, zones: Sequence[DepotZone]) -> list[DepotZone]:
        return [z for z in zones if z.name == self.zone] if self.zone else [zones[-1]]

    def faults(self, zone: DepotZone, at: float, faults: SensorFaults) -> SensorFaults:
        if not self.occurrence.active(at):
            return faults
        return dataclasses.replace(faults, answer_as=self.answer_as or zone.slave_id % 247 + 1)


# In the order they apply: the day's cycle first, events on it, faults last.
SCENARIOS: dict[str, type[Scenario]] = {
    kind.name: kind for kind in (Normal, CompressorFailure, DoorOpen, DeadSensor, BusNoise, WrongId)
}


class Depot:
    """A depot's zones with the scenarios that act on them, as sensors of one bus.

    Args:
        zones: 1..32 zones with distinct names and slave ids.
        scenarios: up to 12, combined; each acts on the zones it picks.

    Raises:
        ValueError: too many or too few, a name or id twice, or a scenario's zone unknown.
    """

    def __init__(self, zones: Sequence[DepotZone], scenarios: Sequence[Scenario] = ()) -> None:
        if not 1 <= len(zones) <= ZONES_MAX:
            raise ValueError(f"a bus has 1 to {ZONES_MAX} sensors, not {len(zones)}")
        if len(scenarios) > SCENARIOS_MAX:
            raise ValueError(f"at most {SCENARIOS_MAX} scenarios, not {len(scenarios)}")
        for what, values in (("zone", [z.name for z in zones]),
                             ("slave id", [str(z.slave_id) for z in zones])):  # fmt: skip
            twice = sorted(value for value, count in Counter(values).items() if count > 1)
            if twice:
                raise ValueError(f"{what} {', '.join(twice)} on the bus twice")
        known = {z.name for z in zones}
        for scenario in scenarios:
            if scenario.zone is not None and scenario.zone not in known:
                raise ValueError(f"{scenario.name}: no zone {scenario.zone!r} on the bus")
        order = list(SCENARIOS)
        self.zones = list(zones)
        self.scenarios = sorted(scenarios, key=lambda s: order.index(s.name))
        self._acting = {
            z.name: [s for s in self.scenarios if z in s.picks(self.zones)] for z in self.zones
        }

    def temperature(self, zone: DepotZone, at: float) -> float:
        """The zone's true temperature at `at` on the bus's clock."""
        value = SET_POINT_C[zone.climate]
        for scenario in self._acting[zone.name]:
            value = scenario.temperature(zone, at, value)
        return value

    def humidity(self, zone: DepotZone, at: float) -> float:
        """The zone's true humidity at `at`, within 0..100 %RH."""
        value = HUMIDITY_RH[zone.climate]
        for scenario in self._acting[zone.name]:
            value = scenario.humidity(zone, at, value)
        return min(100.0, max(0.0, value))

    def faults(self, zone: DepotZone, at: float) -> SensorFaults:
        """The zone's sensor faults at `at`."""
        faults = SensorFaults()
        for scenario in self._acting[zone.name]:
            faults = scenario.faults(zone, at, faults)
        return faults

    def sensors(self) -> list[SimulatedSensor]:
        """One simulated module per zone, its values and faults following the scenarios."""
        return [
            SimulatedSensor(
                zone.slave_id,
                _bound(self.temperature, zone),
                _bound(self.humidity, zone),
                schedule=_bound(self.faults, zone),
            )
            for zone in self.zones
        ]

    def bus(
        self, path: Path, baudrate: int = 9600, *, stopbits: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> SimulatedModbusBus:  # fmt: skip
        """The bus behind a pty at `path`; `clock` (a CompressedClock) drives the scenarios."""
        return SimulatedModbusBus(path, self.sensors(), baudrate, stopbits=stopbits, clock=clock)


def _bound(of: Callable[[DepotZone, float], T], zone: DepotZone) -> Callable[[float], T]:
    return lambda at: of(zone, at)


def parse_zones(spec: str) -> list[DepotZone]:
    """Zones from `name:id[:cold|room],…`; without a climate, a name with cold, fridge or
    freezer in it is a cold store.

    Args:
        spec: e.g. `cold-store-1:1,shelf-a:2,vaccines:3:cold`.

    Returns:
        The zones in the order given.

    Raises:
        ValueError: a malformed item, a bad name, id or climate, or a spec too long.
    """
    if len(spec) > SPEC_CHARS_MAX:
        raise ValueError(f"the sensor list is longer than {SPEC_CHARS_MAX} characters")
    zones = []
    for item in spec.split(","):
        parts = item.strip().split(":")
        if len(parts) not in (2, 3) or not parts[1].isdigit():
            raise ValueError(f"sensor {item!r} is not name:slave-id[:cold|room]")
        name, slave_id = parts[0], int(parts[1])
        cold = any(word in name for word in ("cold", "fridge", "freezer"))
        climate = parts[2] if len(parts) == 3 else ("cold" if cold else "room")
        if climate not in CLIMATES:
            raise ValueError(f"sensor {item!r}: climate {climate!r} is not cold or room")
        zones.append(DepotZone(name, slave_id, climate))
    return zones


def parse_scenarios(spec: str) -> list[Scenario]:
    """Scenarios from `name[@zone],…`, each with its defaults.

    Args:
        spec: e.g. `normal,door-open@shelf-a,dead-sensor`.

    Returns:
        One scenario per item.

    Raises:
        ValueError: an unknown scenario, a bad zone name, or a spec too long.
    """
    if len(spec) > SPEC_CHARS_MAX:
        raise ValueError(f"the scenario list is longer than {SPEC_CHARS_MAX} characters")
    scenarios = []
    for item in spec.split(","):
        name, at, zone = item.strip().partition("@")
        if name not in SCENARIOS:
            raise ValueError(f"scenario {name!r} is not one of {', '.join(SCENARIOS)}")
        scenarios.append(SCENARIOS[name](zone=check_slug(zone, "zone") if at else None))
    return scenarios
