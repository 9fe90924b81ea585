"""The demo's live status: what the watcher's messages add up to, and the addresses to open.

The watcher prints one line per MQTT message (`HH:MM:SS.mmm <topic>[ (retained)] <json>`,
or `!! …` for a contract violation). It watches as a technician does, so it reads no
events (they carry personal data): the counts per gate are the gateway's retained gate
summaries, the device faults the gates' heartbeats. `DemoStatus.take` reads those lines
and keeps counts per gate and the open alarms; `frame` draws them, with every address and the
token, in a terminal's size; `StatusScreen` redraws that frame in place every second.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from edge.contract.topics import DEFAULT_PREFIX, TopicKind, parse
from edge.errors import UnknownTopic

_LINE = re.compile(r"^\S+ (?P<topic>\S+)(?: \(retained\))? (?P<body>\{.*\})$")
_ALT_SCREEN_ON, _ALT_SCREEN_OFF = "\x1b[?1049h\x1b[?25l", "\x1b[?25h\x1b[?1049l"
_HOME, _CLEAR_LINE, _CLEAR_BELOW = "\x1b[H", "\x1b[K", "\x1b[J"
_ROW = "{:<5} {:<23} {:<8} {:>6} {:>5} {:>7} {:>6}"


@dataclass
class GateStatus:
    """One gate as its messages tell it: its status, heartbeat and the gateway's summary."""

    console_url: str
    state: str = "starting"
    counts: dict[str, int] = field(default_factory=dict)  # the gate summary's counts
    faults: dict[str, str] = field(default_factory=dict)  # device -> its state, when not ok
    outbox_depth: int | None = None


@dataclass
class Alarm:
    kind: str
    node: str | None
    severity: str
    message: str


class DemoStatus:
    """Counts per gate, open alarms and message totals, from the watcher's lines.

    Args:
        heading: the first line, saying what runs.
        raw_hint: how to see every message (the log file, the --raw flag).
    """

    def __init__(self, heading: str, raw_hint: str) -> None:
        self.heading = heading
        self.raw_hint = raw_hint
        self.addresses: list[tuple[str, str]] = []
        self.gates: dict[str, GateStatus] = {}
        self.alarms: dict[str, Alarm] = {}
        self.alarms_raised = 0
        self.messages = 0
        self.violations: list[str] = []
        self._lock = threading.Lock()

    def add_address(self, label: str, address: str) -> None:
        """An address (or the token) the status always shows, under `label`."""
        with self._lock:
            self.addresses.append((label, address))

    def add_gate(self, name: str, console_url: str) -> None:
        """A gate to count messages for; rows appear in the order gates are added."""
        with self._lock:
            self.gates[name] = GateStatus(console_url)

    def take(self, line: str) -> None:
        """Account for one line the watcher printed (any other line is ignored)."""
        with self._lock:
            if line.split(" ", 1)[-1].startswith("!!"):
                self.messages += 1
                self.violations.append(line)
                return
            found = _LINE.match(line)
            if found is None:
                return
            self.messages += 1
            try:
                topic = parse(found["topic"], DEFAULT_PREFIX)
                body: dict[str, Any] = json.loads(found["body"])
            except (UnknownTopic, ValueError):
                return
            if topic.kind is TopicKind.ALERT:
                self._alert(body)
            elif topic.node in self.gates:
                self._gate(self.gates[topic.node], topic.kind, body)

    def _gate(self, gate: GateStatus, kind: TopicKind, body: dict[str, Any]) -> None:
        if kind is TopicKind.STATUS:
            gate.state = str(body.get("state", gate.state))
        elif kind is TopicKind.HEALTH:
            gate.outbox_depth = body.get("outbox_depth")
            devices = body.get("devices") or {}
            gate.faults = {
                str(d): str(s) for d, s in devices.items() if s not in ("ok", "disabled")
            }
        elif kind is TopicKind.GATE_SUMMARY:
            gate.counts = dict(body.get("counts") or {})

    def _alert(self, body: dict[str, Any]) -> None:
        alert_id = str(body.get("alert_id"))
        if body.get("state") == "cleared":
            self.alarms.pop(alert_id, None)
            return
        if body.get("state") == "raised" and alert_id not in self.alarms:
            self.alarms_raised += 1
        self.alarms[alert_id] = Alarm(
            kind=str(body.get("kind")),
            node=body.get("node"),
            severity=str(body.get("severity")),
            message=str(body.get("message", "")),
        )

    def frame(self, width: int = 80, height: int = 24) -> list[str]:
        """The status as lines that fit `width` by `height`; addresses wrap, never cut."""
        with self._lock:
            top = [f"{self.heading}  {datetime.now().strftime('%H:%M:%S')}", ""]
            for label, address in self.addresses:
                top += [f"{label}:", *_wrap(f"  {address}", width)]
            gates = [_ROW.format("gate", "console", "state", "passed", "held", "stopped",
                                 "fever")]  # fmt: skip
            gates += [self._gate_line(name, gate) for name, gate in self.gates.items()]
            alarms = [self._alarm_line()]
            bottom = [self._messages_line()]
            bottom += [part for line in self.raw_hint.splitlines() for part in _wrap(line, width)]
            bottom.append("Ctrl-C stops everything.")
            blocks = [top, gates, alarms, bottom]
            spare = height - sum(map(len, blocks)) - (len(blocks) - 1)
            shown = list(self.alarms.values())[-spare:] if spare > 0 else []
            alarms += [f"  {alarm.severity:<8} {alarm.node or '':<4} {alarm.message}"
                       for alarm in shown]  # fmt: skip
        # Blank lines between the blocks only while they fit.
        lines = [line for block in blocks for line in ("", *block)][1:]
        if len(lines) > height:
            lines = [line for block in blocks for line in block]
        return [line[:width] for line in lines[:height]]

    def summary(self) -> list[str]:
        """A few plain lines: the counts and every address (for logs and the end of a run)."""
        with self._lock:
            gates = "; ".join(
                f"{name} {gate.state} {gate.console_url} {self._counts(gate)}"
                for name, gate in self.gates.items()
            )
            addresses = "; ".join(f"{label} {address}" for label, address in self.addresses)
            return [f"gates: {gates}", self._alarm_line().strip(), addresses]

    def _gate_line(self, name: str, gate: GateStatus) -> str:
        counts = gate.counts
        line = _ROW.format(name, gate.console_url, gate.state, counts.get("allowed", 0),
                           counts.get("held", 0), counts.get("turned_back", 0),
                           counts.get("fever", 0))  # fmt: skip
        faults = ", ".join(f"{device} {fault}" for device, fault in gate.faults.items())
        return f"{line}  {faults}" if faults else line

    @staticmethod
    def _counts(gate: GateStatus) -> str:
        counts = gate.counts
        return (
            f"(passed {counts.get('allowed', 0)}, held {counts.get('held', 0)}, "
            f"stopped {counts.get('turned_back', 0)}, fever {counts.get('fever', 0)})"
        )

    def _alarm_line(self) -> str:
        return f"Alarms open: {len(self.alarms)}   raised since start: {self.alarms_raised}"

    def _messages_line(self) -> str:
        line = f"Messages: {self.messages}, contract violations: {len(self.violations)}"
        return f"{line} (last: {self.violations[-1]})" if self.violations else line


