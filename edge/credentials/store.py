"""The trust and revocation lists a node holds: verified, swapped atomically, persisted."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.contract.documents import SignedRevocationList, SignedTrustList
from edge.credentials.trust import (
    DOCUMENT_NAMES,
    DocumentRefused,
    RevocationList,
    TrustList,
    check_serial,
    verify_document,
)

logger = logging.getLogger(__name__)


class TrustStore:
    """The trust and revocation lists a node holds, replaced whole and only by newer ones.

    Readers take `trust_list` or `revocations` once per check and keep a consistent view
    even while a newer list is applied: each list is immutable and swapped by reference.
    """

    def __init__(
        self, root_keys: Mapping[bytes, Ed25519PublicKey], state_dir: Path | None = None
    ) -> None:
        """A store that accepts documents signed by `root_keys`.

        Args:
            root_keys: site root public keys by kid (see `root_keys_for`).
            state_dir: where applied documents are kept across restarts; None for nowhere.
        """
        self._root_keys: Mapping[bytes, Ed25519PublicKey] = MappingProxyType(dict(root_keys))
        self._state_dir = state_dir
        # Guards only check-and-swap (and the file write that goes with it), so two
        # applies cannot both win; readers never take it.
        self._lock = threading.Lock()
        self._trust_list = TrustList({})
        self._revocations = RevocationList()

    @property
    def trust_list(self) -> TrustList:
        """The current trust list; empty with serial 0 before any is applied."""
        return self._trust_list

    @property
    def revocations(self) -> RevocationList:
        """The current revocation list; empty with serial 0 before any is applied."""
        return self._revocations

    def trust_list_age_s(self, now: datetime) -> float | None:
        """Seconds since the held trust list was issued; None if none is held."""
        return _age_s(self._trust_list.issued_at, now)

    def revocations_age_s(self, now: datetime) -> float | None:
        """Seconds since the held revocation list was issued; None if none is held."""
        return _age_s(self._revocations.issued_at, now)

    def apply(self, document: SignedTrustList | SignedRevocationList, now: datetime) -> None:
        """Verify `document` and make it the current list of its kind.

        If the store has a state directory the document is also written there, so a
        restarted node has it before the broker delivers it again. A failed write is
        logged, not raised: the node keeps working on the list in memory.

        Args:
            document: a received trust or revocation list.
            now: the node's clock (aware).

        Raises:
            DocumentRefused: the document is not used; the current list stays.
        """
        self._accept(document, now, persist=True)

    def load(self, now: datetime) -> list[DocumentRefused]:
        """Take up the documents persisted in the state directory, verifying them again.

        A missing, corrupt, forged or expired file leaves that kind empty; nothing is raised,
        since a node must start even with a damaged SD card.

        Args:
            now: the node's clock (aware).

        Returns:
            The refusals, one per persisted file that was not taken up.
        """
        if self._state_dir is None:
            return []
        refused: list[DocumentRefused] = []
        models: tuple[type[SignedTrustList] | type[SignedRevocationList], ...]
        models = (SignedTrustList, SignedRevocationList)
        for model in models:
            kind = str(model.model_fields["document"].default)
            path = self._state_dir / f"{kind}.json"
            if not path.exists():
                continue
            try:
                document = model.model_validate_json(path.read_bytes())
            except (OSError, ValueError) as exc:
                # pydantic's ValidationError is a ValueError; its first line names the model.
                first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                refusal = DocumentRefused(kind, None, "invalid", f"{path.name}: {first_line}")
            else:
                try:
                    self._accept(document, now, persist=False)
                    continue
                except DocumentRefused as exc:
                    refusal = exc
            logger.warning("persisted %s", refusal)
            refused.append(refusal)
        return refused

    def _accept(
        self, document: SignedTrustList | SignedRevocationList, now: datetime, *, persist: bool
    ) -> None:
        if not isinstance(document, SignedTrustList | SignedRevocationList):
            raise TypeError(f"a TrustStore holds no {type(document).__name__}")
        # Verify and build outside the lock (the slow part), then re-check the serial
        # under it: another apply may have swapped in a newer list meanwhile.
        verify_document(document, self._root_keys, now, held_serial=self._held_serial(document))
        built: TrustList | RevocationList
        if isinstance(document, SignedTrustList):
            built = TrustList.from_document(document)
        else:
            built = RevocationList.from_document(document)
        with self._lock:
            check_serial(document, self._held_serial(document))
            if isinstance(built, TrustList):
                self._trust_list = built
            else:
                self._revocations = built
            if persist:
                self._persist(document)
        logger.info("now holding %s serial %s", DOCUMENT_NAMES[document.document], document.serial)

    def _held_serial(self, document: SignedTrustList | SignedRevocationList) -> int:
        if isinstance(document, SignedTrustList):
            return self._trust_list.serial
        return self._revocations.serial

    def _persist(self, document: SignedTrustList | SignedRevocationList) -> None:
        if self._state_dir is None:
            return
        path = self._state_dir / f"{document.document}.json"
        temporary = path.with_name(f".{path.name}.tmp")
        try:
            self._state_dir.mkdir(parents=True, exist_ok=True)
            with temporary.open("wb") as file:
                file.write(document.model_dump_json(exclude_none=True).encode())
                file.flush()
                os.fsync(file.fileno())
            # The rename is atomic: after a power cut the file is the old document or
            # the new one, never half of each. Syncing the directory makes it durable.
            os.replace(temporary, path)
            directory = os.open(self._state_dir, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError:
            logger.exception("could not persist %s to %s", DOCUMENT_NAMES[document.document], path)


def _age_s(issued_at: datetime | None, now: datetime) -> float | None:
    if issued_at is None:
        return None
    # A list issued within the clock tolerance "ahead" of us is new, not of negative age.
    return max(0.0, (now - issued_at).total_seconds())
