"""`gatepost fw keygen|issue|trust-list`: site keys, codes for people, and the signed trust list."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.cli import instant_arg
from edge.contract.documents import (
    KeyUse,
    RevocationListBody,
    SignedRevocationList,
    SignedTrustList,
    TrustListBody,
)
from edge.credentials.issuer import Signer, issue, mask_name, qr_png, subject_ref
from edge.credentials.keys import kid_text
from edge.credentials.native import Badge, HealthCode, HouseholdPass, NativeCredential
from edge.credentials.trust import new_signed, revocation_entry
from edge.errors import CredentialError

ALGORITHMS = {"es256": "ES256", "ps256": "PS256", "eddsa": "EdDSA"}


def add_fw_commands(tools: Any) -> None:
    keygen = tools.add_parser(
        "keygen",
        help="make a signing key (ES256, PS256 or EdDSA) or the Ed25519 site root key",
        description="Write a PEM private key (mode 0600) and its public key beside it "
        "(<out>.pub.pem); print the kid.",
    )
    keygen.add_argument("--alg", choices=sorted(ALGORITHMS), default="es256")
    keygen.add_argument("--rsa-bits", type=int, choices=(2048, 3072), default=2048)
    keygen.add_argument("--out", type=Path, required=True, help="private key file to write")
    keygen.set_defaults(run=_run_keygen)

    trust = tools.add_parser(
        "trust-list",
        help="sign the site trust list: which keys may sign which codes",
        description="Sign a trust list with the site root key, listing each --signer key's "
        "public half with the uses given after the colon (health-code, household-pass, badge, "
        "dcc-test, dcc-vaccination, dcc-recovery).",
    )
    trust.add_argument("--root-key", type=Path, required=True, help="Ed25519 root key (PEM)")
    trust.add_argument("--signer", action="append", required=True, metavar="KEY.pem:USE[,USE]")
    trust.add_argument("--issuer", required=True, help="issuer name the entries carry")
    trust.add_argument("--serial", type=int, required=True, help="greater than the last one")
    trust.add_argument("--valid-days", type=int, default=365)
    trust.add_argument("--at", type=instant_arg, help="issue time (default: now)")
    trust.add_argument("--out", type=Path, required=True)
    trust.set_defaults(run=_run_trust_list)

    revoke = tools.add_parser(
        "revocations",
        help="sign the site revocation list: codes nodes must refuse",
        description="Sign a revocation list with the site root key. Native codes are named "
        "by their cti (hex, as `gatepost verify` prints it), EU DCCs by their UVCI; the list "
        "carries only SHA-256 hashes. It replaces the previous list whole: give every "
        "revocation still in force.",
    )
    revoke.add_argument("--root-key", type=Path, required=True, help="Ed25519 root key (PEM)")
    revoke.add_argument("--cti", action="append", default=[], metavar="HEX")
    revoke.add_argument("--uvci", action="append", default=[], metavar="UVCI")
    revoke.add_argument("--serial", type=int, required=True, help="greater than the last one")
    revoke.add_argument("--at", type=instant_arg, help="issue time (default: now)")
    revoke.add_argument("--out", type=Path, required=True)
    revoke.set_defaults(run=_run_revocations)

    code = tools.add_parser(
        "issue",
        help="issue a health code, household pass or volunteer badge",
        description="Print the code's text (HC1:…) and, with --png, write its QR code "
        "(error correction Q).",
    )
    kinds = code.add_subparsers(dest="kind", required=True, metavar="KIND")
    health = kinds.add_parser("health-code", help="a person's health code")
    health.add_argument("--colour", choices=("green", "yellow", "red"), required=True)
    health.add_argument("--id-number", required=True, help="hashed with --subject-secret")
    health.add_argument(
        "--subject-secret",
        type=Path,
        required=True,
        help="file holding the site's secret for subject references",
    )
    health.add_argument("--test-at", type=instant_arg, help="last negative nucleic-acid test")
    household = kinds.add_parser("household-pass", help="a household's exit pass")
    household.add_argument("--household", required=True)
    household.add_argument("--weekly-exits", type=int, default=3)
    badge = kinds.add_parser("badge", help="a volunteer's badge")
    badge.add_argument("--volunteer", required=True)
    badge.add_argument("--role", default="volunteer")
    for kind in (health, household, badge):
        kind.add_argument("--name", required=True, help="full name; the code carries it masked")
        kind.add_argument("--key", type=Path, required=True, help="signing key (PEM)")
        kind.add_argument("--issuer", required=True, help="issuer name (iss claim)")
        kind.add_argument("--at", type=instant_arg, help="issue time (default: now)")
        kind.add_argument("--valid-hours", type=float, default=24.0)
        kind.add_argument("--png", type=Path, help="also write the QR code here")
        kind.set_defaults(run=_run_issue)  # fmt: skip


def _run_keygen(args: argparse.Namespace) -> int:
    signer = Signer.generate(ALGORITHMS[args.alg], issuer="", rsa_bits=args.rsa_bits)  # type: ignore[arg-type]
    signer.save(args.out)
    public = signer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    args.out.with_name(args.out.name + ".pub.pem").write_bytes(public)
    print(f"{args.out}: {ALGORITHMS[args.alg]} key, kid {kid_text(signer.kid)}")
    return 0


def _root_key(path: Path) -> Ed25519PrivateKey:
    root = Signer.load(path, issuer="").key
    if not isinstance(root, Ed25519PrivateKey):
        raise CredentialError(f"{path}: the site root key must be Ed25519 (keygen --alg eddsa)")
    return root


def _run_revocations(args: argparse.Namespace) -> int:
    root = _root_key(args.root_key)
    try:
        ctis = [bytes.fromhex(text) for text in args.cti]
    except ValueError:
        raise CredentialError("--cti takes the hex a verdict prints, e.g. 0a1b…") from None
    entries = [revocation_entry("cti", cti) for cti in ctis]
    entries += [revocation_entry("uvci", uvci) for uvci in args.uvci]
    body = RevocationListBody(entries=tuple(entries))
    document = new_signed(
        SignedRevocationList, body, args.serial, args.at or datetime.now(UTC), root
    )
    args.out.write_text(document.model_dump_json(indent=2, exclude_none=True), encoding="utf-8")
    print(f"{args.out}: revocation list serial {args.serial}, {len(entries)} entries")
    return 0


def _run_trust_list(args: argparse.Namespace) -> int:
    root = _root_key(args.root_key)
    now = args.at or datetime.now(UTC)
    entries = []
    for spec in args.signer:
        path, _, uses_text = spec.rpartition(":")
        uses = tuple(uses_text.split(","))
        unknown = set(uses) - set(get_args(KeyUse))
        if not path or unknown:
            raise CredentialError(
                f"--signer {spec!r}: give KEY.pem:USE[,USE]; unknown uses {sorted(unknown)}"
            )
        signer = Signer.load(Path(path), args.issuer)
        entries.append(signer.trust_entry(uses, now, now + timedelta(days=args.valid_days)))
    document = new_signed(
        SignedTrustList, TrustListBody(entries=tuple(entries)), args.serial, now, root
    )
    args.out.write_text(document.model_dump_json(indent=2, exclude_none=True), encoding="utf-8")
    print(f"{args.out}: trust list serial {args.serial}, {len(entries)} signers")
    return 0


def _run_issue(args: argparse.Namespace) -> int:
    signer = Signer.load(args.key, args.issuer)
    at = args.at or datetime.now(UTC)
    credential: NativeCredential
    name = mask_name(args.name)
    if args.kind == "health-code":
        try:
            secret = args.subject_secret.read_bytes()
        except OSError as exc:
            raise CredentialError(f"cannot read {args.subject_secret}: {exc.strerror}") from None
        credential = HealthCode(colour=args.colour, subject=subject_ref(args.id_number, secret),
                                name=name, test_at=args.test_at)  # fmt: skip
    elif args.kind == "household-pass":
        credential = HouseholdPass(
            household=args.household, weekly_exits=args.weekly_exits, name=name
        )
    else:
        credential = Badge(volunteer=args.volunteer, role=args.role, name=name)
    text = issue(credential, signer, at, timedelta(hours=args.valid_hours))
    if args.png:
        args.png.write_bytes(qr_png(text))
    print(text)
    return 0
