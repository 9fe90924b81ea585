"""Run dgc-testdata conformance cases: every EXPECTED* flag a case sets, checked one by one."""

from __future__ import annotations

import base64
import json
import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cbor2

from edge.credentials import dcc
from edge.credentials.base45 import Base45Error, b45decode
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
from edge.credentials.known_issues import KnownIssue
from edge.credentials.qrimage import decode_qr_png
from edge.credentials.reasons import Reason, Refused
from edge.credentials.verifier import check_key_usage, check_time
from edge.errors import CredentialError

log = logging.getLogger(__name__)

# Layout: one JSON file per case (folders may nest), with TESTCTX (CERTIFICATE,
# VALIDATIONCLOCK, SCHEMA, DESCRIPTION), EXPECTEDRESULTS, and the artefacts of each layer
# (JSON, CBOR, COSE, COMPRESSED, BASE45, PREFIX, 2DCODE); the flag meanings are those of
# the test data's README. A flag is judged only from a failure the data causes (a
# refusal, two artefacts that differ): any other exception is a fault of the runner,
# reported as such, since read as a failed flag it would pass every case expecting one.

# Some cases spell a flag "EXPTECTEDEXPIRED" and give it with a VALIDATIONCLOCK at
# which the code is valid: it is the expiration check, misspelt.
ALIASES = {"EXPTECTEDEXPIRED": "EXPECTEDEXPIRATIONCHECK"}


class NotCheckable(Exception):
    """The case sets a flag but lacks what checking it needs (an artefact, a clock)."""


class CaseInvalid(Exception):
    """The case file itself is malformed: not JSON, not a case, a clock that is no time."""


class Malformed(CredentialError):
    """An artefact that is not what its field says (hex, base64, text): the flag fails."""


class Differs(CredentialError):
    """Two artefacts of a case that should carry the same content do not."""


@dataclass(frozen=True)
class Check:
    """One flag of one case: what the data expects, what we found, and any known issue."""

    flag: str
    expected: bool
    actual: bool | None  # None: the flag has no meaning we can check
    detail: str = ""
    known_issue: KnownIssue | None = None  # an entry of known_issues.csv covering the flag

    @property
    def matches(self) -> bool:
        return self.actual is None or self.actual == self.expected

    @property
    def excused(self) -> bool:
        """A mismatch the reference suite lists as wrong test data."""
        return not self.matches and self.known_issue is not None


@dataclass(frozen=True)
class Fault:
    """Something that kept a flag (or the whole case, flag None) from being judged."""

    flag: str | None
    what: str


@dataclass
class CaseResult:
    path: str
    description: str
    checks: list[Check] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return not self.faults and all(check.matches for check in self.checks)

    @property
    def passes(self) -> bool:
        """Every flag judged, and each matches or is a known data issue."""
        return not self.faults and all(c.matches or c.excused for c in self.checks)

    @property
    def status(self) -> str:
        if self.faults:
            return "ERROR"
        if not self.passes:
            return "MISMATCH"
        return "match" if self.matches else "known issue"


