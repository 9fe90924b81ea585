"""`gatepost verify`: one code, or a whole conformance suite, from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from edge.cli import instant_arg
from edge.contract.documents import SignedRevocationList, SignedTrustList
from edge.credentials.keys import TrustedKey
from edge.credentials.known_issues import load_known_issues
from edge.credentials.trust import RevocationList, TrustList, root_keys_for, verify_document
from edge.credentials.verifier import FixedTrust, Verifier
from edge.errors import CredentialError

_Signed = TypeVar("_Signed", SignedTrustList, SignedRevocationList)


def add_verify(commands: Any) -> None:
    parser = commands.add_parser(
        "verify",
        help="verify a health code, or run an EU DCC conformance suite",
        description="Print a JSON verdict for CODE (or '-' to read it from stdin): ok, colour, "
        "reasons, kid, issuer, iat, exp. Exit 0 when the code is trusted, 1 when refused. "
        "With --conformance DIR, run every dgc-testdata case under DIR and print one row per "
        "case: exit 0 when every flag matches (or is a listed known data issue), 1 on any "
        "other mismatch, 2 when a case could not be judged (a fault of the runner, or a file "
        "that is not a readable case).",
    )
    parser.add_argument("code", nargs="?", help="the scanned text (HC1:…), or - for stdin")
    parser.add_argument(
        "--at",
        type=instant_arg,
        default=None,
        help="validation clock, ISO 8601 with offset (default: now; for "
        "--conformance: only cases without VALIDATIONCLOCK use it)",
    )
    parser.add_argument(
        "--trust",
        type=Path,
        action="append",
        default=[],
        help="signed trust list (JSON, needs --root-key) or PEM signer "
        "certificates; may be repeated",
    )
    parser.add_argument("--revocations", type=Path, help="signed revocation list (JSON)")
    parser.add_argument("--root-key", type=Path, help="site root public key (PEM)")
    parser.add_argument(
        "--conformance", type=Path, metavar="DIR", help="run the dgc-testdata cases found under DIR"
    )
    parser.add_argument(
        "--known-issues",
        type=Path,
        metavar="FILE",
        help="with --conformance: the suite's known_issues.csv; a mismatch it lists is shown "
        "as a known data issue with its link and does not fail the run",
    )
    parser.set_defaults(run=_run_verify)  # fmt: skip


def _run_verify(args: argparse.Namespace) -> int:
    if args.conformance is not None:
        return _run_conformance(args.conformance, args.at, args.known_issues)
    if args.known_issues is not None:
        raise CredentialError("--known-issues goes with --conformance DIR")
    if args.code is None:
        raise CredentialError("give a CODE, '-' for stdin, or --conformance DIR")
    code = sys.stdin.read().strip() if args.code == "-" else args.code
    now = args.at or datetime.now(UTC)
    verdict = Verifier(_trust(args, now)).verify(code, now)
    print(json.dumps(verdict.to_json(), ensure_ascii=False, indent=2))
    return 0 if verdict.ok else 1


def _run_conformance(root: Path, at: datetime | None, known_issues_file: Path | None) -> int:
    from edge.credentials import conformance  # brings in OpenCV for the pictures

    if not root.is_dir():
        raise CredentialError(f"{root} is not a folder of conformance cases")
    known = load_known_issues(known_issues_file) if known_issues_file else []
    results = conformance.run(root, at, known)
    print(conformance.table(results))
    for title, lines in (
        (f"Known data issues ({known_issues_file}; they do not fail the run):",
         conformance.known_issue_lines(results)),
        (f"Listed in {known_issues_file}, but matching here:",
         conformance.outgrown_issue_lines(results)),
    ):  # fmt: skip
        if lines:
            print("\n" + title, *lines, sep="\n")
    print("\n" + conformance.summary(results))
    faults = [(result.path, fault) for result in results for fault in result.faults]
    for path, fault in faults:
        # On stderr too: one line among a hundred table rows is easy to miss.
        print(
            f"gatepost verify: error: cannot judge {root / path}"
            + (f", {fault.flag}" if fault.flag else "")
            + f": {fault.what}",
            file=sys.stderr,
        )
    if faults:
        return 2
    return 0 if all(result.passes for result in results) else 1


def _trust(args: argparse.Namespace, now: datetime) -> FixedTrust:
    keys: list[TrustedKey] = []
    root_keys = _root_keys(args.root_key)
    for path in args.trust:
        data = _read(path)
        if data.lstrip().startswith(b"{"):
            document = _document(SignedTrustList, path, data)
            verify_document(document, root_keys, now)
            keys.extend(TrustList.from_document(document).values())
        else:
            keys.extend(_certificates(path, data))
    revocations = RevocationList()
    if args.revocations is not None:
        listed = _document(SignedRevocationList, args.revocations, _read(args.revocations))
        verify_document(listed, root_keys, now)
        revocations = RevocationList.from_document(listed)
    return FixedTrust(TrustList.of(keys), revocations)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CredentialError(f"cannot read {path}: {exc.strerror}") from None


def _document(model: type[_Signed], path: Path, data: bytes) -> _Signed:
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise CredentialError(
            f"{path} is not a {model.__name__}: {exc.errors()[0]['msg']}"
        ) from None


def _root_keys(path: Path | None) -> dict[bytes, Ed25519PublicKey]:
    if path is None:
        return {}
    try:
        key = serialization.load_pem_public_key(_read(path))
    except ValueError as exc:
        raise CredentialError(f"{path}: not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CredentialError(f"{path}: the site root key is Ed25519, not {type(key).__name__}")
    return root_keys_for([key])


def _certificates(path: Path, data: bytes) -> list[TrustedKey]:
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CredentialError(
            f"{path}: neither a signed trust list nor PEM certificates: {exc}"
        ) from None
    return [
        TrustedKey.from_certificate(c.public_bytes(serialization.Encoding.DER))
        for c in certificates
    ]
