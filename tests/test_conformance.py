"""The EU DCC conformance suite (dgc-testdata) through our runner, and the runner's own honesty."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge.credentials import conformance, cose
from edge.credentials.known_issues import REFERENCE_TESTS, KnownIssue, load_known_issues
from edge.errors import CredentialError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "dgc-testdata"
# The cases whose expectations are wrong come from the suite's own list, not from ours.
KNOWN_ISSUES = DATA / "known_issues.csv"


@pytest.fixture(scope="module")
def results() -> dict[str, conformance.CaseResult]:
    assert DATA.is_dir(), f"the conformance data is missing: {DATA}"
    return {result.path: result for result in conformance.run(DATA)}


@pytest.fixture(scope="module")
def with_known_issues() -> dict[str, conformance.CaseResult]:
    known = load_known_issues(KNOWN_ISSUES)
    return {result.path: result for result in conformance.run(DATA, known_issues=known)}


def _wrong(results: dict[str, conformance.CaseResult], excused: bool) -> dict[str, set[str]]:
    return {
        path: {c.flag for c in result.checks if not c.matches and c.excused == excused}
        for path, result in results.items()
        if any(not c.matches and c.excused == excused for c in result.checks)
    }


def test_every_case_passes__mismatches_only_where_the_suite_lists_known_issues(
    results: dict[str, conformance.CaseResult],
    with_known_issues: dict[str, conformance.CaseResult],
) -> None:
    assert len(results) >= 120
    assert not any(result.faults for result in results.values())
    assert all(result.passes for result in with_known_issues.values())
    # The list excuses exactly the mismatches a run without it finds, and no more.
    excused = _wrong(with_known_issues, excused=True)
    assert excused and excused == _wrong(results, excused=False)


def test_known_issues__cover_only_their_own_flags(tmp_path: Path) -> None:
    # BG/1 is listed for its schema; a wrong signature expectation must still fail it.
    case = json.loads((DATA / "BG" / "1.json").read_text())
    case["EXPECTEDRESULTS"]["EXPECTEDVERIFY"] = False
    (tmp_path / "BG").mkdir()
    (tmp_path / "BG" / "1.json").write_text(json.dumps(case))
    (result,) = conformance.run(tmp_path, known_issues=load_known_issues(KNOWN_ISSUES))
    assert result.status == "MISMATCH"
    assert {c.flag: c.excused for c in result.checks if not c.matches} == {
        "EXPECTEDSCHEMAVALIDATION": True,
        "EXPECTEDVALIDOBJECT": True,
        "EXPECTEDVERIFY": False,
    }


def test_known_issues__a_country_folder_as_dir() -> None:
    results = conformance.run(DATA / "BG", known_issues=load_known_issues(KNOWN_ISSUES))
    assert all(result.passes for result in results)
    assert {r.path for r in results if r.status == "known issue"} == {"1.json", "2.json"}


def test_known_issues__every_test_the_suite_lists_is_mapped() -> None:
    for issue in load_known_issues(KNOWN_ISSUES):
        assert issue.flags, f"{issue.test_name} covers no flag"


ISSUE = "https://example.org/issues/1"


@pytest.mark.parametrize(
    ("entry", "case", "flag"),
    [
        (("test_cose_schema", "BG", "1", ISSUE), "BG/1.json", "EXPECTEDSCHEMAVALIDATION"),
        (("test_cose_schema", "BG", "1", ISSUE), "BG/1.json", "EXPECTEDVALIDOBJECT"),
        (("test_cose_schema", "NL", "", ISSUE), "NL/7.json", "EXPECTEDSCHEMAVALIDATION"),
        (("test_cose_json", "FR", "test_pcr_ok", ISSUE), "FR/test_pcr_ok.json", "EXPECTEDDECODE"),
        (("test_cbor_json", "FR", "test_pcr_ok", ISSUE), "FR/test_pcr_ok.json", "EXPECTEDVALIDJSON"),
        (("test_expected_key_usage", "FI", "", ISSUE), "FI/2DCode/raw/3.json", "EXPECTEDKEYUSAGE"),
        (("", "HU", "3", ISSUE), "HU/3.json", "EXPECTEDVERIFY"),  # no test named: every test
    ],
)  # fmt: skip
def test_known_issue_covers__valid(entry: tuple[str, str, str, str], case: str, flag: str) -> None:
    assert KnownIssue(*entry).covers(case, flag)


@pytest.mark.parametrize(
    ("entry", "case", "flag"),
    [
        (("test_cose_schema", "BG", "1", ISSUE), "BG/1.json", "EXPECTEDVERIFY"),
        (("test_cose_schema", "BG", "1", ISSUE), "BG/2.json", "EXPECTEDSCHEMAVALIDATION"),
        (("test_cose_schema", "BG", "1", ISSUE), "RO/1.json", "EXPECTEDSCHEMAVALIDATION"),
        (("test_cose_json", "FR", "test_pcr_ok", ISSUE), "FR/test_pcr_ok.json", "EXPECTEDVALIDJSON"),
        (("test_someday", "BG", "1", ISSUE), "BG/1.json", "EXPECTEDSCHEMAVALIDATION"),
    ],
)  # fmt: skip
def test_known_issue_covers__invalid(
    entry: tuple[str, str, str, str], case: str, flag: str
) -> None:
    assert not KnownIssue(*entry).covers(case, flag)


def test_load_known_issues__unknown_test_is_logged_and_covers_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    listed = tmp_path / "known.csv"
    listed.write_text(f"test_name,country,test_set,reason\ntest_someday,BG,1,{ISSUE}\n")
    (issue,) = load_known_issues(listed)
    assert issue.flags == frozenset() and issue.link == ISSUE
    assert "line 2: test_someday is not a reference test" in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("test_name,country,link\n", "no column test_set, reason"),
        (None, "cannot read"),
    ],
)
def test_load_known_issues__invalid(tmp_path: Path, text: str | None, message: str) -> None:
    listed = tmp_path / "known.csv"
    if text is not None:
        listed.write_text(text)
    with pytest.raises(CredentialError, match=message):
        load_known_issues(listed)


@pytest.mark.parametrize(
    ("case", "flag", "expected"),
    [
        ("common/CO18.json", "EXPECTEDVERIFY", True),  # kid only protected
        ("common/CO19.json", "EXPECTEDVERIFY", True),  # kid only unprotected
        ("common/CO21.json", "EXPECTEDVERIFY", True),  # unprotected kid wrong, protected right
        ("common/CO22.json", "EXPECTEDVERIFY", False),  # protected kid wrong
        ("common/CO23.json", "EXPECTEDVERIFY", False),
        ("common/CO1.json", "EXPECTEDVERIFY", True),  # PS256, RSA 2048
        ("common/CO2.json", "EXPECTEDVERIFY", True),  # PS256, RSA 3072
        ("common/CO5.json", "EXPECTEDVERIFY", False),  # forged signature
        ("common/CO6.json", "EXPECTEDKEYUSAGE", False),  # test OID, vaccination DCC
        ("common/CO15.json", "EXPECTEDKEYUSAGE", True),  # empty EKU
        ("common/CO16.json", "EXPECTEDEXPIRATIONCHECK", False),
        ("common/CO17.json", "EXPECTEDEXPIRATIONCHECK", False),
        ("common/Q1.json", "EXPECTEDPICTUREDECODE", False),
        ("common/Z2.json", "EXPECTEDCOMPRESSION", False),
        ("common/DGC2.json", "EXPECTEDSCHEMAVALIDATION", False),
    ],
)
def test_pinned_cases_are_really_checked(
    results: dict[str, conformance.CaseResult], case: str, flag: str, expected: bool
) -> None:
    check = next(c for c in results[case].checks if c.flag == flag)
    assert (check.expected, check.actual) == (expected, expected), check.detail


def test_a_case_with_a_false_expectation_is_reported(tmp_path: Path) -> None:
    case = json.loads((DATA / "common" / "CO3.json").read_text())
    case["EXPECTEDRESULTS"]["EXPECTEDVERIFY"] = False
    nested = tmp_path / "XX" / "deeper"
    nested.mkdir(parents=True)
    (nested / "flipped.json").write_text(json.dumps(case))
    (tmp_path / "broken.json").write_text("{not json")
    results = {r.path: r for r in conformance.run(tmp_path)}
    flipped = results["XX/deeper/flipped.json"]
    assert not flipped.matches and flipped.status == "MISMATCH"
    assert [c.flag for c in flipped.checks if not c.matches] == ["EXPECTEDVERIFY"]
    broken = results["broken.json"]
    assert broken.status == "ERROR" and not broken.checks
    assert "not a readable JSON case" in broken.faults[0].what


def test_time_checks_without_a_clock_are_not_judged_against_today(tmp_path: Path) -> None:
    case = json.loads((DATA / "ES" / "1501.json").read_text())
    del case["TESTCTX"]["VALIDATIONCLOCK"]
    (tmp_path / "noclock.json").write_text(json.dumps(case))
    (check,) = [
        c for c in conformance.run(tmp_path)[0].checks if c.flag == "EXPECTEDEXPIRATIONCHECK"
    ]
    assert check.actual is None and "no VALIDATIONCLOCK" in check.detail


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "verify", *args], capture_output=True, text=True
    )


def test_cli_conformance__prints_a_row_per_case_and_fails_on_mismatch(
    results: dict[str, conformance.CaseResult],
) -> None:
    result = run_cli("--conformance", str(DATA))
    assert result.returncode == 1
    rows = [
        line for line in result.stdout.splitlines() if line.startswith("| ") and ".json" in line
    ]
    assert len(rows) == len(list(DATA.rglob("*.json")))
    mismatched = sum(not r.passes for r in results.values())
    assert mismatched and sum("| MISMATCH |" in row for row in rows) == mismatched


def test_cli_conformance__known_issues_shown_with_their_links_and_exit_0(
    with_known_issues: dict[str, conformance.CaseResult],
) -> None:
    result = run_cli("--conformance", str(DATA), "--known-issues", str(KNOWN_ISSUES))
    assert result.returncode == 0, result.stdout + result.stderr
    shown = result.stdout.split("Known data issues")[1].split("\n\n")[0].splitlines()[1:]
    expected = {
        (path, check.known_issue.link)
        for path, r in with_known_issues.items()
        for check in r.checks
        if check.excused and check.known_issue
    }
    assert len(shown) == len(expected)
    for path, link in expected:
        assert any(line.startswith(f"- {path}: ") and line.endswith(link) for line in shown)
    assert "0 mismatch; 0 with errors" in result.stdout


def test_cli_conformance__a_file_that_is_no_case_exits_2_naming_it(tmp_path: Path) -> None:
    shutil.copy(DATA / "common" / "CO1.json", tmp_path / "CO1.json")
    (tmp_path / "broken.json").write_text("{not json")
    result = run_cli("--conformance", str(tmp_path))
    assert result.returncode == 2
    assert f"cannot judge {tmp_path / 'broken.json'}: not a readable JSON case" in result.stderr


def test_cli_conformance__exit_0_when_all_match(tmp_path: Path) -> None:
    for name in ("CO1.json", "CO22.json", "Q1.json"):
        shutil.copy(DATA / "common" / name, tmp_path / name)
    result = run_cli("--conformance", str(tmp_path))
    assert result.returncode == 0, result.stdout
    assert "3 of 3 cases match" in result.stdout


def test_every_reason_is_documented() -> None:
    from edge.credentials.reasons import Reason

    doc = (Path(__file__).resolve().parents[1] / "docs" / "credentials.md").read_text(
        encoding="utf-8"
    )
    for reason in Reason:
        assert f"`{reason.value}`" in doc, f"docs/credentials.md does not explain {reason.value}"


# --- D.1: a VALIDATIONCLOCK without a UTC offset is UTC, as the reference suite reads it


@pytest.mark.parametrize(
    ("case", "naive_clock", "expected"),
    [
        ("ES/1501.json", "2026-04-24T23:10:37", True),  # the instant of exp, in UTC
        ("ES/1501.json", "2026-04-24T23:10:38", False),  # one second after it
        ("common/CO16.json", "2021-05-03T18:00:00", False),
    ],
)
def test_clock_without_offset__read_as_utc(
    tmp_path: Path, case: str, naive_clock: str, expected: bool
) -> None:
    data = json.loads((DATA / case).read_text())
    data["TESTCTX"]["VALIDATIONCLOCK"] = naive_clock
    data["EXPECTEDRESULTS"]["EXPECTEDEXPIRATIONCHECK"] = expected
    (tmp_path / "naive.json").write_text(json.dumps(data))
    (result,) = conformance.run(tmp_path)
    (check,) = [c for c in result.checks if c.flag == "EXPECTEDEXPIRATIONCHECK"]
    assert (check.expected, check.actual) == (expected, expected), check.detail


# --- D.2: a fault of the runner is an error with exit status 2, never a flag result


def test_runner_fault__is_an_error_naming_the_file_and_the_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.cli import main

    def broken(*_: object) -> None:
        raise TypeError("can't compare offset-naive and offset-aware datetimes")

    # CO16 expects its expiration check to fail: a fault read as a failed flag would match.
    shutil.copy(DATA / "common" / "CO16.json", tmp_path / "CO16.json")
    monkeypatch.setattr(conformance, "check_time", broken)
    assert main(["verify", "--conformance", str(tmp_path)]) == 2
    shown = capsys.readouterr()
    assert "CO16.json" in shown.err and "EXPECTEDEXPIRATIONCHECK" in shown.err
    assert "TypeError: can't compare offset-naive" in shown.err
    (result,) = conformance.run(tmp_path)
    assert "EXPECTEDEXPIRATIONCHECK" not in {c.flag for c in result.checks}


# --- D.4: key usage is judged on the certificate type alone


def _case_signed_by_a_dsc(eku: list[str], dcc: dict[str, Any]) -> dict[str, Any]:
    """A case whose COSE is signed by a fresh signer certificate with the EKU OIDs `eku`."""
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DSC conformance")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2021, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2031, 1, 1, tzinfo=UTC))
        .add_extension(
            x509.ExtendedKeyUsage([x509.ObjectIdentifier(oid) for oid in eku]), critical=False
        )
        .sign(private, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    claims = {1: "XX", 6: 1_620_000_000, 4: 1_650_000_000, -260: {1: dcc}}
    signed = cose.sign1(cbor2.dumps(claims), private, hashlib.sha256(certificate).digest()[:8])
    return {
        "TESTCTX": {"CERTIFICATE": base64.b64encode(certificate).decode()},
        "COSE": signed.hex(),
        "EXPECTEDRESULTS": {"EXPECTEDVERIFY": True, "EXPECTEDKEYUSAGE": True},
    }


VACCINATION_OID, TEST_OID = "1.3.6.1.4.1.1847.2021.1.2", "1.3.6.1.4.1.1847.2021.1.1"
DOSE = {
    "tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
    "dn": 1, "sd": 2, "dt": "2021-04-01", "co": "AT", "is": "BMSGPK", "ci": "URN:UVCI:01:AT:X#1",
}  # fmt: skip
TWO_DOSES = {
    "ver": "1.0.0",
    "nam": {"fnt": "MUSTERFRAU", "gnt": "ERIKA"},
    "dob": "1964-08-12",
    "v": [DOSE, {**DOSE, "dn": 2, "dt": "2021-04-29", "ci": "URN:UVCI:01:AT:X#2"}],
}


@pytest.mark.parametrize(
    ("eku", "dcc", "allowed"),
    [
        ([VACCINATION_OID], TWO_DOSES, True),
        ([VACCINATION_OID, TEST_OID], TWO_DOSES, True),
        ([TEST_OID], TWO_DOSES, False),
        ([VACCINATION_OID], {**TWO_DOSES, "t": []}, False),  # two kinds: no one type to judge
    ],
)
def test_key_usage__judged_on_the_certificate_type_alone(
    tmp_path: Path, eku: list[str], dcc: dict[str, Any], allowed: bool
) -> None:
    (tmp_path / "dsc.json").write_text(json.dumps(_case_signed_by_a_dsc(eku, dcc)))
    (result,) = conformance.run(tmp_path)
    checks = {c.flag: c for c in result.checks}
    assert checks["EXPECTEDVERIFY"].actual is True, checks["EXPECTEDVERIFY"].detail
    assert checks["EXPECTEDKEYUSAGE"].actual is allowed, checks["EXPECTEDKEYUSAGE"].detail


def test_clock_that_is_no_time__is_an_error_not_a_flag(tmp_path: Path) -> None:
    data = json.loads((DATA / "ES" / "1501.json").read_text())
    data["TESTCTX"]["VALIDATIONCLOCK"] = "tomorrow"
    (tmp_path / "clock.json").write_text(json.dumps(data))
    (result,) = conformance.run(tmp_path)
    assert result.status == "ERROR"
    assert result.faults == [
        conformance.Fault(
            "EXPECTEDEXPIRATIONCHECK", "VALIDATIONCLOCK 'tomorrow' is not an ISO 8601 time"
        )
    ]


@pytest.mark.parametrize(
    ("field", "value", "flag", "detail"),
    [
        ("COSE", "zz", "EXPECTEDVERIFY", "COSE is not hex"),
        ("COSE", 7, "EXPECTEDVERIFY", "COSE is not text"),
        ("BASE45", "AB=", "EXPECTEDB45DECODE", "base45:"),
        ("2DCODE", "a", "EXPECTEDPICTUREDECODE", "2DCODE is not base64"),
        ("CBOR", "ff", "EXPECTEDDECODE", "cbor: CBOR field"),
    ],
)
def test_malformed_artefacts__are_failed_flags_not_faults(
    tmp_path: Path, field: str, value: object, flag: str, detail: str
) -> None:
    data = json.loads((DATA / "CH" / "1.json").read_text())
    data[field] = value
    (tmp_path / "malformed.json").write_text(json.dumps(data))
    (result,) = conformance.run(tmp_path)
    assert not result.faults
    (check,) = [c for c in result.checks if c.flag == flag]
    assert check.actual is False and detail in check.detail


def test_every_reference_test_mapping_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "credentials.md").read_text(
        encoding="utf-8"
    )
    for test_name in REFERENCE_TESTS:
        assert f"`{test_name}`" in doc, f"docs/credentials.md does not map {test_name}"