class Case:
    """One test file; each `check_*` method answers one EXPECTED* flag."""

    def __init__(self, data: dict[str, Any], at: datetime | None) -> None:
        self.data = data
        self.context: dict[str, Any] = data.get("TESTCTX") or {}
        self.expected: dict[str, Any] = data.get("EXPECTEDRESULTS") or {}
        if not (isinstance(self.context, dict) and isinstance(self.expected, dict)):
            raise CaseInvalid("TESTCTX and EXPECTEDRESULTS must be JSON objects")
        self._at = at

    @classmethod
    def read(cls, path: Path, at: datetime | None) -> Case:
        """The case in `path`.

        Raises:
            CaseInvalid: the file is unreadable, not JSON, or not a case.
        """
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CaseInvalid(f"not a readable JSON case: {exc}") from None
        if not isinstance(data, dict):
            raise CaseInvalid("not a case: the file is not a JSON object")
        return cls(data, at)

    @property
    def clock(self) -> datetime:
        text = self.context.get("VALIDATIONCLOCK")
        if not text:
            if self._at is None:
                raise NotCheckable("no VALIDATIONCLOCK in the case and no --at given")
            return self._at
        try:
            clock = datetime.fromisoformat(text)
        except (TypeError, ValueError):
            raise CaseInvalid(f"VALIDATIONCLOCK {text!r} is not an ISO 8601 time") from None
        # The reference suite reads a clock without an offset as UTC; left naive, it
        # cannot be compared with the code's iat and exp at all.
        return clock if clock.tzinfo is not None else clock.replace(tzinfo=UTC)

    def _field(self, name: str) -> Any:
        if name not in self.data:
            raise NotCheckable(f"the case has no {name}")
        return self.data[name]

    def _text(self, name: str) -> str:
        value = self._field(name)
        if not isinstance(value, str):
            raise Malformed(f"{name} is not text")
        return value

    def _hex(self, name: str) -> bytes:
        try:
            return bytes.fromhex(self._text(name))
        except ValueError:
            raise Malformed(f"{name} is not hex") from None

    @staticmethod
    def _base64(name: str, text: object) -> bytes:
        if not isinstance(text, str):
            raise Malformed(f"{name} is not text")
        try:
            return base64.b64decode(text)
        except ValueError:
            raise Malformed(f"{name} is not base64") from None

    def _b45decoded(self) -> bytes:
        try:
            return b45decode(self._text("BASE45"))
        except Base45Error as exc:
            raise Refused(Reason.BASE45, str(exc)) from None

    def _sign1(self) -> Sign1:
        return (
            parse_sign1(self._hex("COSE")) if "COSE" in self.data else unwrap(self._text("PREFIX"))
        )

    def _claims(self) -> Claims:
        return parse_claims(self._sign1().payload)

    def _signer(self) -> TrustedKey:
        if "CERTIFICATE" not in self.context:
            raise NotCheckable("the case has no TESTCTX.CERTIFICATE")
        certificate = self._base64("TESTCTX.CERTIFICATE", self.context["CERTIFICATE"])
        return TrustedKey.from_certificate(certificate)

    def _verified(self) -> Claims:
        sign1, signer = self._sign1(), self._signer()
        if sign1.kid != signer.kid:
            raise Refused(Reason.UNKNOWN_KID, "the kid the code names is not the signer's")
        verify_sign1(sign1, signer.public_key)
        return parse_claims(sign1.payload)

    def _cbor(self) -> Any:
        """The CBOR field: the DCC itself in some cases, the whole CWT claims map in others."""
        try:
            content = _plain(cbor2.loads(self._hex("CBOR")))
        except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise Refused(Reason.CBOR, f"CBOR field: {exc}") from None
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
        body = unprefix(self._text("PREFIX"))
        _same(body, self.data.get("BASE45", body), "unprefixed text differs from BASE45")
        return "HC1: removed"

    def check_b45decode(self) -> str:
        raw = self._b45decoded()
        if "COMPRESSED" in self.data:
            _same(raw, self._hex("COMPRESSED"), "decoded bytes differ from COMPRESSED")
        return f"{len(raw)} bytes"

    def check_compression(self) -> str:
        compressed = self._hex("COMPRESSED") if "COMPRESSED" in self.data else self._b45decoded()
        inflated = decompress(compressed)
        _same(inflated, self._hex("COSE"), "inflated bytes differ from COSE")
        return f"{len(inflated)} bytes"

    def check_picturedecode(self) -> str:
        text = decode_qr_png(self._base64("2DCODE", self._field("2DCODE")))
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
        carried = _plain(parse_claims(unwrap(self._text("PREFIX")).payload).hcert.get(dcc.DCC_KEY))
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
        # The certificate type alone: a payload of two entries is the schema's concern.
        kind = dcc.dcc_kind(self._verified().hcert.get(dcc.DCC_KEY))
        check_key_usage(self._signer(), kind)
        return f"{kind} allowed"


def run_case(
    path: Path, root: Path, at: datetime | None, known_issues: Sequence[KnownIssue] = ()
) -> CaseResult:
    """Check every EXPECTED* flag of the case in `path`.

    Args:
        path: the case file.
        root: the folder the run started from; results and known issues name cases
            relative to it.
        at: clock for a case without VALIDATIONCLOCK.
        known_issues: entries of known_issues.csv; a flag they cover is marked with them.
    """
    relative = path.relative_to(root).as_posix()
    try:
        case = Case.read(path, at)
    except CaseInvalid as exc:
        return CaseResult(relative, "", faults=[Fault(None, str(exc))])
    result = CaseResult(relative, str(case.context.get("DESCRIPTION", "")))
    # Known issues name a case by country folder and file: a DIR that is one country's
    # folder gives that folder's name to the cases directly in it.
    named = relative if "/" in relative else f"{root.resolve().name}/{relative}"
    for given, expected in case.expected.items():
        flag = ALIASES.get(given, given)
        listed = next((i for i in known_issues if i.covers(named, flag)), None)
        method: Callable[[], str] | None = getattr(
            case, f"check_{flag.removeprefix('EXPECTED').lower()}", None
        )
        if method is None or not isinstance(expected, bool):
            result.checks.append(Check(flag, bool(expected), None, "flag not defined by the data"))
            continue
        outcome = _judge(method, f" (given as {given})" if given != flag else "")
        if isinstance(outcome, str):
            result.faults.append(Fault(flag, outcome))
        else:
            actual, detail = outcome
            result.checks.append(Check(flag, expected, actual, detail, listed))
    return result


