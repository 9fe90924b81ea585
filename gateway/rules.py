"""Alarm rules: what raises and clears each kind of alarm, on arrival and as time passes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from edge.contract.events import DailyReport, DeviceFault, HoldResolved
from edge.contract.presence import Death
from edge.contract.topics import AlertKind, Role
from edge.gate.daily import ReportPeriod, report_period
from gateway.alarm_cases import refusal
from gateway.alarms import AlarmBook, draft
from gateway.config import GatewayConfig, SiteSection
from gateway.depot_rules import ExcursionRules
from gateway.reports import report_date_of
from gateway.stock.scales import ScaleRules, ScalesStore
from gateway.store.base import AlarmStore, DepotStore, IngestStore, ReadStore
from gateway.store.records import (
    AlarmDraft,
    ChainFault,
    InboundPresence,
    NodeRecord,
    Quarantined,
    Written,
)

log = logging.getLogger(__name__)


TAIL_HEARTBEATS = 6  # heartbeats a missing tail must last before it is data loss
# Heartbeats a node has to show a usable trust list. Its birth is sent on connecting,
# before the broker has delivered the retained trust list it subscribes to then, so a
# birth says "none" (or the age of the list kept from before a restart) on every start.
TRUST_HEARTBEATS = 2


class RulesStore(ReadStore, AlarmStore, DepotStore, IngestStore, Protocol):
    """What the rules read (nodes, their records, live alarms, depots) and write (offline)."""


class AlarmRules:
    """Turns what arrives, and what fails to arrive in time, into alarms.

    On arrival: fever and red code (one alarm per case, named by the passage), a node's
    death or return, clock skew, a late daily report clearing its alarm, depot climate
    excursions (`ExcursionRules`). As time passes
    (`check()`, every second or so): missed heartbeats, seq gaps that stay open, stale
    trust lists, gates with nobody on shift, depot zones whose sensor went quiet, at each
    cut-off the reports that did not come and the disinfection rounds that were too few,
    and the escalation of alarms nobody acknowledged in time.

    Args:
        config: inventory and limits.
        store: what has arrived.
        book: raises and clears, once each.
        clock: now, in UTC.
        started_at: when this gateway started (a node it has not heard from since is
            not "missing heartbeats" before it could have sent one).
    """

    def __init__(
        self,
        config: GatewayConfig,
        store: RulesStore,
        book: AlarmBook,
        clock: Callable[[], datetime],
        started_at: datetime,
    ) -> None:
        self._config = config
        self._limits = config.alarms
        self._store = store
        self._book = book
        self._clock = clock
        self._started_at = started_at
        self._unattended_since: dict[tuple[str, str], datetime] = {}
        self._tail_since: dict[tuple[str, str], datetime] = {}
        self._untrusted_since: dict[tuple[str, str], datetime] = {}
        self._closed_checked: dict[str, datetime] = {}
        self._live: set[tuple[str, str, str, str]] = set()
        self._raising: list[AlarmDraft] = []
        self._silent: list[tuple[str, str, datetime | None]] = []
        self._closing: dict[str, datetime] = {}
        self._excursions = ExcursionRules(config, store, book)
        # Scales against the stock ledger, when the store keeps one (the SQLite store does).
        self._scales = ScaleRules(config, store, book) if isinstance(store, ScalesStore) else None

    # --- on arrival -------------------------------------------------------------------

    def on_stored(self, written: Written) -> None:
        """Rules for a committed batch: new events and applied presence only.

        The batch's fever and red-code alarms were opened with it (`alarm_cases`); here
        they are announced, and what the batch ended is cleared.
        """
        self._book.announce(written.alarms)
        self._quarantined(written.quarantined)
        self._chain(written.chain)
        for item in written.events:
            event = item.event
            if isinstance(event, HoldResolved):
                self._resolved(item.site, item.node, event)
            elif isinstance(event, DeviceFault) and refusal(event):
                self._refusal_over(item.site, item.node, event.device)
            elif isinstance(event, DailyReport):
                self._book.clear_condition(
                    AlertKind.REPORT_MISSING, item.site, item.node, event.day.isoformat()
                )
        for update in written.presence:
            self._presence(update)
        self._excursions.on_stored(written.events)
        if self._scales is not None:
            self._scales.on_stored(written.events)

    def _quarantined(self, quarantined: list[Quarantined]) -> None:
        # One alarm per node until the command center clears it: a forger sending seqs
        # far ahead, or a node broken enough to, is for a person to look at.
        first = {(q.site, q.node): q for q in reversed(quarantined)}
        self._book.raise_alarms([
            draft(
                AlertKind.SEQ_JUMP, f"seq-jump.{q.what}", q.site, q.node, "critical",
                seq=q.seq, jump=q.seq - q.mark, mark=q.mark,
            )
            for q in first.values()
        ])  # fmt: skip

    def _chain(self, faults: list[ChainFault]) -> None:
        # One alarm per event named: a forged or changed event is evidence for a person,
        # and a new chain says the node lost its state (its outbox was replaced).
        kinds = {"break": AlertKind.CHAIN_BREAK, "fork": AlertKind.CHAIN_FORK,
                 "start": AlertKind.CHAIN_START}  # fmt: skip
        self._book.raise_alarms([
            draft(
                kinds[f.what], f"chain-{f.what}", f.site, f.node,
                "warning" if f.what == "start" else "critical", subject=f.event_id, seq=f.seq,
            )
            for f in faults
        ])  # fmt: skip

    def _refusal_over(self, site: str, node: str, device: str) -> None:
        # The node clears its refusal when a valid document replaces the refused one. Asked
        # of the store, not of this event: a clear that overtook its raise still counts.
        if (device, "refused") not in {
            (f.device, f.fault) for f in self._store.node_faults(site, node)
        }:
            self._book.clear_condition(AlertKind.DOCUMENT_REFUSED, site, node, device)

    def _resolved(self, site: str, node: str, resolved: HoldResolved) -> None:
        # A normal re-measure ends the case; a referral or a turn-back is for the command
        # center to acknowledge and clear, and so is a release on a typed temperature
        # (the node's thermometer was faulty): nobody's sensor saw the fever end.
        if resolved.resolution != "released" or resolved.temperature_source == "manual":
            return
        hold = self._store.hold(resolved.hold_id)
        if hold is not None:
            self._book.clear_condition(AlertKind.FEVER, site, node, hold.passage_id)

    def _presence(self, update: InboundPresence) -> None:
        site, node, payload = update.site, update.node, update.payload
        if isinstance(payload, Death):
            lost = payload.reason == "lost"
            self._book.raise_alarm(
                draft(
                    AlertKind.NODE_OFFLINE, f"node-offline.{'lost' if lost else 'shutdown'}",
                    site, node, "critical" if lost else "warning",
                )
            )  # fmt: skip
            return
        self._book.clear_condition(AlertKind.NODE_OFFLINE, site, node)
        skew = update.skew_s
        if skew is None:
            return
        if abs(skew) > self._limits.clock_skew_max_s:
            self._book.raise_alarm(
                draft(
                    AlertKind.CLOCK_SKEW, "clock-skew", site, node, "warning", skew_s=f"{skew:+.0f}"
                )
            )
        elif abs(skew) < self._limits.clock_skew_max_s / 2:
            # Half the limit to clear, so a clock hovering at the limit does not flap.
            self._book.clear_condition(AlertKind.CLOCK_SKEW, site, node)

    # --- as time passes ----------------------------------------------------------------

    def check(self) -> None:
        """Time-based rules; cheap enough to run every second.

        Conditions that persist (a gate unattended all night) are checked against one read
        of the live alarms, so a second's check costs no write when nothing changed, and
        what it raises is written in one transaction: ingest holds the write lock most
        of the time when busy, and two hundred gates must not queue for it one by one.
        """
        now = self._clock()
        self._live = self._store.live_conditions(_CLOCK_KINDS)
        self._raising = []
        self._silent = []
        self._closing = {}
        nodes = self._store.nodes()
        for record in nodes:
            self._heartbeat(record, now)
            self._seq_gap(record, now)
            if record.role is Role.GATE:
                self._trust(record, now)
                self._attended(record, now)
        for site in self._config.sites:
            self._cutoff(site, nodes, now)
        self._stale_zones(nodes, now)
        marked = set(self._store.mark_offline(self._silent, "heartbeat"))
        # A node heard from since the nodes were read was not marked: no alarm for it.
        self._book.raise_alarms(
            [d for d in self._raising
             if d.kind != AlertKind.NODE_OFFLINE or (d.site, d.node) in marked]
        )  # fmt: skip
        # Only now: a failure above leaves the cut-off to be checked again next time.
        self._closed_checked.update(self._closing)
        if self._limits.escalate_after_min:
            self._book.escalate(now - timedelta(minutes=self._limits.escalate_after_min))

    def _raise(self, alarm: AlarmDraft) -> None:
        if _clock_key(alarm.kind, alarm.site, alarm.node, alarm.subject) not in self._live:
            self._raising.append(alarm)

    def _clear(self, kind: AlertKind, site: str, node: str | None, subject: str = "") -> None:
        if _clock_key(kind, site, node, subject) in self._live:
            self._book.clear_condition(kind, site, node, subject)

    def _heartbeat(self, node: NodeRecord, now: datetime) -> None:
        if not node.online or node.heartbeat_s is None:
            return
        last = max(node.last_seen or self._started_at, self._started_at)
        silent_s = (now - last).total_seconds()
        if silent_s > node.heartbeat_s * self._limits.heartbeats_missed:
            self._silent.append((node.site, node.node, node.last_seen))
            self._raise(
                draft(
                    AlertKind.NODE_OFFLINE, "node-offline.silent", node.site, node.node, "critical",
                    silent_s=f"{silent_s:.0f}", missed=self._limits.heartbeats_missed,
                )
            )  # fmt: skip

    def _seq_gap(self, node: NodeRecord, now: datetime) -> None:
        grace_s = self._limits.gap_grace_s
        key = (node.site, node.node)
        # The tail: the node says the broker has every entry up to last_seq (nothing left
        # in its outbox), and the newest of them never came. No later event shows a gap.
        tail_since: datetime | None = None
        if node.last_seq is not None and node.last_seq > node.seq_max and node.outbox_depth == 0:
            tail_since = self._tail_since.setdefault(key, now)
        else:
            self._tail_since.pop(key, None)
        if node.gap_since is not None and (now - node.gap_since).total_seconds() >= grace_s:
            loss = draft(
                AlertKind.DATA_LOSS, "data-loss.hole", node.site, node.node, "critical",
                contiguous=node.seq_contiguous, seq_max=node.seq_max,
                first_missing=node.seq_contiguous + 1,
            )  # fmt: skip
        elif tail_since is not None and (now - tail_since).total_seconds() >= max(
            # Longer than for a hole: a backlog being drained looks the same for a while.
            grace_s,
            TAIL_HEARTBEATS * (node.heartbeat_s or 10),
        ):
            loss = draft(
                AlertKind.DATA_LOSS, "data-loss.tail", node.site, node.node, "critical",
                first=node.seq_max + 1, last=node.last_seq,
            )  # fmt: skip
        elif node.gap_since is None and tail_since is None:
            self._clear(AlertKind.DATA_LOSS, node.site, node.node)
            return
        else:
            return  # still within the grace
        self._raise(loss)

    def _trust(self, node: NodeRecord, now: datetime) -> None:
        key = (node.site, node.node)
        if not node.online:
            self._untrusted_since.pop(key, None)
            return
        limit_s = self._limits.trust_max_age_h * 3600
        age = node.trust_age_now(now)
        if age is not None and age <= limit_s:
            self._untrusted_since.pop(key, None)
            self._clear(AlertKind.TRUST_STALE, node.site, node.node)
            return
        since = self._untrusted_since.setdefault(key, now)
        if (now - since).total_seconds() < TRUST_HEARTBEATS * (node.heartbeat_s or 10):
            return  # the retained list may be on its way: the next heartbeat will say
        if age is None:
            stale = draft(
                AlertKind.TRUST_STALE, "trust-stale.none", node.site, node.node, "warning"
            )
        else:
            stale = draft(
                AlertKind.TRUST_STALE, "trust-stale.old", node.site, node.node, "warning",
                age_h=f"{age / 3600:.0f}",
            )  # fmt: skip
        self._raise(stale)

    def _attended(self, node: NodeRecord, now: datetime) -> None:
        key = (node.site, node.node)
        if not node.online or node.volunteers_on_duty:
            self._unattended_since.pop(key, None)
            self._clear(AlertKind.GATE_UNATTENDED, node.site, node.node)
            return
        since = self._unattended_since.setdefault(key, now)
        if (now - since).total_seconds() >= self._limits.unattended_after_s:
            self._raise(
                draft(AlertKind.GATE_UNATTENDED, "gate-unattended", node.site, node.node, "warning")
            )

    def _stale_zones(self, nodes: list[NodeRecord], now: datetime) -> None:
        """A zone with a class and no ok reading for its site's `depot_stale_after_min`.

        Judged by the `at` of the zone's newest ok reading the excursion rules evaluated,
        against the gateway's clock, and never before the gateway has run that long (it
        cannot know what came while it was down). Only for an online node with no live
        node-offline alarm: a node that is away altogether has that one alarm, not one
        per zone beside it. Cleared at the first check after an ok reading newer than the
        limit, whatever the node's state.
        """
        watched = [s for s in self._config.sites if s.zones and s.depot_stale_after_min]
        if not watched:
            return
        last_ok = self._store.zones_last_evaluated()
        found_silent = {(site, node) for site, node, _ in self._silent}  # offline just now
        online = {
            (n.site, n.node) for n in nodes
            if n.online and (n.site, n.node) not in found_silent
            and _key(AlertKind.NODE_OFFLINE, n.site, n.node, "") not in self._live
        }  # fmt: skip
        for site in watched:
            limit = timedelta(minutes=site.depot_stale_after_min)
            for node, zones in site.zones.items():
                for zone in zones:
                    last = last_ok.get((site.name, node, zone))
                    if last is not None and now - last < limit:
                        self._clear(AlertKind.DEPOT_SENSOR_STALE, site.name, node, zone)
                    elif (site.name, node) in online and now - self._started_at >= limit:
                        silent = now - (last or self._started_at)
                        self._raise(
                            draft(
                                AlertKind.DEPOT_SENSOR_STALE, "depot-sensor-stale", site.name,
                                node, "warning", subject=zone, zone=zone,
                                silent_min=f"{silent.total_seconds() / 60:.0f}",
                            )
                        )  # fmt: skip

    def _cutoff(self, site: SiteSection, nodes: list[NodeRecord], now: datetime) -> None:
        closed = last_closed_period(site, now - timedelta(minutes=self._limits.report_grace_min))
        if self._closed_checked.get(site.name) == closed.end:
            return
        known = [n.first_seen for n in nodes if n.site == site.name and n.first_seen]
        if not known or min(known) >= closed.end:
            return  # the gateway did not know this site before that cut-off
        self._closing[site.name] = closed.end
        day = closed.end.date()  # as the gates' reports say it; people name it `named`
        named = report_date_of(day, site.cutoff_hour).isoformat()
        reported = {r.node for r in self._store.daily_reports(site.name, day)}
        # Once per gate and cut-off, whoever checks it: a gateway restarted, or a replica
        # that took over as leader, does not raise again what a person already cleared.
        said = self._store.conditions_raised_since(closed.end, _CUTOFF_KINDS)

        def raise_once(alarm: AlarmDraft) -> None:
            if _key(alarm.kind, alarm.site, alarm.node, alarm.subject) not in said:
                self._raise(alarm)

        for gate in site.gates:
            counts = self._store.counts(site.name, gate, closed.start, closed.end)
            if gate not in reported:
                raise_once(
                    draft(
                        AlertKind.REPORT_MISSING, "report-missing", site.name, gate, "warning",
                        subject=day.isoformat(), day=named,
                    )
                )  # fmt: skip
            active = gate in reported or not counts.is_zero
            if active and counts.disinfections < self._limits.disinfections_min:
                raise_once(
                    draft(
                        AlertKind.DISINFECTION_LOW, "disinfection-low.count", site.name, gate,
                        "warning", subject=day.isoformat(), count=counts.disinfections,
                        day=named, minimum=self._limits.disinfections_min,
                    )
                )  # fmt: skip


# The alarms a cut-off raises: one each per gate and day, never again once said.
_CUTOFF_KINDS = (str(AlertKind.REPORT_MISSING), str(AlertKind.DISINFECTION_LOW))
# Every kind `check` raises or clears as time passes: the live alarms it reads each second
# (`_key` of a draft of another kind would look not live, and be raised again).
_CLOCK_KINDS = (
    *_CUTOFF_KINDS, str(AlertKind.NODE_OFFLINE), str(AlertKind.DATA_LOSS),
    str(AlertKind.TRUST_STALE), str(AlertKind.GATE_UNATTENDED),
    str(AlertKind.DEPOT_SENSOR_STALE),
)  # fmt: skip


def _key(kind: str, site: str, node: str | None, subject: str) -> tuple[str, str, str, str]:
    return (str(kind), site, node or "", subject)


def _clock_key(kind: str, site: str, node: str | None, subject: str) -> tuple[str, str, str, str]:
    """The key of a condition `check` reads live; a kind it does not read is a bug here."""
    if str(kind) not in _CLOCK_KINDS:
        raise ValueError(f"{kind}: not among the kinds check() reads live (_CLOCK_KINDS)")
    return _key(kind, site, node, subject)


def last_closed_period(site: SiteSection, now: datetime) -> ReportPeriod:
    """The newest reporting period of `site` that had ended by `now`."""
    current = report_period(now, site.cutoff_hour, site.zone)
    return report_period(current.start - timedelta(microseconds=1), site.cutoff_hour, site.zone)
