"""AlarmBook: raise, acknowledge and clear alarms once each, and tell the command center."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Protocol

from pydantic import BaseModel, Field

from edge.contract.base import new_event_id
from edge.contract.command import Alert
from edge.contract.topics import AlertKind
from gateway.live import LiveFeed
from gateway.store.base import AlarmStore, MarkStore
from gateway.store.records import AlarmDraft, AlarmRecord, Severity

log = logging.getLogger(__name__)

GATEWAY = "gateway"  # who clears an alarm whose condition ended by itself


# Each alarm's message (plain English, for MQTT and the log) by its wording key. The key
# names the catalogue entry `alarm.<key>` (gateway/web/static/words.json) that the
# dashboard shows in its language, filled with the values read back from the message:
# the message is made only here, so what it holds is known exactly.
MESSAGES: dict[str, str] = {
    "fever": "fever {temperature} °C held at {where}",
    "fever.unmeasured": "fever held at {where}",
    "red-code": "red code stopped at {where}",
    "node-offline.lost": "{where} lost its connection",
    "node-offline.shutdown": "{where} was shut down",
    "node-offline.silent": "{where} silent for {silent_s} s ({missed} heartbeats missed)",
    "clock-skew": "{where} clock is off by {skew_s} s",
    "data-loss.hole": "{where} events missing after seq {contiguous} (have up to {seq_max}; "
    "first missing {first_missing})",
    "data-loss.tail": "{where} events {first} to {last} never arrived (the node reports them "
    "delivered to the broker)",
    "seq-jump.event": "{where} sent seq {seq}, {jump} past its mark {mark}: quarantined, "
    "not counted",
    "seq-jump.heartbeat": "{where} heartbeat claims seq {seq}, {jump} past its mark {mark}: "
    "ignored",
    "seq-jump.birth": "{where} birth claims seq {seq} confirmed, {jump} past its mark {mark}: "
    "ignored",
    "document-refused.trust-list": "{where} refused a trust list ({reason}) and keeps the "
    "one it had",
    "document-refused.revocations": "{where} refused a revocation list ({reason}) and keeps "
    "the one it had",
    "document-refused.config": "{where} refused a node config ({reason}) and keeps the one it had",
    "chain-break": "{where} event chain broken at seq {seq}: it does not link to the event "
    "stored before it; stored, marked",
    "chain-fork": "{where} sent a second, different event for seq {seq}: kept beside the "
    "first, marked",
    "chain-start": "{where} started a new event chain at seq {seq}: it lost its state or was "
    "replaced",
    "hold-override": "{where} let a refused code through: supervisor {volunteer} overrode "
    "hold {hold}",
    "trust-stale.none": "{where} has no trust list",
    "trust-stale.old": "{where} trust list is {age_h} h old",
    "gate-unattended": "{where} is open with nobody on shift",
    "report-missing": "{where} sent no daily report for {day}",
    "disinfection-low.count": "{where} disinfected {count} times on {day} (at least {minimum})",
    "depot-climate.temperature-above": "{where} zone {zone} at {value} °C: {threshold} °C or "
    "above for {lasted_min} min ({storage_class} {condition})",
    "depot-climate.temperature-below": "{where} zone {zone} at {value} °C: {threshold} °C or "
    "below for {lasted_min} min ({storage_class} {condition})",
    "depot-climate.humidity-above": "{where} zone {zone} at {value} %RH: {threshold} %RH or "
    "above for {lasted_min} min ({storage_class} {condition})",
    "depot-climate.humidity-below": "{where} zone {zone} at {value} %RH: {threshold} %RH or "
    "below for {lasted_min} min ({storage_class} {condition})",
    "depot-climate.temperature-above-day": "{where} zone {zone} at {value} °C: {threshold} °C "
    "or above for {lasted_min} min in all on {day} ({storage_class} {condition})",
    "depot-climate.temperature-below-day": "{where} zone {zone} at {value} °C: {threshold} °C "
    "or below for {lasted_min} min in all on {day} ({storage_class} {condition})",
    "depot-climate.humidity-above-day": "{where} zone {zone} at {value} %RH: {threshold} %RH "
    "or above for {lasted_min} min in all on {day} ({storage_class} {condition})",
    "depot-climate.humidity-below-day": "{where} zone {zone} at {value} %RH: {threshold} %RH "
    "or below for {lasted_min} min in all on {day} ({storage_class} {condition})",
    "depot-climate.temperature-rise": "{where} zone {zone} rising {rate} °C/min to {value} °C "
    "over {gap_min} min: {threshold} °C/min or faster ({storage_class} {condition})",
    "depot-climate.temperature-fall": "{where} zone {zone} falling {rate} °C/min to {value} °C "
    "over {gap_min} min: {threshold} °C/min or faster ({storage_class} {condition})",
    "depot-climate.humidity-rise": "{where} zone {zone} rising {rate} %RH/min to {value} %RH "
    "over {gap_min} min: {threshold} %RH/min or faster ({storage_class} {condition})",
    "depot-climate.humidity-fall": "{where} zone {zone} falling {rate} %RH/min to {value} %RH "
    "over {gap_min} min: {threshold} %RH/min or faster ({storage_class} {condition})",
    "depot-sensor-stale": "{where} zone {zone} sent no reading for {silent_min} min",
    "stock-discrepancy": "{where} scale {scale} weighs {weighed} {unit} of {item}, the ledger "
    "says {ledger}, for {lasted_min} min",
    "stock-shortage": "{where} {target} at {days} days of cover, below its target of "
    "{target_days} days",
    "stock-shortage.out": "{where} {target} out of stock (target {target_days} days)",
    "stock-report-missing": "{where} has not submitted its daily stock report for {day} "
    "(due {deadline})",
}
_SLOT = re.compile(r"\{(\w+)\}")


def utc_now() -> datetime:
    return datetime.now(UTC)


def where(site: str, node: str | None) -> str:
    return f"{site}/{node}" if node else site


def draft(
    kind: AlertKind,
    key: str,
    site: str,
    node: str | None,
    severity: Severity,
    *,
    subject: str = "",
    **values: object,
) -> AlarmDraft:
    """An alarm to raise, its message made from `MESSAGES[key]` and `values`."""
    message = MESSAGES[key].format(where=where(site, node), **values)
    return AlarmDraft(kind, site, node, subject, severity, message)


class AlarmWords(BaseModel):
    """What an alarm says, for a page to put in its own language."""

    key: str = Field(
        description="the catalogue entry is alarm.<key>: the message's (a kind, or kind.variant), "
        "or `other` for a message no template matches, said as the place and the kind's name"
    )
    values: dict[str, str] = Field(description="fill the entry's {slots}: node, place, …")


def words_of(alarm: AlarmRecord) -> AlarmWords:
    """The alarm's wording key and values, read from its message.

    A message no template matches (written by an older gateway, or by hand) gets `other`:
    the place and the kind's name, which every alarm has.
    """
    place = {"site": alarm.site, "node": alarm.node or "", "place": alarm.node or alarm.site}
    for key, pattern in _patterns(str(alarm.kind)):
        found = pattern.fullmatch(alarm.message)
        if found and found.group("where") == where(alarm.site, alarm.node):
            values = {name: value for name, value in found.groupdict().items() if name != "where"}
            return AlarmWords(key=key, values=place | values)
    return AlarmWords(key="other", values=place)


class AlarmView(AlarmRecord):
    """An alarm as the API and the dashboard show it: the record and its words."""

    words: AlarmWords

    @classmethod
    def of(cls, alarm: AlarmRecord) -> AlarmView:
        return cls(**alarm.model_dump(), words=words_of(alarm))


@cache
def _patterns(kind: str) -> list[tuple[str, re.Pattern[str]]]:
    made = []
    for key, template in MESSAGES.items():
        if key == kind or key.startswith(f"{kind}."):
            parts = _SLOT.split(template)  # literal, name, literal, name, …, literal
            regex = "".join(
                re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)"
                for i, part in enumerate(parts)
            )
            made.append((key, re.compile(regex, re.DOTALL)))
    return made


def alert_of(alarm: AlarmRecord) -> Alert:
    """The MQTT alert for an alarm's current state (no personal data: plain message only)."""
    at = {
        "raised": alarm.raised_at,
        "acknowledged": alarm.acknowledged_at,
        "cleared": alarm.cleared_at,
    }[alarm.state]
    if alarm.state == "raised" and alarm.escalated_at is not None:
        at = alarm.escalated_at  # its escalation is the newest step of a raised alarm
    return Alert(
        alert_id=alarm.alarm_id, kind=alarm.kind, state=alarm.state, severity=alarm.severity,
        site=alarm.site, node=alarm.node, raised_at=alarm.raised_at, at=at or alarm.raised_at,
        message=alarm.message, escalated_at=alarm.escalated_at,
    )  # fmt: skip