def _judge(method: Callable[[], str], given_as: str) -> tuple[bool | None, str] | str:
    """What one check found, or, as a bare string, why it could not be judged."""
    try:
        return True, method() + given_as
    except NotCheckable as exc:
        return None, str(exc) + given_as
    except CredentialError as exc:  # the data failed this step: what a flag judges
        return False, str(exc)[:200] + given_as
    except CaseInvalid as exc:
        return str(exc)
    except Exception as exc:  # a bug of the runner, never a verdict on the data
        log.debug("runner fault in %s", method.__name__, exc_info=True)
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"
        return f"runner fault: {type(exc).__name__}: {exc} (at {where})"


def run(
    root: Path, at: datetime | None = None, known_issues: Sequence[KnownIssue] = ()
) -> list[CaseResult]:
    """Every case under `root`, in path order.

    Args:
        root: folder of cases, searched recursively for *.json.
        at: clock (with a UTC offset) for cases without VALIDATIONCLOCK; without it
            their time checks are reported as not checkable rather than judged
            against today.
        known_issues: entries of the reference suite's known_issues.csv; a mismatch
            they cover is a known data issue and does not fail the case.
    """
    if at is not None and at.tzinfo is None:
        raise ValueError("the clock `at` needs a UTC offset")
    return [run_case(path, root, at, known_issues) for path in sorted(root.rglob("*.json"))]


def table(results: list[CaseResult]) -> str:
    """One row per case: the flags checked (! mismatch, ~ known issue), and why."""
    lines = ["| case | result | flags | mismatches |", "|---|---|---|---|"]
    for result in results:
        flags = " ".join(
            ("~" if c.excused else "" if c.matches else "!")
            + c.flag.removeprefix("EXPECTED")
            + ("=" + str(c.expected)[0])
            for c in result.checks
        )
        wrong = [f"{f.flag or 'case'}: cannot judge: {f.what}" for f in result.faults] + [
            f"{c.flag}: expected {c.expected}, got {c.actual} ({c.detail})"
            + (f" [known data issue: {c.known_issue.link}]" if c.known_issue else "")
            for c in result.checks
            if not c.matches
        ]
        lines.append(f"| {result.path} | {result.status} | {flags} | {'; '.join(wrong)} |")
    return "\n".join(lines)


def known_issue_lines(results: list[CaseResult]) -> list[str]:
    """One line per case and link: the mismatches that known_issues.csv excuses."""
    return _issue_lines(results, lambda check: check.excused)


def outgrown_issue_lines(results: list[CaseResult]) -> list[str]:
    """One line per case and link: flags an entry lists that match here anyway."""
    return _issue_lines(results, lambda check: check.actual is not None and check.matches)


def _issue_lines(results: list[CaseResult], pick: Callable[[Check], bool]) -> list[str]:
    lines: list[str] = []
    for result in results:
        by_link: dict[str, list[KnownIssue]] = {}
        flags: dict[str, list[str]] = {}
        for check in result.checks:
            if check.known_issue is not None and pick(check):
                by_link.setdefault(check.known_issue.link, []).append(check.known_issue)
                flags.setdefault(check.known_issue.link, []).append(check.flag)
        for link, issues in by_link.items():
            tests = ", ".join(sorted({issue.test_name or "every test" for issue in issues}))
            lines.append(f"- {result.path}: {', '.join(flags[link])} ({tests}) {link}")
    return lines


def summary(results: list[CaseResult]) -> str:
    """The run in one line: cases matched, excused by known issues, mismatched, unjudged."""
    known = sum(r.passes and not r.matches for r in results)
    mismatched = sum(not r.faults and not r.passes for r in results)
    errors = sum(bool(r.faults) for r in results)
    unchecked = sum(c.actual is None for r in results for c in r.checks)
    return (
        f"{sum(r.matches for r in results)} of {len(results)} cases match; "
        f"{known} known data issues; {mismatched} mismatch; {errors} with errors; "
        f"{unchecked} flags not checkable"
    )


def _same(actual: object, expected: object, message: str) -> None:
    if actual != expected:
        raise Differs(message)


def _plain(value: Any) -> Any:
    """CBOR-decoded data in the shape JSON gives (maps to dicts, tuples to lists)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value
