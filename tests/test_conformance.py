"""The EU DCC conformance suite (dgc-testdata) through our runner, and the runner's own honesty."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.credentials import conformance

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "dgc-testdata"
# Cases whose expectation we believe is wrong (see the issue note): the data, not us.
WRONG_EXPECTATIONS = {
    # "r"/"t" are null, which no DCC schema allows; the expectation says schema-valid.
    "BG/1.json": {"EXPECTEDSCHEMAVALIDATION", "EXPECTEDVALIDOBJECT"},
    "BG/2.json": {"EXPECTEDSCHEMAVALIDATION", "EXPECTEDVALIDOBJECT"},
    # Its JSON says sample time 12:34:56Z, its CBOR and QR code 14:34:56Z.
    "FR/test_pcr_ok.json": {"EXPECTEDDECODE", "EXPECTEDVALIDJSON"},
}


@pytest.fixture(scope="module")
def results() -> dict[str, conformance.CaseResult]:
    assert DATA.is_dir(), f"the conformance data is missing: {DATA}"
    return {result.path: result for result in conformance.run(DATA)}


def test_every_case_matches_but_the_wrong_expectations(
    results: dict[str, conformance.CaseResult],
) -> None:
    assert len(results) >= 120
    mismatched = {
        path: {check.flag for check in result.checks if not check.matches}
        for path, result in results.items()
        if not result.matches
    }
    assert mismatched == WRONG_EXPECTATIONS


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
    assert not flipped.matches
    assert [c.flag for c in flipped.checks if not c.matches] == ["EXPECTEDVERIFY"]
    assert not results["broken.json"].matches


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


def test_cli_conformance__prints_a_row_per_case_and_fails_on_mismatch() -> None:
    result = run_cli("--conformance", str(DATA))
    assert result.returncode == 1
    rows = [
        line for line in result.stdout.splitlines() if line.startswith("| ") and ".json" in line
    ]
    assert len(rows) == len(list(DATA.rglob("*.json")))
    assert sum("MISMATCH" in row for row in rows) == len(WRONG_EXPECTATIONS)


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
