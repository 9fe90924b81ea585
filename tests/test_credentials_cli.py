"""`gatepost fw keygen|trust-list|issue` and `gatepost verify`, as a technician runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge.credentials.qrimage import decode_qr_png


def gatepost(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    assert (
        gatepost("fw", "keygen", "--alg", "eddsa", "--out", "root.pem", cwd=folder).returncode == 0
    )
    assert (
        gatepost("fw", "keygen", "--alg", "es256", "--out", "codes.pem", cwd=folder).returncode == 0
    )
    (folder / "secret").write_bytes(b"s" * 32)
    made = gatepost(
        "fw", "trust-list", "--root-key", "root.pem", "--signer", "codes.pem:health-code,badge",
        "--issuer", "North district", "--serial", "1", "--out", "trust.json",
        "--at", "2026-11-22T00:00:00+08:00", cwd=folder,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return folder


def issue_code(site: Path, *extra: str) -> str:
    result = gatepost(
        "fw", "issue", "health-code", "--colour", "green", "--id-number", "110101199001011234",
        "--subject-secret", "secret", "--name", "张三丰", "--key", "codes.pem", "--issuer", "north",
        "--at", "2026-11-22T08:00:00+08:00", *extra, cwd=site,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_issue_then_verify__valid(site: Path) -> None:
    code = issue_code(site, "--png", "code.png")
    assert code.startswith("HC1:")
    assert decode_qr_png((site / "code.png").read_bytes()) == code
    result = gatepost("verify", code, "--trust", "trust.json", "--root-key", "root.pem.pub.pem",
                      "--at", "2026-11-22T09:00:00+08:00", cwd=site)  # fmt: skip
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["ok"] and verdict["colour"] == "green" and verdict["profile"] == "health-code"
    assert verdict["issuer"] == "North district"
    assert verdict["iat"] == "2026-11-22T00:00:00+00:00"


def test_verify_from_stdin_and_expired(site: Path) -> None:
    result = gatepost("verify", "-", "--trust", "trust.json", "--root-key", "root.pem.pub.pem",
                      "--at", "2026-11-24T09:00:00+08:00", stdin=issue_code(site) + "\n", cwd=site)  # fmt: skip
    assert result.returncode == 1
    assert json.loads(result.stdout)["reasons"] == ["expired"]


def test_revoking_a_code_by_the_cti_its_verdict_shows(site: Path) -> None:
    code = issue_code(site)
    trust = (
        "--trust",
        "trust.json",
        "--root-key",
        "root.pem.pub.pem",
        "--at",
        "2026-11-22T09:00:00+08:00",
    )
    cti = json.loads(gatepost("verify", code, *trust, cwd=site).stdout)["cti"]
    made = gatepost("fw", "revocations", "--root-key", "root.pem", "--cti", cti, "--serial", "1",
                    "--at", "2026-11-22T00:00:00+08:00", "--out", "revoked.json", cwd=site)  # fmt: skip
    assert made.returncode == 0, made.stderr
    result = gatepost("verify", code, *trust, "--revocations", "revoked.json", cwd=site)
    assert result.returncode == 1
    assert json.loads(result.stdout)["reasons"] == ["revoked"]
    fresh = issue_code(site)
    assert (
        gatepost("verify", fresh, *trust, "--revocations", "revoked.json", cwd=site).returncode == 0
    )


def test_verify__unknown_signer_without_trust(site: Path) -> None:
    result = gatepost("verify", issue_code(site), "--at", "2026-11-22T09:00:00+08:00", cwd=site)
    assert result.returncode == 1
    assert json.loads(result.stdout)["reasons"] == ["unknown-kid"]


def test_verify__forged_trust_list_is_refused(site: Path) -> None:
    trust = json.loads((site / "trust.json").read_text())
    trust["body"]["entries"][0]["uses"] = ["health-code", "badge", "household-pass"]
    (site / "forged.json").write_text(json.dumps(trust))
    result = gatepost("verify", issue_code(site), "--trust", "forged.json", "--root-key",
                      "root.pem.pub.pem", cwd=site)  # fmt: skip
    assert result.returncode == 1
    assert "refused as bad-signature" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["verify", "HC1:X", "--at", "yesterday"], 2, "'yesterday' is not an ISO 8601 time"),
        (["verify", "HC1:X", "--at", "2026-11-22T09:00:00"], 2, "has no UTC offset"),
        (["verify"], 1, "give a CODE, '-' for stdin, or --conformance DIR"),
        (["verify", "HC1:X", "--trust", "missing.json"], 1, "cannot read missing.json"),
        (["verify", "--conformance", "nowhere"], 1, "is not a folder of conformance cases"),
        (["verify", "--conformance", ".", "--known-issues", "none.csv"], 1, "cannot read none.csv"),
        (["verify", "--conformance", ".", "--known-issues", "secret"], 1, "secret is not a known-issues list: no column test_name, country, test_set, reason"),
        (["verify", "HC1:X", "--known-issues", "known.csv"], 1, "--known-issues goes with --conformance DIR"),
        (["fw", "trust-list", "--root-key", "codes.pem", "--signer", "codes.pem:badge", "--issuer", "x", "--serial", "2", "--out", "t.json"], 1, "the site root key must be Ed25519"),
        (["fw", "trust-list", "--root-key", "root.pem", "--signer", "codes.pem:flying", "--issuer", "x", "--serial", "2", "--out", "t.json"], 1, "unknown uses ['flying']"),
        (["fw", "revocations", "--root-key", "root.pem", "--cti", "xyz", "--serial", "2", "--out", "r.json"], 1, "--cti takes the hex"),
        (["fw", "issue", "badge", "--volunteer", "v1", "--name", "x", "--key", "secret", "--issuer", "x"], 1, "not a PEM private key"),
    ],
)  # fmt: skip
def test_bad_arguments_say_why(site: Path, args: list[str], code: int, message: str) -> None:
    result = gatepost(*args, cwd=site)
    assert result.returncode == code
    assert message in result.stderr


def test_keygen_writes_a_private_key_only_its_owner_reads(site: Path) -> None:
    assert (site / "codes.pem").stat().st_mode & 0o077 == 0
    assert b"PRIVATE KEY" not in (site / "codes.pem.pub.pem").read_bytes()
