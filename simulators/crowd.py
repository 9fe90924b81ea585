"""A crowd at a gate: people arriving with all kinds of codes and temperatures, and vehicles.

It drives the simulated scanner and thermometer exactly as people do (forehead to
the thermometer, then the phone to the scanner), so the gate node sees real serial
traffic, and posts vehicle checks to the console as a volunteer would.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from simulators.devices.scanner import SimulatedScanner
from simulators.devices.thermometer import SimulatedThermometer
from simulators.site import CodeKind, SiteKit

log = logging.getLogger(__name__)

ID_DIGITS = "0123456789"


@dataclass(frozen=True)
class CrowdMix:
    """Who comes to the gate, and how often.

    Attributes:
        arrivals_per_min: people per minute (Poisson arrivals).
        shares: share of each kind of code; the rest of 1.0 has a green code.
        fever_rate: share of people with a temperature at or above the fever line.
        vehicles_per_min: vehicles per minute, checked on the console.
    """

    arrivals_per_min: float = 20.0
    shares: tuple[tuple[CodeKind, float], ...] = (
        ("yellow", 0.06), ("red", 0.02), ("expired", 0.03), ("forged", 0.02),
        ("household", 0.05),
    )  # fmt: skip
    fever_rate: float = 0.04
    vehicles_per_min: float = 1.0


class Crowd:
    """People and vehicles arriving at one gate until stopped.

    Args:
        kit: the site, to issue everyone's codes.
        scanner, thermometer: the gate's simulated parts.
        mix: who comes, how often.
        console_url: where to post vehicle checks (None: no vehicles).
        volunteer: the volunteer whose badge starts the shift.
        seed: the same seed tells the same story.
    """

    def __init__(
        self, kit: SiteKit, scanner: SimulatedScanner, thermometer: SimulatedThermometer, *,
        mix: CrowdMix = CrowdMix(), console_url: str | None = None, volunteer: str = "v017",
        seed: int = 1,
    ) -> None:  # fmt: skip
        self.kit = kit
        self.scanner = scanner
        self.thermometer = thermometer
        self.mix = mix
        self.console_url = console_url
        self.volunteer = volunteer
        self.rng = random.Random(seed)
        self.people = 0
        # The volunteer's browser: it keeps the console's session cookie.
        self._console = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())

    def run(self, stop: threading.Event) -> None:
        """The volunteer starts the shift, then people and vehicles come until `stop`."""
        self.start_shift(stop)
        next_vehicle = time.monotonic() + self._gap(self.mix.vehicles_per_min)
        while not stop.wait(self._gap(self.mix.arrivals_per_min)):
            self.person(stop)
            if self.console_url and time.monotonic() >= next_vehicle:
                self.vehicle()
                next_vehicle = time.monotonic() + self._gap(self.mix.vehicles_per_min)

    def start_shift(self, stop: threading.Event, attempts: int = 30) -> None:
        """The volunteer scans the badge at the gate, then signs in at the console with it.

        A node still waiting for its trust list refuses a badge as it refuses any code;
        a volunteer at the gate would simply scan again.
        """
        badge = self.kit.code("badge", volunteer=self.volunteer)
        for _ in range(attempts):
            self.scanner.scan(badge)
            if not self.console_url or stop.wait(1.0) or self._sign_in(badge):
                return
        log.warning("%s never came on duty at %s", self.volunteer, self.console_url)

    def _sign_in(self, badge: str) -> bool:
        """Whether the console took the badge: 403 until the scan at the gate started the shift."""
        return self._post("/api/session", {"badge_text": badge})

    def _post(self, path: str, body: Mapping[str, object]) -> bool:
        # Our own console's http:// URL, never a file: or other scheme.
        request = urllib.request.Request(  # noqa: S310
            f"{self.console_url}{path}", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )  # fmt: skip
        try:
            with self._console.open(request, timeout=5):
                return True
        except (urllib.error.URLError, OSError) as exc:
            log.debug("%s%s not accepted: %s", self.console_url, path, exc)
            return False

    def person(self, stop: threading.Event) -> None:
        """One person: forehead to the thermometer, then the code to the scanner."""
        self.people += 1
        kind = self._kind()
        fever = self.rng.random() < self.mix.fever_rate
        body_c = round(self.rng.uniform(37.9, 39.0) if fever else self.rng.uniform(36.0, 36.9), 1)
        self.thermometer.present(body_c, duration_s=0.6)
        if stop.wait(0.8):
            return
        self.scanner.scan(self.kit.code(kind, id_number=self._id_number()))

    def vehicle(self) -> None:
        """A car with two to four people, checked by the volunteer on the console."""
        occupants = [round(self.rng.uniform(36.0, 36.9), 1) for _ in range(self.rng.randint(2, 4))]
        if self.rng.random() < self.mix.fever_rate * 2:
            occupants[0] = 38.3
        body = {
            "vehicle_plate": f"京A{self.rng.randrange(10_000, 100_000)}",
            "occupant_temperatures_c": occupants,
        }
        if not self._post("/api/vehicle-checks", body):
            log.warning("vehicle check not accepted by %s", self.console_url)

    def _kind(self) -> CodeKind:
        draw = self.rng.random()
        for kind, share in self.mix.shares:
            if draw < share:
                return kind
            draw -= share
        return "green"

    def _id_number(self) -> str:
        return "".join(self.rng.choice(ID_DIGITS) for _ in range(18))

    def _gap(self, per_min: float) -> float:
        return self.rng.expovariate(per_min / 60) if per_min > 0 else float("inf")
