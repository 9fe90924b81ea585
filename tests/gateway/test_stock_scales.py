"""Depot scales against the stock ledger: units, tolerance, lasting, restarts and replays."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from edge.configfile import ConfigError
from edge.contract.base import new_event_id
from edge.contract.catalogue import encode
from edge.contract.command import Alert
from edge.contract.events import ScaleWeight, WeightBatch
from edge.contract.topics import AlertKind, Role
from gateway.access import hash_token
from gateway.alarm_cases import alarm_cases
from gateway.alarms import AlarmBook, words_of
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, ScaleSection, SiteSection, load_config
from gateway.live import LiveFeed
from gateway.rules import AlarmRules
from gateway.stock.ledger import Movement
from gateway.stock.scales import ScaleState, never_evaluated, step, to_units
from gateway.store import open_store
from gateway.store.records import InboundEvent
from gateway.store.settings import StoreSection

T0 = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
TODAY = date(2026, 12, 6)
TARE_KG = 25.0  # the empty pallet, taken off at the node
MASK_KG = 0.0125  # one N95 mask as the ledger counts it (a piece)
LASTING = timedelta(minutes=10)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("net_kg", "unit_kg", "unit", "units"),
    [
        (25.0, 0.0125, "piece", "2000"),
        (24.99375, 0.0125, "piece", "2000"),  # 1999.5: half away from zero
        (24.99374, 0.0125, "piece", "1999"),
        (-0.05, 0.0125, "piece", "-4"),  # an empty platform lighter than the tare
        (0.0, 0.0125, "piece", "0"),
        (412.3456, 1.0, "kg", "412.346"),  # kg to the gram
        (18.0, 0.92, "L", "19.565"),  # oil: 0.92 kg a litre
    ],
)  # fmt: skip
def test_to_units__valid(net_kg: float, unit_kg: float, unit: str, units: str) -> None:
    assert to_units(net_kg, unit_kg, unit) == Decimal(units)


@pytest.mark.parametrize("unit_kg", [0.0, -1.0])
def test_to_units__invalid__a_unit_weight_not_positive_is_refused(unit_kg: float) -> None:
    with pytest.raises(ValueError, match="unit_kg must be positive"):
        to_units(10.0, unit_kg, "piece")


@pytest.mark.parametrize(
    ("before", "minutes", "within", "expected", "change"),
    [
        (None, 0, True, ("ok", None), ""),
        (None, 0, False, ("differs", 0), ""),
        (("ok", None), 5, False, ("differs", 5), ""),
        (("differs", 0), 9, False, ("differs", 0), ""),  # shorter than lasting
        (("differs", 0), 10, False, ("raised", 0), "raise"),  # lasted
        (("differs", 0), 9, True, ("ok", None), ""),  # back before it lasted: nothing
        (("raised", 0), 30, False, ("raised", 0), ""),  # raised once
        (("raised", 0), 30, True, ("ok", None), "clear"),
    ],
)  # fmt: skip
def test_step__valid(
    before: tuple[str, float | None] | None, minutes: float, within: bool,
    expected: tuple[str, float | None], change: str,
) -> None:  # fmt: skip
    state = never_evaluated("north", "d01", "pallet-n95")
    if before is not None:
        since = None if before[1] is None else at(before[1])
        state = ScaleState("north", "d01", "pallet-n95", before[0], since, at(minutes - 1))  # type: ignore[arg-type]
    stepped = step(state, at(minutes), within, LASTING)
    assert stepped is not None
    new, made = stepped
    assert (new.phase, new.since) == (expected[0], None if expected[1] is None else at(expected[1]))
    assert new.last_at == at(minutes)
    assert made == change


@pytest.mark.parametrize("minutes", [100, 99])
def test_step__invalid__a_weight_not_newer_than_the_last_counts_nothing(minutes: int) -> None:
    state = ScaleState("north", "d01", "pallet-n95", "differs", at(0), at(100))
    assert step(state, at(minutes), False, LASTING) is None


class Depot:
    """One depot node's weight batches through a real store, ledger and the gateway's rules.

    The rules time a difference by the weights' own `at`: each batch arrives when its
    weight was taken, so an hour of weighing runs in milliseconds.
    """

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.alerts: list[Alert] = []
        self.seq = 0
        self.keys = 0
        self.open()

    def open(self) -> None:
        """A gateway starting: a new store connection and new rules over the same store."""
        self.store = open_store(self.config.store)
        self.book = AlarmBook(self.store, self.alerts.append, LiveFeed())
        self.rules = AlarmRules(self.config, self.store, self.book, lambda: T0, T0)

    def restart(self) -> None:
        self.store.close()
        self.open()

    def ledger(self, kind: str, pieces: int, lot: str = "L1") -> None:
        """A receipt (+) or an issue (-) of N95 masks, as a keeper enters it."""
        self.keys += 1
        fields: dict[str, object] = (
            {"expires_on": date(2027, 6, 30), "source": "purchase"} if kind == "receipt"
            else {"applicant_unit": "clinic-3", "approver": "Li", "application_id": "A-17"}
        )  # fmt: skip
        movement = Movement(
            kind, "north", "d01", f"key-{self.keys:08d}", item="n95-mask", unit="piece",  # type: ignore[arg-type]
            steps=pieces if kind == "receipt" else -pieces, lot=lot, **fields,  # type: ignore[arg-type]
        )  # fmt: skip
        self.store.stock_write(movement, "keeper-d01", T0, TODAY)

    def batch(
        self, minutes: float, net_kg: float, *, scale: str = "pallet-n95", item: str = "n95-mask",
        received_at: datetime | None = None,
    ) -> InboundEvent:  # fmt: skip
        self.seq += 1
        weight = ScaleWeight(
            scale=scale, item=item, at=at(minutes), basis="gross", shown_kg=net_kg + TARE_KG,
            tare_kg=TARE_KG, net_kg=net_kg,
        )  # fmt: skip
        event = WeightBatch(
            event_id=new_event_id(at(minutes)), seq=self.seq, node_time=at(minutes),
            weights=(weight,),
        )  # fmt: skip
        arrived = received_at or at(minutes)
        return InboundEvent("north", "d01", Role.DEPOT, event, encode(event), arrived)

    def weigh(self, minutes: float, net_kg: float, **fields: object) -> InboundEvent:
        item = self.batch(minutes, net_kg, **fields)  # type: ignore[arg-type]
        self.deliver(item)
        return item

    def deliver(self, item: InboundEvent) -> None:
        self.rules.on_stored(self.store.write([item], cases=alarm_cases))

    def states(self) -> list[str]:
        return [a.state for a in self.alerts if a.kind == AlertKind.STOCK_DISCREPANCY]


def scale_site(**scale: object) -> SiteSection:
    values = {"item": "n95-mask", "lot": "L1", "unit_kg": MASK_KG, "tolerance_units": 20,
              "tolerance_pct": 2, "lasting_min": 10} | scale  # fmt: skip
    return SiteSection.model_validate(
        {"name": "north", "depots": ["d01"], "scales": {"d01": {"pallet-n95": values}}}
    )


@pytest.fixture
def depot(store_section: StoreSection) -> Iterator[Depot]:
    config = GatewayConfig(sites=(scale_site(),), store=store_section)
    found = Depot(config)
    found.ledger("receipt", 2000)  # 25 kg of masks on the pallet
    yield found
    found.store.close()


def test_discrepancy__within_tolerance_raises_nothing(depot: Depot) -> None:
    # 2000 on the ledger: the tolerance is the larger of 20 and 2 % (40).
    for minute, net_kg in [(0, 25.0), (10, 24.6), (20, 25.5), (30, 24.5)]:  # 1968 to 2040
        depot.weigh(minute, net_kg)
    assert depot.states() == []
    assert depot.store.scale_states("north", "d01")["pallet-n95"].phase == "ok"


def test_discrepancy__beyond_tolerance_shorter_than_lasting_raises_nothing(depot: Depot) -> None:
    for minute in range(10):  # minutes 0 to 9: 1600 weighed, 2000 on the ledger
        depot.weigh(minute, 20.0)
    assert depot.states() == []
    depot.weigh(9.5, 25.0)  # back before 10 min: the difference ended
    depot.weigh(15, 20.0)
    assert depot.states() == []
    state = depot.store.scale_states("north", "d01")["pallet-n95"]
    assert (state.phase, state.since) == ("differs", at(15))


def test_discrepancy__lasting_raises_once_with_what_a_person_checks(depot: Depot) -> None:
    depot.weigh(0, 20.0)  # 400 masks gone, no issue in the ledger
    depot.weigh(5, 20.0)
    assert depot.states() == []
    depot.weigh(12, 20.0)
    depot.weigh(20, 19.9)
    assert depot.states() == ["raised"]
    alarm = depot.store.live_alarm(AlertKind.STOCK_DISCREPANCY, "north", "d01", "pallet-n95")
    assert alarm is not None
    assert alarm.severity == "critical"
    assert alarm.message == (
        "north/d01 scale pallet-n95 weighs 1600 piece of n95-mask, the ledger says 2000, for 12 min"
    )
    assert words_of(alarm).key == "stock-discrepancy"


def test_discrepancy__back_within_tolerance_clears(depot: Depot) -> None:
    depot.weigh(0, 20.0)
    depot.weigh(10, 20.0)
    depot.weigh(11, 24.8)  # 1984: within 40 of 2000
    assert depot.states() == ["raised", "cleared"]
    assert depot.store.live_alarm(AlertKind.STOCK_DISCREPANCY, "north", "d01", "pallet-n95") is None


def test_discrepancy__an_issue_entered_late_makes_the_ledger_agree_and_clears(depot: Depot) -> None:
    depot.weigh(0, 20.0)
    depot.weigh(10, 20.0)
    assert depot.states() == ["raised"]
    depot.ledger("issue", 400)  # the keeper enters the issue: 1600 on the ledger
    depot.weigh(14, 20.0)  # the node's next report (at most max_interval_s later)
    assert depot.states() == ["raised", "cleared"]


def test_discrepancy__the_ledger_counts_the_scales_lot_only(depot: Depot) -> None:
    depot.ledger("receipt", 3000, lot="L2")  # another lot, on another pallet
    depot.weigh(0, 25.0)
    depot.weigh(30, 25.0)
    assert depot.states() == []


def test_discrepancy__without_a_lot_the_ledger_counts_every_lot(
    store_section: StoreSection,
) -> None:
    config = GatewayConfig(sites=(scale_site(lot=""),), store=store_section)
    depot = Depot(config)
    depot.ledger("receipt", 1200, lot="L1")
    depot.ledger("receipt", 800, lot="L2")
    depot.weigh(0, 25.0)  # 2000: both lots
    depot.weigh(30, 25.0)
    assert depot.states() == []
    depot.weigh(31, 15.0)
    depot.weigh(41, 15.0)
    assert depot.states() == ["raised"]


def test_discrepancy__a_restart_in_the_middle_loses_no_time(depot: Depot) -> None:
    depot.weigh(0, 20.0)
    depot.weigh(6, 20.0)
    depot.restart()
    depot.weigh(10, 20.0)  # 10 min since minute 0, across the restart
    assert depot.states() == ["raised"]
    depot.restart()
    depot.weigh(11, 20.0)
    assert depot.states() == ["raised"]  # raised once, not again after the restart


def test_discrepancy__weights_stored_while_the_rules_did_not_run_count_after_a_restart(
    depot: Depot,
) -> None:
    depot.weigh(0, 25.0)  # the scale's state is kept: ok at minute 0
    depot.store.write([depot.batch(2, 20.0)], cases=alarm_cases)  # stored; stopped before rules
    depot.restart()
    depot.weigh(12, 20.0)  # 10 min since minute 2, which this gateway read back from the store
    assert depot.states() == ["raised"]


def test_discrepancy__a_replayed_batch_counts_nothing_twice(depot: Depot) -> None:
    first = depot.weigh(0, 20.0)
    depot.deliver(first)  # redelivered by the broker: the store takes it once
    late = depot.batch(0, 20.0)  # the same weight in another batch (a node's resend)
    depot.deliver(late)
    older = depot.batch(-30, 20.0)  # an older weight arriving late starts nothing earlier
    depot.deliver(older)
    depot.weigh(9, 20.0)
    assert depot.states() == []
    depot.weigh(10, 20.0)
    assert depot.states() == ["raised"]


def test_discrepancy__weights_of_unconfigured_scales_or_other_items_are_not_compared(
    depot: Depot,
) -> None:
    depot.weigh(0, 1.0, scale="pallet-rice")
    depot.weigh(20, 1.0, scale="pallet-rice")
    depot.weigh(0, 1.0, item="surgical-mask")  # the node's config disagrees with the gateway's
    depot.weigh(20, 1.0, item="surgical-mask")
    assert depot.states() == []
    assert depot.store.scale_states("north", "d01") == {}


def test_discrepancy__a_weight_from_the_future_is_not_compared(depot: Depot) -> None:
    depot.deliver(depot.batch(600, 20.0, received_at=at(0)))  # ten hours ahead of its arrival
    depot.weigh(1, 20.0)
    depot.weigh(11, 20.0)
    assert depot.states() == ["raised"]  # timed from minute 1: the future one held nothing


# --- the API ---------------------------------------------------------------------------


def api(depot: Depot) -> TestClient:
    """The API over the depot's store, with a keeper of d01, one of d02 and the others."""
    tokens = {"keeper": ("depot", ("north/d01",)), "keeper-d02": ("depot", ("north/d02",)),
              "command": ("command", ()), "registrar": ("registrar", ())}  # fmt: skip
    for name, (role, depots) in tokens.items():
        depot.store.add_token(hash_token(f"gpt_{name}-secret"), name, role, T0, depots)  # type: ignore[arg-type]
    context = GatewayContext(
        config=depot.config, store=depot.store, alarms=depot.book, live=LiveFeed(),
        clock=lambda: T0,
    )  # fmt: skip
    return TestClient(create_app(context))


