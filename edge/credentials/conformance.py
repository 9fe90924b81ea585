"""Run dgc-testdata conformance cases: every EXPECTED* flag a case sets, checked one by one.

Layout: one JSON file per case (folders may nest), with TESTCTX (CERTIFICATE,
VALIDATIONCLOCK, SCHEMA, DESCRIPTION), EXPECTEDRESULTS, and the artefacts of each
layer (JSON, CBOR, COSE, COMPRESSED, BASE45, PREFIX, 2DCODE). The flag meanings are
those of the test data's README.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cbor2

from edge.credentials import dcc
from edge.credentials.base45 import b45decode
from edge.credentials.cose import (
    CLAIM_HCERT,
    Claims,
    Sign1,
    parse_claims,
    parse_sign1,
    verify_sign1,
)
from edge.credentials.hcert import decompress, unprefix, unwrap
from edge.credentials.keys import TrustedKey
from edge.credentials.qrimage import decode_qr_png
from edge.credentials.reasons import Reason, Refused
from edge.credentials.verifier import check_key_usage, check_time
from edge.errors import CredentialError

# Some cases spell a flag "EXPTECTEDEXPIRED" and give it with a VALIDATIONCLOCK at
# which the code is valid: it is the expiration check, misspelt.
ALIASES = {"EXPTECTEDEXPIRED": "EXPECTEDEXPIRATIONCHECK"}


class NotCheckable(Exception):
    """The case sets a flag but lacks what checking it needs (an artefact, a clock)."""


@dataclass(frozen=True)
class Check:
    """One flag of one case: what the data expects and what we found."""

    flag: str
    expected: bool
    actual: bool | None  # None: the flag has no meaning we can check
    detail: str = ""

    @property
    def matches(self) -> bool:
        return self.actual is None or self.actual == self.expected


@dataclass
class CaseResult:
    path: str
    description: str
    checks: list[Check] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return all(check.matches for check in self.checks)


class Case:
    """One test file; each `check_*` method answers one EXPECTED* flag."""

    def __init__(self, data: dict[str, Any], at: datetime | None) -> None:
        self.data = data
        self.context: dict[str, Any] = data.get("TESTCTX") or {}
        clock = self.context.get("VALIDATIONCLOCK")
        self._clock = datetime.fromisoformat(clock) if clock else at

    @property
    def clock(self) -> datetime:
        if self._clock is None:
            raise NotCheckable("no VALIDATIONCLOCK in the case and no --at given")
        return self._clock

    def _field(self, name: str) -> Any:
        if name not in self.data:
            raise NotCheckable(f"the case has no {name}")
        return self.data[name]

    def _hex(self, name: str) -> bytes:
        return bytes.fromhex(self._field(name))

    def _sign1(self) -> Sign1:
        return (
            parse_sign1(self._hex("COSE")) if "COSE" in self.data else unwrap(self._field("PREFIX"))
        )

    def _claims(self) -> Claims:
        return parse_claims(self._sign1().payload)

    def _signer(self) -> TrustedKey:
        if "CERTIFICATE" not in self.context:
            raise NotCheckable("the case has no TESTCTX.CERTIFICATE")
        certificate = base64.b64decode(self.context["CERTIFICATE"])
        return TrustedKey.from_certificate(certificate)

    def _verified(self) -> Claims:
        sign1, signer = self._sign1(), self._signer()
        if sign1.kid != signer.kid:
            raise Refused(Reason.UNKNOWN_KID, "the kid the code names is not the signer's")
        verify_sign1(sign1, signer.public_key)
        return parse_claims(sign1.payload)

    def _cbor(self) -> Any:
        """The CBOR field: the DCC itself in some cases, the whole CWT claims map in others."""
        content = _plain(cbor2.loads(self._hex("CBOR")))
        if isinstance(content, dict) and isinstance(content.get(CLAIM_HCERT), dict):
            return content[CLAIM_HCERT].get(dcc.DCC_KEY)
        return content

    def _dcc(self) -> Any:
        if "CBOR" in self.data:
            return self._cbor()
        if "JSON" in self.data:
            return self.data["JSON"]
        return _plain(self._claims().hcert.get(dcc.DCC_KEY))

    def check_unprefix(self) -> str:
        body = unprefix(self._field("PREFIX"))
        _same(body, self.data.get("BASE45", body), "unprefixed text differs from BASE45")
        return "HC1: removed"

    def check_b45decode(self) -> str:
        raw = b45decode(self._field("BASE45"))
        if "COMPRESSED" in self.data:
            _same(raw, self._hex("COMPRESSED"), "decoded bytes differ from COMPRESSED")
        return f"{len(raw)} bytes"

    def check_compression(self) -> str:
        compressed = (
            self._hex("COMPRESSED")
            if "COMPRESSED" in self.data
            else b45decode(self._field("BASE45"))
        )
        inflated = decompress(compressed)
        _same(inflated, self._hex("COSE"), "inflated bytes differ from COSE")
        return f"{len(inflated)} bytes"

    def check_picturedecode(self) -> str:
        text = decode_qr_png(base64.b64decode(self._field("2DCODE")))
        _same(text, self._field("PREFIX"), "picture does not decode to PREFIX")
        return "picture read"

    def check_verify(self) -> str:
        self._verified()
        return f"signed by {base64.b64encode(self._signer().kid).decode()}"

    def check_decode(self) -> str:
        payload = self._cbor()
        if "JSON" in self.data:
            _same(payload, self.data["JSON"], "CBOR content differs from JSON")
        if "COSE" in self.data:
            carried = _plain(self._claims().hcert.get(dcc.DCC_KEY))
            _same(carried, payload, "COSE carries another DCC than CBOR")
        return "CBOR decoded"

    def check_encode(self) -> str:
        _same(self._cbor(), self._field("JSON"), "CBOR differs from JSON")
        return "CBOR matches JSON"

    def check_validjson(self) -> str:
        carried = _plain(parse_claims(unwrap(self._field("PREFIX")).payload).hcert.get(dcc.DCC_KEY))
        _same(carried, self._field("JSON"), "decoded DCC differs from JSON")
        return "whole chain matches JSON"

    def check_schemavalidation(self) -> str:
        payload = self._dcc()
        dcc.validate(payload)
        dcc.dcc_type(payload)
        return f"valid against {dcc.schema_for(payload['ver'])}"

    def check_validobject(self) -> str:
        payload = self._field("JSON")
        dcc.validate(payload)
        return f"valid against {dcc.schema_for(payload['ver'])}"

    def check_expirationcheck(self) -> str:
        check_time(self._claims(), self.clock)
        return f"valid at {self.clock:%Y-%m-%d %H:%M}"

    def check_keyusage(self) -> str:
        claims = self._verified()
        kind, _ = dcc.dcc_type(claims.hcert[dcc.DCC_KEY])
        check_key_usage(self._signer(), kind)
        return f"{kind} allowed"


def run_case(path: Path, root: Path, at: datetime | None) -> CaseResult:
    """Check every EXPECTED* flag of the case in `path`."""
    relative = str(path.relative_to(root))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return CaseResult(relative, "", [Check("READ", True, False, str(exc))])
    case = Case(data, at)
    result = CaseResult(relative, str(case.context.get("DESCRIPTION", "")))
    for given, expected in (data.get("EXPECTEDRESULTS") or {}).items():
        flag = ALIASES.get(given, given)
        method: Callable[[], str] | None = getattr(
            case, f"check_{flag.removeprefix('EXPECTED').lower()}", None
        )
        if method is None or not isinstance(expected, bool):
            result.checks.append(Check(flag, bool(expected), None, "flag not defined by the data"))
            continue
        given_as = f" (given as {given})" if given != flag else ""
        try:
            result.checks.append(Check(flag, expected, True, method() + given_as))
        except NotCheckable as exc:
            result.checks.append(Check(flag, expected, None, str(exc) + given_as))
        except (CredentialError, KeyError, ValueError, TypeError, cbor2.CBORError) as exc:
            result.checks.append(Check(flag, expected, False, _why(exc) + given_as))
    return result


def run(root: Path, at: datetime | None = None) -> list[CaseResult]:
    """Every case under `root`, in path order.

    Args:
        root: folder of cases, searched recursively for *.json.
        at: clock for cases without VALIDATIONCLOCK; without it their time checks
            are reported as not checkable rather than judged against today.
    """
    return [run_case(path, root, at) for path in sorted(root.rglob("*.json"))]


def table(results: list[CaseResult]) -> str:
    """One row per case: the flags checked, and what failed to match and why."""
    lines = ["| case | result | flags | mismatches |", "|---|---|---|---|"]
    for result in results:
        flags = " ".join(
            ("" if c.matches else "!")
            + c.flag.removeprefix("EXPECTED")
            + ("=" + str(c.expected)[0])
            for c in result.checks
        )
        wrong = "; ".join(
            f"{c.flag}: expected {c.expected}, got {c.actual} ({c.detail})"
            for c in result.checks
            if not c.matches
        )
        lines.append(
            f"| {result.path} | {'match' if result.matches else 'MISMATCH'} | {flags} | {wrong} |"
        )
    return "\n".join(lines)


class Differs(ValueError):
    """Two artefacts of a case that should carry the same content do not."""


def _same(actual: object, expected: object, message: str) -> None:
    if actual != expected:
        raise Differs(message)


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing key {exc.args[0]!r}"
    return str(exc)[:200]


def _plain(value: Any) -> Any:
    """CBOR-decoded data in the shape JSON gives (maps to dicts, tuples to lists)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value
