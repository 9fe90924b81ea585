"""The gateway config's `store` section: which store, how long it keeps what, and the
replica's identity on PostgreSQL (gateway/config.py loads it with the rest)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from edge.configfile import Section
from gateway.store.conninfo import DatabaseTls, database_url
from gateway.store.records import DEAD_LETTER_KEEP_BYTES, DEAD_LETTERS_MAX

STORE_TLS_PATHS = ("tls_ca", "tls_cert", "tls_key")


class StoreSection(Section):
    path: Path = Field(Path("gateway.db"), description="the SQLite file (relative: to the config)")
    url: str | None = Field(
        None, max_length=1000, pattern=r"^postgres(ql)?://",
        description="a PostgreSQL database (libpq URL, e.g. postgresql://gateway-gw1@db:5432/"
        "gatepost) instead of the SQLite file: for replicas and a city's year of events "
        "(docs/scale.md); a server off this machine needs tls_ca, tls_cert and tls_key (or "
        "the URL's own sslmode=verify-full with its files), and once loaded the URL carries them",
    )  # fmt: skip
    tls_ca: Path | None = Field(
        None, description="the CA the PostgreSQL server's certificate is checked against (the "
        "site CA); with tls_cert and tls_key every connection is sslmode=verify-full",
    )  # fmt: skip
    tls_cert: Path | None = Field(
        None, description="this replica's certificate: its gateway identity's, whose CN "
        "(gateway-<name>) is its database user",
    )  # fmt: skip
    tls_key: Path | None = Field(None, description="its key, mode 0600 (libpq refuses others)")
    dead_letters_max: int = Field(
        DEAD_LETTERS_MAX, ge=100, le=10_000_000,
        description="refused messages kept; past it the oldest are dropped (and counted)",
    )  # fmt: skip
    dead_letter_keep_bytes: int = Field(
        DEAD_LETTER_KEEP_BYTES, ge=0, le=65_536,
        description="how much of a refused payload is kept, beside its size and SHA-256",
    )  # fmt: skip
    depot_raw_days: int = Field(
        30, ge=1, le=3650,
        description="days a depot's raw readings are kept (once rolled up); older ones are "
        "deleted, their minute and hour rollups stay, and so is the raw copy of each "
        "reading batch once its readings are gone",
    )  # fmt: skip
    depot_minute_days: int = Field(
        90, ge=1, le=3650,
        description="days minute rollups are kept (at least depot_raw_days); hour rollups "
        "are kept for good",
    )  # fmt: skip

    personal_days: int = Field(
        30, ge=1, le=3650,
        description="days an event's personal fields (subject_ref, plates, a registration's "
        "name, ID hash, phone...) are kept; then they are removed from its row and payload",
    )  # fmt: skip
    passage_days: int = Field(
        365, ge=1, le=3650,
        description="days checkpoint events (passages, holds, registrations, shifts...) are "
        "kept at all (at least personal_days and depot_raw_days); a depot reading batch "
        "whose readings are still there then goes with them",
    )  # fmt: skip

    @model_validator(mode="after")
    def _database_over_tls(self) -> Self:
        files = (self.tls_ca, self.tls_cert, self.tls_key)
        if any(files) and not all(files):
            raise ValueError("give tls_ca, tls_cert and tls_key together (or none of them)")
        if any(files) and not self.url:
            raise ValueError("tls_ca, tls_cert and tls_key are for PostgreSQL: set url too")
        if self.url:
            tls = None
            if self.tls_ca and self.tls_cert and self.tls_key:
                tls = DatabaseTls(self.tls_ca, self.tls_cert, self.tls_key)
            # The one change to a loaded section, made before anyone reads it: the URL
            # every connection opens with (the store, the leader lock, the live feed).
            object.__setattr__(self, "url", database_url(self.url, tls))
        return self

    @model_validator(mode="after")
    def _passages_outlive_personal(self) -> Self:
        if self.passage_days < self.personal_days:
            raise ValueError(
                "passage_days must be at least personal_days: personal fields are removed "
                "before the rows that hold them"
            )
        if self.passage_days < self.depot_raw_days:
            raise ValueError(
                "passage_days must be at least depot_raw_days: a depot batch still holding "
                "readings is deleted with them after passage_days, which must not come "
                "before they were rolled up and deleted"
            )
        return self

    @model_validator(mode="after")
    def _minutes_outlive_raw(self) -> Self:
        if self.depot_minute_days < self.depot_raw_days:
            raise ValueError(
                "depot_minute_days must be at least depot_raw_days: a minute's rollup is "
                "deleted only after its raw readings"
            )
        return self
