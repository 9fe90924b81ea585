"""The reference suite's known data issues (its tests/known_issues.csv) and what each covers."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from edge.errors import CredentialError

log = logging.getLogger(__name__)

# The reference suite's tests (its tests/test_ehealth_certs.py), which known_issues.csv
# names, and the flags each judges: a test runs when its flag is set (it skips without).
# test_cbor_json compares CBOR with JSON, step 7 of the README (EXPECTEDVALIDJSON);
# EXPECTEDVALIDOBJECT has no test of its own there and is the same schema question
# asked of the JSON artefact, so a schema issue of the data covers it too.
REFERENCE_TESTS: dict[str, frozenset[str]] = {
    "test_compression": frozenset({"EXPECTEDCOMPRESSION"}),
    "test_cose_schema": frozenset({"EXPECTEDSCHEMAVALIDATION", "EXPECTEDVALIDOBJECT"}),
    "test_cose_json": frozenset({"EXPECTEDDECODE"}),
    "test_cbor_json": frozenset({"EXPECTEDVALIDJSON"}),
    "test_cose_cbor": frozenset({"EXPECTEDDECODE"}),
    "test_verification_check": frozenset({"EXPECTEDVERIFY"}),
    "test_expiration_check": frozenset({"EXPECTEDEXPIRATIONCHECK"}),
    "test_expected_key_usage": frozenset({"EXPECTEDKEYUSAGE"}),
    "test_b45decode": frozenset({"EXPECTEDB45DECODE"}),
    "test_un_prefix": frozenset({"EXPECTEDUNPREFIX"}),
    "test_picture_decode": frozenset({"EXPECTEDPICTUREDECODE"}),
}
KNOWN_ISSUE_COLUMNS = ("test_name", "country", "test_set", "reason")


@dataclass(frozen=True)
class KnownIssue:
    """One row of the reference suite's known_issues.csv: test data it knows is wrong.

    The reference names a case by its first folder (country) and its file name
    without .json (test set); an empty test set covers every case of the country,
    an empty test name every test.
    """

    test_name: str
    country: str
    test_set: str
    link: str

    @property
    def flags(self) -> frozenset[str] | None:
        """The flags the entry covers; None: all of them."""
        if not self.test_name:
            return None
        return REFERENCE_TESTS.get(self.test_name, frozenset())

    def covers(self, case: str, flag: str) -> bool:
        """Whether the entry covers `flag` of `case`, a path such as "BG/1.json"."""
        path = PurePosixPath(case)
        flags = self.flags
        return (
            self.country == path.parts[0]
            and self.test_set in ("", path.stem)
            and (flags is None or flag in flags)
        )


def load_known_issues(path: Path) -> list[KnownIssue]:
    """The entries of a known_issues.csv (test_name, country, test_set, reason).

    An entry naming a test this runner does not know covers nothing (logged): a
    mismatch it was meant for still fails the run rather than being waved through.

    Args:
        path: the reference suite's tests/known_issues.csv, or a file like it.

    Returns:
        The entries in file order.

    Raises:
        CredentialError: the file cannot be read or lacks one of the columns.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialError(f"cannot read {path}: {exc}") from None
    rows = csv.DictReader(io.StringIO(text))
    missing = [name for name in KNOWN_ISSUE_COLUMNS if name not in (rows.fieldnames or ())]
    if missing:
        raise CredentialError(f"{path} is not a known-issues list: no column {', '.join(missing)}")
    issues: list[KnownIssue] = []
    for row in rows:
        issue = KnownIssue(*((row.get(name) or "").strip() for name in KNOWN_ISSUE_COLUMNS))
        if issue.test_name and issue.test_name not in REFERENCE_TESTS:
            log.warning(
                "%s line %d: %s is not a reference test this runner knows; it covers nothing",
                path, rows.line_num, issue.test_name,
            )  # fmt: skip
        issues.append(issue)
    return issues
