"""HTTPS for the web apps: a server certificate of the site CA, loaded and checked at start."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from edge.configfile import Section
from edge.errors import GatepostError

TLS_PATHS = ("tls_cert", "tls_key")


class TlsFields(Section):
    """`tls_cert` and `tls_key`: the start of a web server's config section that may serve
    HTTPS (`gatepost fw site add-web` makes both)."""

    tls_cert: Path | None = Field(
        None, description="HTTPS: a server certificate of the site CA (PEM, with the names "
        "browsers use as subject alternative names); relative to the config file",
    )  # fmt: skip
    tls_key: Path | None = Field(None, description="its private key (PEM, mode 0600)")

    @model_validator(mode="after")
    def _together(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give tls_cert and tls_key together (HTTPS needs both)")
        return self

    def certificate(self) -> ServerCertificate | None:
        """The server certificate to serve HTTPS with, or None for plain HTTP."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        return ServerCertificate(self.tls_cert, self.tls_key)


@dataclass(frozen=True)
class ServerCertificate:
    """A web server's certificate and key files (PEM)."""

    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        """A server TLS context with this certificate, TLS 1.2 at least.

        Raises:
            GatepostError: a file is missing, unreadable, or the two do not belong
                together; the message names the file.
        """
        for path, what in ((self.cert, "certificate"), (self.key, "key")):
            try:
                with path.open("rb"):
                    pass
            except OSError as exc:
                raise GatepostError(f"HTTPS {what} {path}: {exc.strerror or exc}") from None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
        except ssl.SSLError as exc:
            raise GatepostError(
                f"HTTPS: cannot use certificate {self.cert} with key {self.key} "
                f"(not PEM, or not a pair): {exc}"
            ) from None
        return context
