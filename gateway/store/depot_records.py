"""What the store keeps and returns of depots: sensor samples, scale weights, rollups."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from gateway.store.records import Record


class DepotReadingRecord(Record):
    """One sample of one depot sensor (its zone), as stored."""

    site: str
    node: str
    zone: str = Field(description="the sensor's name: where it is, e.g. cold-store-1")
    bus_address: int
    at: datetime = Field(description="when the node read it (node time)")
    status: Literal["ok", "timeout", "crc", "range"]
    temperature_c: float | None = None
    humidity_pct: float | None = None


class ScaleReadingRecord(Record):
    """One settled weight of one depot platform scale, as stored."""

    site: str
    node: str
    scale: str = Field(description="the scale's name, e.g. pallet-n95")
    item: str = Field(description="the catalogue item on its pallet")
    at: datetime = Field(description="when the indicator showed it (node time)")
    basis: Literal["gross", "net"]
    shown_kg: float
    tare_kg: float
    net_kg: float = Field(description="shown_kg - tare_kg: the goods on the pallet")


DepotResolution = Literal["minute", "hour"]


class DepotRollupRecord(Record):
    """One zone's readings of one minute or hour in figures (those of its ok readings)."""

    site: str
    node: str
    zone: str
    resolution: DepotResolution
    bucket: datetime = Field(description="the minute's or hour's start, UTC")
    readings: int = Field(description="ok readings")
    faults: int = Field(description="readings without values (timeout, crc, range)")
    temperature_min_c: float | None = None
    temperature_max_c: float | None = None
    temperature_mean_c: float | None = None
    humidity_min_pct: float | None = None
    humidity_max_pct: float | None = None
    humidity_mean_pct: float | None = None
