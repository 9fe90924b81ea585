"""Device pairing for the console beyond this machine: one-time codes and the paired devices.

A tablet on the LAN reaches the console only once paired: the kiosk (a browser on the
gate itself, trusted) asks for a short code, the tablet types it into /pair and gets a
long-lived device cookie. The cookie's token is kept only as a SHA-256 hash, in a file
in the node's state folder, so a restart keeps the devices paired. Pairing says which
devices may open the console, not who acts: that is a volunteer's session.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.errors import GatepostError
from edge.web.failed_logins import FailedLogins

log = logging.getLogger(__name__)

CODE_DIGITS = 8
CODE_TTL = timedelta(seconds=120)
CODES_OUTSTANDING = 3  # one more drops the oldest: a kiosk tapped twice does not lock out
WRONG_CODES_MAX = 5  # per client address within WRONG_CODE_WINDOW, then 429
WRONG_CODE_WINDOW = timedelta(seconds=60)
LABEL_MAX = 40
DEVICES_FILE = "paired-devices.json"
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DevicesFull(GatepostError):
    """As many devices as allowed are paired; one must be unpaired first."""


class PairingCodes:
    """Short one-time codes the kiosk shows and a tablet types in: single use, short-lived,
    at most a few outstanding.

    Args:
        clock: the time now (tests move it).
    """

    def __init__(
        self, clock: Clock = _utc_now, *, ttl: timedelta = CODE_TTL,
        outstanding: int = CODES_OUTSTANDING,
    ) -> None:  # fmt: skip
        self._clock = clock
        self._ttl = ttl
        self._outstanding = outstanding
        self._lock = threading.Lock()
        self._codes: dict[str, datetime] = {}  # code -> when it expires, oldest first

    @property
    def ttl(self) -> timedelta:
        return self._ttl

    def issue(self) -> str:
        """A new code of CODE_DIGITS digits; the oldest outstanding one goes past the bound."""
        now = self._clock()
        with self._lock:
            self._forget_expired(now)
            while len(self._codes) >= self._outstanding:
                del self._codes[next(iter(self._codes))]
            code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
            self._codes[code] = now + self._ttl
            return code

    def redeem(self, code: str) -> bool:
        """True once for a code issued and not expired; it cannot be used again."""
        now = self._clock()
        with self._lock:
            self._forget_expired(now)
            # Compared with each, in constant time (as bytes: any text typed is compared).
            typed = code.encode()
            found = [k for k in self._codes if secrets.compare_digest(k.encode(), typed)]
            for known in found:
                del self._codes[known]
            return bool(found)

    def _forget_expired(self, now: datetime) -> None:
        for code, expires in list(self._codes.items()):
            if expires <= now:
                del self._codes[code]


@dataclass(frozen=True)
class PairedDevice:
    """A device allowed to open the console from the LAN; `device_id` is what a technician
    names to unpair it (the token itself is never stored)."""

    device_id: str
    label: str
    paired_at: datetime
    token_sha256: str = field(repr=False)

    @classmethod
    def from_json(cls, entry: dict[str, str]) -> PairedDevice:
        paired_at = datetime.fromisoformat(entry["paired_at"])
        return cls(entry["device_id"], entry["label"], paired_at, entry["token_sha256"])

    def public(self) -> dict[str, str]:
        return {"device_id": self.device_id, "label": self.label,
                "paired_at": self.paired_at.isoformat()}  # fmt: skip


class PairedDevices:
    """The paired devices, kept in `path` (JSON, mode 0600) and in memory.

    A file that cannot be read is set aside (`.unreadable`) and the node starts with no
    device paired: the tablets pair again, the gate keeps working.

    Args:
        path: the file, in the node's state folder.
        limit: devices paired at once (console.paired_devices_max).
    """

    def __init__(self, path: Path, limit: int, clock: Clock = _utc_now) -> None:
        self._path = path
        self._limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._by_hash: dict[str, PairedDevice] = {d.token_sha256: d for d in self._load()}

    def __len__(self) -> int:
        return len(self._by_hash)

    def devices(self) -> list[PairedDevice]:
        """Every paired device, oldest first."""
        with self._lock:
            return sorted(self._by_hash.values(), key=lambda d: d.paired_at)

    def pair(self, label: str) -> tuple[PairedDevice, str]:
        """Pair a new device; returns it and the token its cookie carries (shown once).

        Raises:
            DevicesFull: `limit` devices are paired already.
        """
        token = secrets.token_urlsafe(32)
        label = " ".join("".join(c for c in label if c.isprintable()).split())
        label = label[:LABEL_MAX] or "tablet"
        with self._lock:
            if len(self._by_hash) >= self._limit:
                raise DevicesFull(
                    f"{self._limit} devices are paired; unpair one first (docs/security.md)"
                )
            device = PairedDevice(secrets.token_hex(4), label, self._clock(), _token_hash(token))
            self._by_hash[device.token_sha256] = device
            self._save()
        log.info("paired device %s (%s)", device.device_id, device.label)
        return device, token

    def device_for(self, token: str) -> PairedDevice | None:
        """The device whose cookie carries `token`, or None."""
        if not token:
            return None
        with self._lock:
            return self._by_hash.get(_token_hash(token))

    def unpair(self, device_id: str) -> bool:
        """Forget `device_id`; its cookie is refused from its next request. False: unknown."""
        with self._lock:
            found = [h for h, d in self._by_hash.items() if d.device_id == device_id]
            for token_hash in found:
                del self._by_hash[token_hash]
            if found:
                self._save()
        if found:
            log.info("unpaired device %s", device_id)
        return bool(found)

    def _load(self) -> list[PairedDevice]:
        try:
            entries = json.loads(self._path.read_text(encoding="utf-8"))["devices"]
            return [PairedDevice.from_json(entry) for entry in entries]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            aside = self._path.with_name(self._path.name + ".unreadable")
            log.error("paired devices %s unreadable (%s): set aside as %s; every device "
                      "must pair again", self._path, exc, aside)  # fmt: skip
            self._path.replace(aside)  # an error here stops the start, naming the file
            return []

    def _save(self) -> None:
        entries = [{**asdict(d), "paired_at": d.paired_at.isoformat()}
                   for d in self._by_hash.values()]  # fmt: skip
        text = json.dumps({"devices": entries}, indent=1)
        # Written aside and renamed: a crash leaves the old list or the new one, whole.
        temporary = self._path.with_name(f".{self._path.name}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        with os.fdopen(os.open(temporary, flags, 0o600), "w", encoding="utf-8") as out:
            out.write(text)
        temporary.replace(self._path)


@dataclass
class Pairing:
    """What the pairing routes and the device check share (one per console)."""

    devices: PairedDevices
    codes: PairingCodes
    wrong_codes: FailedLogins

    @classmethod
    def in_folder(cls, state_dir: Path, limit: int, clock: Clock = _utc_now) -> Pairing:
        """Pairing for a node whose state lives in `state_dir`."""
        return cls(
            PairedDevices(state_dir / DEVICES_FILE, limit, clock),
            PairingCodes(clock),
            FailedLogins(WRONG_CODES_MAX, WRONG_CODE_WINDOW, clock),
        )
