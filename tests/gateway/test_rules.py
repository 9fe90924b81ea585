"""Alarm rules: each alarm is raised once when its condition starts and cleared when it ends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge.contract.command import Alert
from edge.contract.events import CheckpointCounts, HoldResolved
from edge.contract.presence import Birth, Death, Health
from edge.contract.topics import AlertKind, Role
from edge.gate.daily import daily_report_fields, report_period
from gateway.alarm_cases import alarm_cases
from gateway.alarms import AlarmBook
from gateway.config import AlarmSection, GatewayConfig, SiteSection
from gateway.live import LiveFeed
from gateway.rules import AlarmRules, last_closed_period
from gateway.store import open_store
from gateway.store.records import EventQuery, InboundEvent, InboundPresence, IngestLimits
from gateway.store.settings import StoreSection
from tests.gateway.factory import Gates

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Rig:
    """Rules over a real store, with a clock the test moves."""

    def __init__(self, config: GatewayConfig, now: datetime) -> None:
        self.clock = Clock(now)
        self.store = open_store(config.store)
        self.alerts: list[Alert] = []
        self.book = AlarmBook(self.store, self.alerts.append, LiveFeed(), self.clock)
        self.config = config
        self.rules = AlarmRules(config, self.store, self.book, self.clock, now)
        self.gates = Gates("north", now)

    def arrive(self, *items: object) -> None:
        events = [i for i in items if not isinstance(i, InboundPresence)]
        presence = [i for i in items if isinstance(i, InboundPresence)]
        written = self.store.write(events, presence, cases=alarm_cases)  # type: ignore[arg-type]
        self.rules.on_stored(written)

    def presence(self, payload: Birth | Death | Health, node: str = "g01") -> InboundPresence:
        return InboundPresence("north", node, Role.GATE, payload, self.clock.now)

    def birth(self, node: str = "g01", session: int = 1, **fields: object) -> InboundPresence:
        values: dict[str, object] = {
            "session": session, "node_time": self.clock.now, "role": Role.GATE,
            "version": "1.0", "config_hash": "ab" * 8, "heartbeat_s": 10,
            "trust_list_age_s": 60.0,
        }  # fmt: skip
        values.update(fields)
        return self.presence(Birth(**values), node)

    def states(self, kind: AlertKind) -> list[str]:
        return [a.state for a in self.alerts if a.kind == kind]


@pytest.fixture
def rig(store_section: StoreSection) -> Iterator[Rig]:
    config = GatewayConfig(
        sites=(SiteSection(name="north", gates=("g01", "g02"), cutoff_hour=17),),
        store=store_section,
        alarms=AlarmSection(unattended_after_s=60, report_grace_min=30),
    )
    # 10:00 in Shanghai: the 17:00 cut-off is later today.
    made = Rig(config, datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI).astimezone(UTC))
    yield made
    made.store.close()


def test_rules__a_fever_case_is_one_alarm_for_its_passage_and_its_hold(rig: Rig) -> None:
    passage = rig.gates.passage(outcome="hold", reasons=("fever",), temperature_c=38.4)
    rig.arrive(passage)
    rig.arrive(rig.gates.hold(passage))
    assert rig.states(AlertKind.FEVER) == ["raised"]
    alert = next(a for a in rig.alerts if a.kind == AlertKind.FEVER)
    assert alert.severity == "critical"
    assert "38.4" in alert.message
    assert "g01" in alert.message


def test_rules__a_released_fever_hold_clears_its_alarm_a_referral_does_not(rig: Rig) -> None:
    first = rig.gates.passage(outcome="hold", reasons=("fever",), temperature_c=38.0)
    second = rig.gates.passage(outcome="hold", reasons=("fever",), temperature_c=39.0)
    hold_1, hold_2 = rig.gates.hold(first), rig.gates.hold(second)
    rig.arrive(first, second, hold_1, hold_2)
    rig.arrive(rig.gates.resolved(hold_1, "released"), rig.gates.resolved(hold_2, "referred"))
    assert rig.store.live_alarm(AlertKind.FEVER, "north", "g01", first.event.event_id) is None
    assert rig.store.live_alarm(AlertKind.FEVER, "north", "g01", second.event.event_id)


def test_rules__a_fever_released_on_a_typed_temperature_stays_for_the_command_center(
    rig: Rig,
) -> None:
    passage = rig.gates.passage(outcome="hold", reasons=("fever",), temperature_c=38.9)
    hold = rig.gates.hold(passage)
    rig.arrive(passage, hold)
    manual = rig.gates.inbound(
        hold.node, HoldResolved, hold_id=hold.event.event_id, resolution="released",
        volunteer_id="v017", temperature_c=36.5, temperature_source="manual",
    )  # fmt: skip
    rig.arrive(manual)
    assert rig.store.live_alarm(AlertKind.FEVER, "north", "g01", passage.event.event_id)
    assert rig.states(AlertKind.FEVER) == ["raised"]


def test_rules__a_red_code_raises_once_and_a_green_one_nothing(rig: Rig) -> None:
    red = rig.gates.passage(outcome="deny", colour="red", reasons=("red",))
    rig.arrive(red, rig.gates.passage())
    rig.arrive(red)  # redelivered: already stored, no second alarm
    assert rig.states(AlertKind.RED_CODE) == ["raised"]
    assert [a.severity for a in rig.alerts] == ["critical"]  # 紧急, as a fever is


def test_rules__a_supervisors_override_raises_once_naming_the_supervisor(rig: Rig) -> None:
    passage = rig.gates.passage(outcome="hold", reasons=("bad-signature",))
    hold = rig.gates.hold(passage, reasons=("bad-signature",))
    override = rig.gates.inbound(
        hold.node, HoldResolved, hold_id=hold.event.event_id, resolution="released",
        volunteer_id="s001", override=True,
    )  # fmt: skip
    rig.arrive(passage, hold, rig.gates.resolved(rig.gates.hold(passage)), override)
    rig.arrive(override)  # redelivered: already stored, no second alarm
    assert rig.states(AlertKind.HOLD_OVERRIDE) == ["raised"]
    (alert,) = [a for a in rig.alerts if a.kind == AlertKind.HOLD_OVERRIDE]
    assert alert.severity == "critical"
    assert "s001" in alert.message and hold.event.event_id in alert.message


def test_rules__missed_heartbeats_mark_the_node_offline_and_a_heartbeat_clears_it(
    rig: Rig,
) -> None:
    rig.arrive(rig.birth())
    rig.clock.advance(29)
    rig.rules.check()
    assert rig.states(AlertKind.NODE_OFFLINE) == []
    rig.clock.advance(2)  # 31 s: three 10 s heartbeats missed
    rig.rules.check()
    rig.rules.check()
    assert rig.states(AlertKind.NODE_OFFLINE) == ["raised"]
    node = rig.store.node("north", "g01")
    assert node is not None
    assert (node.online, node.offline_reason) == (False, "heartbeat")
    health = Health(
        node_time=rig.clock.now, session=1, uptime_s=40, last_seq=0, outbox_depth=0,
        outbox_capacity=100,
    )  # fmt: skip
    rig.arrive(rig.presence(health))
    assert rig.states(AlertKind.NODE_OFFLINE) == ["raised", "cleared"]
    assert rig.store.node("north", "g01").online  # type: ignore[union-attr]


def test_rules__a_last_will_is_critical_a_clean_shutdown_a_warning(rig: Rig) -> None:
    rig.arrive(rig.birth("g01"), rig.birth("g02"))
    rig.arrive(rig.presence(Death(session=1, node_time=rig.clock.now, reason="lost"), "g01"))
    rig.arrive(rig.presence(Death(session=1, node_time=rig.clock.now, reason="shutdown"), "g02"))
    severities = {a.node: a.severity for a in rig.alerts if a.kind == AlertKind.NODE_OFFLINE}
    assert severities == {"g01": "critical", "g02": "warning"}


def heartbeat(rig: Rig, ahead_s: float, session: int = 1) -> InboundPresence:
    return rig.presence(
        Health(
            node_time=rig.clock.now + timedelta(seconds=ahead_s), session=session,
            uptime_s=40, last_seq=0, outbox_depth=0, outbox_capacity=100,
        )
    )  # fmt: skip


def test_rules__clock_skew_over_the_limit_alarms_and_a_good_clock_clears_it(rig: Rig) -> None:
    rig.arrive(rig.birth())
    rig.arrive(heartbeat(rig, 95))
    assert rig.states(AlertKind.CLOCK_SKEW) == ["raised"]
    assert "+95 s" in rig.alerts[-1].message
    rig.arrive(heartbeat(rig, 20))  # under the limit, but not under half of it: no flapping
    assert rig.states(AlertKind.CLOCK_SKEW) == ["raised"]
    rig.arrive(heartbeat(rig, 1))
    assert rig.states(AlertKind.CLOCK_SKEW) == ["raised", "cleared"]


def test_rules__a_birth_that_waited_out_an_outage_is_no_clock_skew(rig: Rig) -> None:
    rig.arrive(rig.birth(node_time=rig.clock.now - timedelta(hours=2)))
    assert rig.states(AlertKind.CLOCK_SKEW) == []


def test_rules__the_will_of_an_ended_session_raises_nothing(rig: Rig) -> None:
    rig.arrive(rig.birth(session=4))
    rig.arrive(rig.presence(Death(session=3, node_time=rig.clock.now, reason="lost")))
    assert rig.states(AlertKind.NODE_OFFLINE) == []
    assert rig.store.node("north", "g01").online  # type: ignore[union-attr]


def test_rules__a_heartbeat_stored_after_the_check_read_the_nodes_keeps_the_node_online(
    rig: Rig,
) -> None:
    rig.arrive(rig.birth())
    rig.clock.advance(31)
    stale = rig.store.nodes()
    rig.arrive(heartbeat(rig, 0))  # lands between the read and the marking
    rig.store.nodes = lambda site=None: stale  # type: ignore[method-assign]
    rig.rules.check()
    del rig.store.nodes
    assert rig.states(AlertKind.NODE_OFFLINE) == []
    assert rig.store.node("north", "g01").online  # type: ignore[union-attr]


def trust_heartbeat(rig: Rig, node: str, age_s: float | None) -> InboundPresence:
    return rig.presence(
        Health(
            node_time=rig.clock.now, session=1, uptime_s=5, last_seq=0, outbox_depth=0,
            outbox_capacity=100, trust_list_age_s=age_s,
        ),
        node,
    )  # fmt: skip


def test_rules__an_old_or_missing_trust_list_alarms(rig: Rig) -> None:
    rig.arrive(rig.birth("g01", trust_list_age_s=50 * 3600.0))
    rig.arrive(rig.birth("g02", trust_list_age_s=None))
    rig.rules.check()
    for _ in range(2):  # two 10 s heartbeats that still say so
        rig.clock.advance(10)
        rig.arrive(trust_heartbeat(rig, "g01", 50 * 3600.0), trust_heartbeat(rig, "g02", None))
        rig.rules.check()
    messages = {a.node: a.message for a in rig.alerts if a.kind == AlertKind.TRUST_STALE}
    assert "50 h old" in messages["g01"]
    assert "no trust list" in messages["g02"]
    rig.arrive(trust_heartbeat(rig, "g01", 10.0))
    rig.rules.check()
    assert rig.store.live_alarm(AlertKind.TRUST_STALE, "north", "g01", "") is None


@pytest.mark.parametrize(
    "age_at_birth_s",
    [None, 50 * 3600.0],
    ids=["no-list-yet", "list-kept-from-before-a-restart"],
)
def test_rules__a_trust_list_arriving_after_the_birth_raises_nothing(
    rig: Rig, age_at_birth_s: float | None
) -> None:
    # A node subscribes to the retained trust list when it connects, after its birth is
    # on its way: every start's birth says "none" or the old list's age (the demo's
    # false trust-stale at every start). The next heartbeat carries the new list's age.
    rig.arrive(rig.birth("g01", trust_list_age_s=age_at_birth_s))
    for _ in range(9):  # checks every second until the first heartbeat
        rig.rules.check()
        rig.clock.advance(1)
    rig.arrive(trust_heartbeat(rig, "g01", 60.0))
    for _ in range(30):
        rig.rules.check()
        rig.clock.advance(1)
    assert rig.states(AlertKind.TRUST_STALE) == []


def test_rules__an_open_gate_with_nobody_on_shift_alarms_after_the_grace(rig: Rig) -> None:
    rig.arrive(rig.birth())
    rig.rules.check()
    rig.clock.advance(59)
    rig.rules.check()
    assert rig.states(AlertKind.GATE_UNATTENDED) == []
    rig.clock.advance(2)
    rig.arrive(rig.birth(session=1))  # still alive
    rig.rules.check()
    assert rig.states(AlertKind.GATE_UNATTENDED) == ["raised"]
    rig.arrive(rig.gates.shift("g01", "start"))
    rig.rules.check()
    assert rig.states(AlertKind.GATE_UNATTENDED) == ["raised", "cleared"]


def report_for(rig: Rig, day: date, counts: CheckpointCounts) -> dict[str, object]:
    end = datetime(day.year, day.month, day.day, 17, tzinfo=SHANGHAI)
    period = report_period(end - timedelta(seconds=1), 17, SHANGHAI)
    return dict(daily_report_fields(period, counts))


def test_rules__at_the_cut_off_a_gate_without_a_report_alarms_until_it_arrives(rig: Rig) -> None:
    rig.arrive(rig.birth("g01"), rig.birth("g02"))
    for _ in range(4):
        rig.arrive(rig.gates.disinfection("g01"))
    day = date(2026, 11, 20)
    rig.arrive(
        rig.gates.daily_report("g01", report_for(rig, day, CheckpointCounts(disinfections=4)))
    )
    rig.clock.now = datetime(2026, 11, 20, 17, 29, tzinfo=SHANGHAI).astimezone(UTC)
    rig.rules.check()
    assert rig.states(AlertKind.REPORT_MISSING) == []  # within the 30 min grace
    rig.clock.now = datetime(2026, 11, 20, 17, 31, tzinfo=SHANGHAI).astimezone(UTC)
    rig.rules.check()
    rig.rules.check()
    missing = [a for a in rig.alerts if a.kind == AlertKind.REPORT_MISSING]
    assert [(a.node, a.state) for a in missing] == [("g02", "raised")]
    rig.arrive(rig.gates.daily_report("g02", report_for(rig, day, CheckpointCounts())))
    assert rig.states(AlertKind.REPORT_MISSING) == ["raised", "cleared"]


def test_rules__a_cut_off_alarm_a_person_cleared_is_not_raised_again_by_a_new_leader(
    rig: Rig,
) -> None:
    rig.arrive(rig.birth("g01"), rig.gates.passage("g01"))
    rig.clock.now = datetime(2026, 11, 20, 17, 31, tzinfo=SHANGHAI).astimezone(UTC)
    rig.rules.check()
    raised = {(a.kind, a.node) for a in rig.alerts if a.state == "raised"}
    assert raised >= {(AlertKind.REPORT_MISSING, "g01"), (AlertKind.DISINFECTION_LOW, "g01")}
    for alarm in rig.store.alarms():
        rig.store.clear_alarm(alarm.alarm_id, "duty officer", rig.clock.now)
    # Another process takes over the clock's work (a restart, or a replica made leader):
    # it checks the same cut-off, finds both said and cleared, and says nothing again.
    rig.clock.advance(60)
    successor = AlarmRules(rig.config, rig.store, rig.book, rig.clock, rig.clock.now)
    successor.check()
    assert rig.store.alarms() == []
    said = [(a.kind, a.node) for a in rig.alerts if a.state == "raised"]
    assert said.count((AlertKind.REPORT_MISSING, "g01")) == 1
    # The next day's cut-off is a new condition: it is raised.
    rig.clock.advance(24 * 3600)
    successor.check()
    assert {(a.kind, a.node, a.subject) for a in rig.store.alarms()} >= {
        (AlertKind.REPORT_MISSING, "g01", "2026-11-21")
    }


def test_rules__fewer_than_four_disinfections_in_the_day_alarm_at_the_cut_off(rig: Rig) -> None:
    rig.arrive(rig.birth("g01"))
    for _ in range(2):
        rig.arrive(rig.gates.disinfection("g01"))
    rig.arrive(rig.gates.passage("g02"))
    for _ in range(4):
        rig.arrive(rig.gates.disinfection("g02"))
    rig.clock.now = datetime(2026, 11, 20, 18, 0, tzinfo=SHANGHAI).astimezone(UTC)
    rig.rules.check()
    low = [a for a in rig.alerts if a.kind == AlertKind.DISINFECTION_LOW]
    assert [a.node for a in low] == ["g01"]
    assert "2 times" in low[0].message


def test_rules__a_cut_off_before_the_gateway_knew_the_site_raises_nothing(rig: Rig) -> None:
    rig.clock.now = datetime(2026, 11, 20, 18, 0, tzinfo=SHANGHAI).astimezone(UTC)
    rig.arrive(rig.birth("g01"))  # first heard of after the 17:00 cut-off
    rig.rules.check()
    assert rig.states(AlertKind.REPORT_MISSING) == []


def test_last_closed_period__ends_at_the_newest_cut_off_before_now() -> None:
    site = SiteSection(name="north", cutoff_hour=17)
    period = last_closed_period(site, datetime(2026, 11, 20, 17, 0, tzinfo=SHANGHAI))
    assert period.end == datetime(2026, 11, 20, 17, 0, tzinfo=SHANGHAI)
    period = last_closed_period(site, datetime(2026, 11, 20, 16, 59, tzinfo=SHANGHAI))
    assert period.end == datetime(2026, 11, 19, 17, 0, tzinfo=SHANGHAI)


def test_rules__one_of_two_volunteers_ending_a_shift_leaves_the_gate_attended(rig: Rig) -> None:
    rig.arrive(rig.birth())
    rig.arrive(rig.gates.shift("g01", "start", volunteer_id="v001"))
    rig.arrive(rig.gates.shift("g01", "start", volunteer_id="v002"))
    rig.arrive(rig.gates.shift("g01", "end", volunteer_id="v002"))
    node = rig.store.node("north", "g01")
    assert node is not None
    assert node.volunteers_on_duty == ["v001"]
    rig.clock.advance(600)
    rig.arrive(rig.birth(session=1))
    rig.rules.check()
    assert rig.states(AlertKind.GATE_UNATTENDED) == []
    rig.arrive(rig.gates.shift("g01", "end", volunteer_id="v001"))
    assert rig.store.node("north", "g01").volunteers_on_duty == []  # type: ignore[union-attr]


def test_rules__a_fever_alarm_is_stored_with_its_event_even_if_the_rules_never_run(
    rig: Rig,
) -> None:
    # The process dies between the commit (and its PUBACKs) and the rules: nothing
    # redelivers the event, so the alarm must already be in the store.
    passage = rig.gates.passage(outcome="hold", reasons=("fever",), temperature_c=38.6)
    written = rig.store.write([passage], cases=alarm_cases)
    assert [a.kind for a in written.alarms] == [AlertKind.FEVER]
    assert rig.store.live_alarm(AlertKind.FEVER, "north", "g01", passage.event.event_id)
    assert rig.store.write([passage], cases=alarm_cases).alarms == []  # redelivered


def test_rules__the_first_events_of_a_running_node_are_no_gap(rig: Rig) -> None:
    # The gateway first hears of g01 at seq 5,000: the 4,999 before are not its loss.
    rig.arrive(*(rig.gates.passage(seq=seq) for seq in (5000, 5001)))
    rig.clock.advance(60)
    rig.rules.check()
    assert rig.states(AlertKind.DATA_LOSS) == []
    rig.arrive(rig.gates.passage(seq=5003))
    rig.clock.advance(60)
    rig.rules.check()
    assert rig.states(AlertKind.DATA_LOSS) == ["raised"], "a hole after that still counts"


def test_rules__clearing_data_loss_by_hand_accepts_the_events_as_lost(rig: Rig) -> None:
    rig.arrive(*(rig.gates.passage(seq=seq) for seq in (1, 2, 4)))
    rig.clock.advance(60)
    rig.rules.check()
    alarm = rig.store.live_alarm(AlertKind.DATA_LOSS, "north", "g01", "")
    assert alarm is not None
    rig.book.clear(alarm.alarm_id, "duty-desk")
    rig.clock.advance(60)
    rig.rules.check()
    assert rig.states(AlertKind.DATA_LOSS) == ["raised", "cleared"], "not raised again"
    node = rig.store.node("north", "g01")
    assert node is not None
    assert (node.seq_contiguous, node.gap_since) == (4, None)


def test_rules__the_newest_events_never_arriving_is_data_loss_too(rig: Rig) -> None:
    # No later event shows a hole: the node's heartbeat says the broker has up to seq 5.
    rig.arrive(rig.birth())
    rig.arrive(*(rig.gates.passage(seq=seq) for seq in (1, 2, 3)))
    rig.arrive(
        rig.presence(
            Health(node_time=rig.clock.now, session=1, uptime_s=9, last_seq=5,
                   outbox_depth=0, outbox_capacity=100)
        )
    )  # fmt: skip
    rig.rules.check()
    rig.clock.advance(59)  # a drained backlog looks the same for a while: six heartbeats
    rig.rules.check()
    assert rig.states(AlertKind.DATA_LOSS) == []
    rig.clock.advance(2)
    rig.rules.check()
    assert rig.states(AlertKind.DATA_LOSS) == ["raised"]
    assert "events 4 to 5 never arrived" in rig.alerts[-1].message
    rig.arrive(*(rig.gates.passage(seq=seq) for seq in (4, 5)))
    rig.rules.check()
    assert rig.states(AlertKind.DATA_LOSS) == ["raised", "cleared"]


def test_rules__events_still_in_the_nodes_outbox_are_no_loss(rig: Rig) -> None:
    rig.arrive(rig.birth())
    rig.arrive(rig.gates.passage(seq=1))
    rig.arrive(
        rig.presence(
            Health(node_time=rig.clock.now, session=1, uptime_s=9, last_seq=40,
                   outbox_depth=39, outbox_capacity=100)
        )
    )  # fmt: skip
    rig.rules.check()
    rig.clock.advance(600)
    rig.rules.check()
    assert rig.states(AlertKind.DATA_LOSS) == []


# --- seqs that cannot be believed, and clearing data loss by hand ---------------------------

OUTBOX = "0f" * 16


def passages(rig: Rig, *seqs: int) -> list[InboundEvent]:
    return [rig.gates.passage(seq=seq) for seq in seqs]


def mark_of(rig: Rig, node: str = "g01") -> tuple[int, int, bool]:
    """(contiguous, seq_max, a gap open) of the node, as the store has it."""
    record = rig.store.node("north", node)
    assert record is not None
    return record.seq_contiguous, record.seq_max, record.gap_since is not None


def after_the_grace(rig: Rig) -> None:
    rig.rules.check()
    rig.clock.advance(60)
    rig.rules.check()


def clear_by_hand(rig: Rig, kind: AlertKind = AlertKind.DATA_LOSS) -> None:
    alarm = rig.store.live_alarm(kind, "north", "g01", "")
    assert alarm is not None
    rig.book.clear(alarm.alarm_id, "duty-desk")


def test_rules__a_seq_far_past_the_mark_is_quarantined_not_counted_and_alarms(rig: Rig) -> None:
    rig.arrive(*passages(rig, *range(1, 12)))
    forged = rig.gates.passage(seq=900_001, outcome="hold", reasons=("fever",))
    rig.arrive(forged)
    rig.arrive(rig.gates.passage(seq=900_002))  # the same forger again: still one alarm
    after_the_grace(rig)
    assert mark_of(rig) == (11, 11, False), "the mark moved"
    assert len(rig.store.passages(EventQuery())) == 11, "counted as a passage"
    assert rig.states(AlertKind.DATA_LOSS) == []
    assert rig.states(AlertKind.FEVER) == [], "a quarantined event opened its alarms"
    assert rig.states(AlertKind.SEQ_JUMP) == ["raised"]
    jump = next(a for a in rig.alerts if a.kind == AlertKind.SEQ_JUMP)
    assert jump.severity == "critical"
    assert jump.message == (
        "north/g01 sent seq 900001, 899990 past its mark 11: quarantined, not counted"
    )
    letters = rig.store.dead_letters()
    assert [letter.reason.split(":")[0] for letter in letters] == ["implausible seq"] * 2
    assert forged.event.event_id in letters[1].payload
    rig.arrive(*passages(rig, 12, 14))  # and a real loss after it still shows
    after_the_grace(rig)
    assert rig.states(AlertKind.DATA_LOSS) == ["raised"]


def test_rules__a_backlog_in_one_batch_is_plausible_however_long(rig: Rig) -> None:
    rig.arrive(rig.birth(outbox_id=OUTBOX, confirmed_seq=0))
    rig.store.write(passages(rig, *range(1, 3001)), limits=IngestLimits(seq_jump_max=1000))
    assert mark_of(rig) == (3000, 3000, False)
    assert rig.store.dead_letters() == []


def test_rules__a_heartbeat_claiming_a_seq_far_ahead_is_not_believed(rig: Rig) -> None:
    rig.arrive(rig.birth(outbox_id=OUTBOX, confirmed_seq=0), *passages(rig, 1, 2, 3))
    forged = Health(node_time=rig.clock.now, session=1, uptime_s=9, last_seq=3_000_018,
                    outbox_depth=0, outbox_capacity=100)  # fmt: skip
    rig.arrive(rig.presence(forged))
    after_the_grace(rig)
    after_the_grace(rig)  # longer than six heartbeats: no "events never arrived"
    assert rig.states(AlertKind.DATA_LOSS) == []
    assert rig.store.node("north", "g01").last_seq is None  # type: ignore[union-attr]
    (jump,) = [a for a in rig.alerts if a.kind == AlertKind.SEQ_JUMP]
    assert (
        jump.message == "north/g01 heartbeat claims seq 3000018, 3000015 past its mark 3: ignored"
    )


def test_rules__a_birth_claiming_far_more_confirmed_than_stored_is_not_believed(
    rig: Rig,
) -> None:
    rig.arrive(rig.birth(outbox_id=OUTBOX, confirmed_seq=0), *passages(rig, 1, 2, 3))
    rig.arrive(rig.birth(session=2, outbox_id=OUTBOX, confirmed_seq=900_000))
    assert mark_of(rig) == (3, 3, False)
    assert rig.states(AlertKind.SEQ_JUMP) == ["raised"]
    rig.arrive(*passages(rig, 4, 6))
    after_the_grace(rig)
    assert rig.states(AlertKind.DATA_LOSS) == ["raised"]


def test_rules__after_a_hand_clear_a_later_gap_raises_again(rig: Rig) -> None:
    rig.arrive(*passages(rig, 1, 2, 4))
    after_the_grace(rig)
    clear_by_hand(rig)
    rig.arrive(*passages(rig, 5, 6, 8))  # 7 is lost
    after_the_grace(rig)
    assert rig.states(AlertKind.DATA_LOSS) == ["raised", "cleared", "raised"]


def test_rules__a_hand_clear_over_a_forged_seq_does_not_hide_later_losses(rig: Rig) -> None:
    # A forged seq within the limit opens a hole nothing real fills; the duty desk,
    # believing the events lost, clears it, and the mark jumps to the forged seq.
    rig.arrive(*passages(rig, *range(1, 12)))
    rig.arrive(rig.gates.passage(seq=150_011))
    after_the_grace(rig)
    clear_by_hand(rig)
    assert mark_of(rig) == (150_011, 150_011, False)
    # The real node goes on from 12, and loses 14: that must still alarm.
    rig.arrive(*passages(rig, 12, 13, 15))
    assert mark_of(rig) == (13, 15, True)
    after_the_grace(rig)
    assert rig.states(AlertKind.DATA_LOSS) == ["raised", "cleared", "raised"]
    assert "first missing 14" in rig.alerts[-1].message


def test_rules__events_arriving_after_they_were_accepted_as_lost_raise_nothing(
    rig: Rig,
) -> None:
    rig.arrive(*passages(rig, 1, 2, *range(4, 11)))
    after_the_grace(rig)
    clear_by_hand(rig)
    rig.arrive(*passages(rig, 3))  # it was not lost after all
    after_the_grace(rig)
    assert mark_of(rig) == (10, 10, False)
    assert rig.states(AlertKind.DATA_LOSS) == ["raised", "cleared"]