def get(client: TestClient, path: str, who: str) -> Any:
    return client.get(path, headers={"Authorization": f"Bearer gpt_{who}-secret"})


@pytest.fixture
def two_scales(store_section: StoreSection) -> Iterator[Depot]:
    site = SiteSection.model_validate({
        "name": "north", "depots": ["d01", "d02"],
        "scales": {"d01": {
            "pallet-n95": {"item": "n95-mask", "lot": "L1", "unit_kg": MASK_KG,
                           "tolerance_units": 20, "tolerance_pct": 2, "lasting_min": 10},
            "pallet-grain": {"item": "grain", "unit_kg": 1},
        }},
    })  # fmt: skip
    config = GatewayConfig(sites=(site,), store=store_section)
    found = Depot(config)
    found.ledger("receipt", 2000)
    yield found
    found.store.close()


def test_api_scales__each_scale_its_weight_in_units_beside_the_ledger(two_scales: Depot) -> None:
    client = api(two_scales)
    answer = get(client, "/api/stock/north/d01/scales", "keeper")
    assert answer.status_code == 200, answer.text
    before = {s["scale"]: s for s in answer.json()["scales"]}
    assert [*before] == ["pallet-grain", "pallet-n95"]
    assert (before["pallet-n95"]["state"], before["pallet-n95"]["units"]) == ("no-weight", None)
    assert before["pallet-n95"]["ledger"] == "2000"
    two_scales.weigh(0, 20.0)
    two_scales.weigh(4, 24.9)  # 1992: within tolerance
    answer = get(client, "/api/stock/north/d01/scales", "command")
    now = {s["scale"]: s for s in answer.json()["scales"]}["pallet-n95"]
    assert (now["state"], now["units"], now["difference"], now["since"]) == (
        "ok",
        "1992",
        "-8",
        None,
    )
    two_scales.weigh(5, 20.0)
    now = {s["scale"]: s for s in get(client, "/api/stock/north/d01/scales", "command").json()["scales"]}["pallet-n95"]  # fmt: skip
    assert (now["state"], now["units"], now["ledger"], now["difference"]) == (
        "differs",
        "1600",
        "2000",
        "-400",
    )
    assert (now["at"], now["net_kg"], now["tolerance"]) == ("2026-12-06T02:05:00Z", 20.0, "40")
    two_scales.weigh(15, 20.0)
    now = {s["scale"]: s for s in get(client, "/api/stock/north/d01/scales", "keeper").json()["scales"]}["pallet-n95"]  # fmt: skip
    assert (now["state"], now["since"]) == ("alarm", "2026-12-06T02:05:00Z")