def _wrap(line: str, width: int) -> list[str]:
    """`line` cut into pieces of `width`, each after the first indented like it: an address
    must stay whole to be copied, where any other line may lose its end."""
    indent = " " * (len(line) - len(line.lstrip()))
    step = max(1, width - len(indent))
    first, rest = line[:width], line[width:]
    return [first, *(indent + rest[i : i + step] for i in range(0, len(rest), step))]


class StatusScreen:
    """Redraws a DemoStatus in place on a terminal, on its alternate screen, every `period_s`.

    The terminal's own screen is left as it was: after `close()` the lines printed before
    (and the ones printed after) are where they were.
    """

    def __init__(self, status: DemoStatus, out: TextIO, period_s: float = 1.0) -> None:
        self.status = status
        self.out = out
        self.period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-status", daemon=True)

    def start(self) -> None:
        self.out.write(_ALT_SCREEN_ON)
        self._thread.start()

    def close(self) -> None:
        """Stop redrawing and give the terminal back (idempotent; nothing if never started)."""
        if not self.showing:
            return
        self._stop.set()
        self._thread.join(5)
        self.out.write(_ALT_SCREEN_OFF)
        self.out.flush()

    @property
    def showing(self) -> bool:
        """Started and not closed yet."""
        return self._thread.is_alive() and not self._stop.is_set()

    def _run(self) -> None:
        while True:
            size = shutil.get_terminal_size((80, 24))
            lines = self.status.frame(size.columns, size.lines)
            drawn = "".join(f"{line}{_CLEAR_LINE}\r\n" for line in lines[:-1])
            self.out.write(f"{_HOME}{drawn}{lines[-1]}{_CLEAR_LINE}{_CLEAR_BELOW}")
            self.out.flush()
            if self._stop.wait(self.period_s):
                return