class AlarmBookStore(AlarmStore, MarkStore, Protocol):
    """The alarms, and the seq marks: a person clearing a data-loss alarm accepts its gap."""


class AlarmBook:
    """The alarm lifecycle over the store; every step is published as an Alert.

    A condition is named by (kind, site, node, subject): raising it again while it is
    live does nothing, so rules can re-check every second without duplicates.

    Args:
        store: where alarms live.
        publish: sends an Alert to the command center (MQTT); must not block long.
        live: told about every change, for the dashboard.
        clock: now, in UTC (tests pass their own).
    """

    def __init__(
        self,
        store: AlarmBookStore,
        publish: Callable[[Alert], None],
        live: LiveFeed,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._publish = publish
        self._live = live
        self._clock = clock

    def raise_alarm(self, draft: AlarmDraft) -> AlarmRecord | None:
        """Open the alarm unless the same condition is live; returns it when newly raised."""
        raised = self.raise_alarms([draft])
        return raised[0] if raised else None

    def raise_alarms(self, drafts: Sequence[AlarmDraft]) -> list[AlarmRecord]:
        """Open several alarms in one transaction (a batch's fever and red-code cases)."""
        if not drafts:
            return []
        now = self._clock()
        raised = self._store.raise_alarms([(d, new_event_id(now)) for d in drafts], now)
        self.announce(raised)
        return raised

    def announce(self, raised: Sequence[AlarmRecord]) -> None:
        """Tell the command center about alarms opened elsewhere (with ingest's events).

        The log gets one line per call, not one per alarm: a batch of a drained backlog
        opens a hundred at once (7 % of the bench's passages are fevers or red codes),
        each already stored, published and on the dashboard. The line counts them by kind
        and names every id, so an alarm seen in the API is found in the log; each one's
        message is at DEBUG.
        """
        for alarm in raised:
            log.debug("alarm %s %s raised: %s", alarm.kind, alarm.alarm_id, alarm.message)
            self._tell(alarm)
        if len(raised) == 1:
            alarm = raised[0]
            log.warning("alarm %s raised (%s): %s", alarm.kind, alarm.alarm_id, alarm.message)
        elif raised:
            kinds = Counter(str(alarm.kind) for alarm in raised)
            log.info(
                "%d alarms raised (%s): %s", len(raised),
                ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())),
                " ".join(alarm.alarm_id for alarm in raised),
            )  # fmt: skip

    def acknowledge(self, alarm_id: str, by: str) -> AlarmRecord:
        """Someone has seen it. Raises UnknownAlarm, or ValueError if already cleared."""
        alarm, changed = self._store.acknowledge_alarm(alarm_id, by, self._clock())
        if changed:
            self._tell(alarm)
        return alarm

    def clear(self, alarm_id: str, by: str) -> AlarmRecord:
        """End the alarm. Raises UnknownAlarm."""
        alarm, changed = self._store.clear_alarm(alarm_id, by, self._clock())
        if changed:
            log.info("alarm %s cleared by %s", alarm.kind, by)
            if alarm.kind == AlertKind.DATA_LOSS and by != GATEWAY and alarm.node:
                # A person clearing it accepts the missing events as lost; otherwise the
                # gap, still open, would raise it again at the next check.
                self._store.accept_gap(alarm.site, alarm.node)
            self._tell(alarm)
        return alarm

    def escalate(self, raised_before: datetime) -> list[AlarmRecord]:
        """Send once more, escalated, each alarm raised at or before then and still not
        acknowledged. Marked in the store first: a restart or a second gateway never sends
        one twice. Costs one read when there is nothing to escalate."""
        due = self._store.alarms_to_escalate(raised_before)
        if not due:
            return []
        escalated = self._store.escalate_alarms(due, self._clock())
        for alarm in escalated:
            log.warning("alarm %s escalated (not acknowledged): %s", alarm.kind, alarm.message)
            self._tell(alarm)
        return escalated

    def live(self, kind: str, site: str, node: str | None, subject: str = "") -> AlarmRecord | None:
        """The condition's alarm while it is raised or acknowledged, else None."""
        return self._store.live_alarm(kind, site, node, subject)

    def clear_condition(
        self, kind: str, site: str, node: str | None, subject: str = ""
    ) -> AlarmRecord | None:
        """Clear the live alarm for a condition that has ended, if there is one."""
        live = self.live(kind, site, node, subject)
        return self.clear(live.alarm_id, GATEWAY) if live else None

    def _tell(self, alarm: AlarmRecord) -> None:
        self._live.changed()
        try:
            self._publish(alert_of(alarm))
        except Exception:  # the alarm is stored; the broker being away must not undo it
            log.exception("could not publish the %s alert", alarm.kind)