@pytest.mark.parametrize(
    ("who", "path", "status", "reason"),
    [
        ("keeper-d02", "/api/stock/north/d01/scales", 404, "unknown-depot"),  # not its depot
        ("keeper", "/api/stock/north/d09/scales", 404, "unknown-depot"),
        ("command", "/api/stock/south/d01/scales", 404, "unknown-depot"),
        ("registrar", "/api/stock/north/d01/scales", 403, "role-forbidden"),
        ("nobody", "/api/stock/north/d01/scales", 401, None),
        ("command", "/api/stock/North/d01/scales", 422, None),
    ],
)  # fmt: skip
def test_api_scales__invalid(
    two_scales: Depot, who: str, path: str, status: int, reason: str | None
) -> None:
    answer = get(api(two_scales), path, who)
    assert answer.status_code == status, answer.text
    if reason is not None:
        assert answer.json()["reason"] == reason


def test_api_scales__a_depot_without_scales_lists_none(two_scales: Depot) -> None:
    answer = get(api(two_scales), "/api/stock/north/d02/scales", "keeper-d02")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"site": "north", "depot": "d02", "scales": []}


# --- the config ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        ({"item": "caviar"}, "scales.d01.pallet-n95.item: unknown item caviar"),
        ({"item": "goggles", "lot": "L1"}, "scales.d01.pallet-n95.lot: goggles is not tracked"),
        ({"lot": "L 1"}, "lot: String should match pattern"),
        ({"lot": "L" * 41}, "lot: String should match pattern"),
        ({"unit_kg": 0}, "unit_kg: Input should be greater than 0"),
        ({"unit_kg": -0.5}, "unit_kg: Input should be greater than 0"),
        ({"unit_kg": 100_001}, "unit_kg: Input should be less than or equal to 100000"),
        ({"unit_kg": None}, "unit_kg"),
        ({"tolerance_units": -1}, "tolerance_units: Input should be greater than or equal to 0"),
        ({"tolerance_pct": 51}, "tolerance_pct: Input should be less than or equal to 50"),
        ({"lasting_min": -1}, "lasting_min: Input should be greater than or equal to 0"),
        ({"lasting_min": 7 * 24 * 60 + 1}, "lasting_min: Input should be less than or equal"),
        ({"pallet_tare_kg": 25}, "pallet_tare_kg: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_load_config__scales__invalid(
    tmp_path: Path, scale: dict[str, object], message: str
) -> None:
    values = {"item": "n95-mask", "unit_kg": MASK_KG} | scale
    values = {k: v for k, v in values.items() if v is not None}
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "sites:\n- name: north\n  depots: [d01]\n  scales:\n    d01:\n"
        f"      pallet-n95: {values!r}\n".replace("'", '"')
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def test_load_config__scales__invalid__a_node_not_a_depot(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "sites:\n- name: north\n  gates: [g01]\n  depots: [d01]\n  scales:\n"
        "    g01: {pallet-n95: {item: n95-mask, unit_kg: 0.0125}}\n"
    )
    with pytest.raises(ConfigError, match=r"scales\.g01: not a depot of site north"):
        load_config(path)


def test_load_config__scales__invalid__more_than_16_on_one_node(tmp_path: Path) -> None:
    scales = ", ".join(f"s{i}: {{item: grain, unit_kg: 1}}" for i in range(17))
    path = tmp_path / "gateway.yaml"
    path.write_text(f"sites:\n- name: north\n  depots: [d01]\n  scales:\n    d01: {{{scales}}}\n")
    with pytest.raises(ConfigError, match=r"scales\.d01: at most 16 scales"):
        load_config(path)


def test_load_config__scales__valid__a_site_item_and_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "sites:\n- name: north\n  depots: [d01]\n  stock_items:\n"
        "  - {key: rice-noodles, category: necessities, unit: kg, name_zh: 米粉,\n"
        "     name_en: Rice noodles, storage_class: room}\n"
        "  scales:\n    d01: {pallet-noodles: {item: rice-noodles, unit_kg: 1}}\n"
    )
    site = load_config(path).sites[0]
    assert site.scales == {
        "d01": {"pallet-noodles": ScaleSection(item="rice-noodles", unit_kg=1.0)}
    }
    found = site.scales["d01"]["pallet-noodles"]
    assert (found.lot, found.tolerance_units, found.tolerance_pct, found.lasting_min) == (
        "",
        0,
        2.0,
        10.0,
    )
