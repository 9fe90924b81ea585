"""The update bundle: a tar of wheels, the pinned lock and a manifest signed by a release key.

Layout (an uncompressed or gzip tar, every member a regular file at the top or in wheels/):

    manifest.json        the Manifest below, UTF-8 JSON; the signed bytes
    manifest.sig         base64url Ed25519 signature of manifest.json's exact bytes
    requirements.lock    the pinned dependencies the wheels were taken from
    wheels/<name>.whl    the project's wheel and, unless `complete` is false, its dependencies

The tools write it (firmware_tools/bundle.py); this module only reads and checks it, so a
node never imports the tools.
"""

from __future__ import annotations

import base64
import hashlib
import re
import tarfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Annotated, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from edge.errors import GatepostError

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
LOCK = "requirements.lock"
WHEELS = "wheels"
PROJECT = "gatepost"
FORMAT = 1
# Bounds on what a node reads before it trusts anything: a full bundle is some 60 wheels
# and 150 MB (numpy and OpenCV are most of it).
FILES_MAX = 256
MANIFEST_BYTES_MAX = 256 * 1024
SIGNATURE_BYTES_MAX = 128
FILE_BYTES_MAX = 512 * 1024 * 1024
_CHUNK = 1 << 20

VersionText = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,6}(\.[0-9]{1,6}){0,3}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
MemberName = Annotated[
    str,
    StringConstraints(pattern=r"^(requirements\.lock|wheels/[A-Za-z0-9_.+-]{1,160}\.whl)$"),
]


class BundleError(GatepostError):
    """A bundle that is not to be installed; the message says what is wrong with it."""


class BundleFile(BaseModel):
    """One file of the bundle as the manifest pins it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: Sha256
    size: int = Field(ge=0, le=FILE_BYTES_MAX)


class Manifest(BaseModel):
    """What the release key signs: which software, which version, and every file's hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = 1
    name: Literal["gatepost"] = "gatepost"
    version: VersionText
    created: AwareDatetime
    downgrade: bool = Field(False, description="a node may install it over a newer version")
    complete: bool = Field(
        True, description="false: only the project's wheel, for a node that has the rest"
    )
    files: dict[MemberName, BundleFile] = Field(min_length=2, max_length=FILES_MAX)

    @property
    def payload_bytes(self) -> int:
        return sum(entry.size for entry in self.files.values())

    @property
    def project_wheel(self) -> str:
        """The member name of the project's own wheel (checked to be there on load)."""
        prefix = f"{WHEELS}/{PROJECT}-{self.version}-"
        return next(name for name in self.files if name.startswith(prefix))

    def signing_bytes(self) -> bytes:
        """The bytes the release key signs: this manifest as written in the bundle."""
        return self.model_dump_json(indent=2).encode() + b"\n"


def version_key(version: str) -> tuple[int, ...]:
    """A version as numbers for comparing ("0.10.0" is newer than "0.9.3"); "0.2" == "0.2.0"."""
    if not re.fullmatch(r"[0-9]{1,6}(\.[0-9]{1,6}){0,3}", version):
        raise ValueError(f"version {version!r} is not 1 to 4 dot-separated numbers")
    parts = [int(part) for part in version.split(".")]
    return tuple(parts + [0] * (4 - len(parts)))


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def release_key(text: str) -> Ed25519PublicKey:
    """A release public key as the node's config lists it (base64url of the 32 raw bytes).

    Raises:
        ValueError: the text is not an Ed25519 public key.
    """
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ValueError(f"{text[:12]!r}… is not a base64url Ed25519 public key") from None


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature and every file's hash were checked; `path` may still change
    on disk, so `extract` checks each file's hash again as it writes it."""

    path: Path
    manifest: Manifest

    def extract(self, into: Path) -> None:
        """Write the lock and the wheels under `into`, checking each against the manifest.

        Raises:
            BundleError: the bundle changed since it was verified.
        """
        (into / WHEELS).mkdir(parents=True, exist_ok=True)
        written: set[str] = set()
        with _open(self.path) as tar:
            for member, stream in _members(self.path, tar, self.manifest.files):
                with (into / member).open("wb") as out:
                    digest = _copy(stream, out)
                if digest != self.manifest.files[member].sha256:
                    raise BundleError(f"{self.path}: {member} changed since it was verified")
                written.add(member)
        if missing := sorted(set(self.manifest.files) - written):
            raise BundleError(f"{self.path}: {missing} went missing since it was verified")


def verify_bundle(path: Path, keys: Iterable[Ed25519PublicKey]) -> VerifiedBundle:
    """Check a bundle without writing anything: signature by one of `keys`, then every hash.

    Raises:
        BundleError: not a readable tar (truncated, corrupt), no or a bad signature, a
            manifest that is not valid, a file missing, extra, or not matching its hash.
    """
    with _open(path) as tar:
        head = {name: _small(tar, path, name, limit) for name, limit in
                ((MANIFEST, MANIFEST_BYTES_MAX), (SIGNATURE, SIGNATURE_BYTES_MAX))}  # fmt: skip
        _check_signature(path, head[MANIFEST], head[SIGNATURE], list(keys))
        manifest = _manifest(path, head[MANIFEST])
        seen: set[str] = set()
        for member, stream in _members(path, tar, manifest.files):
            seen.add(member)
            if _copy(stream, None) != manifest.files[member].sha256:
                raise BundleError(f"{path}: {member} does not match its sha256 in the manifest")
        if missing := sorted(set(manifest.files) - seen):
            raise BundleError(f"{path}: files named in the manifest are missing: {missing}")
    return VerifiedBundle(path, manifest)


def _check_signature(
    path: Path, manifest: bytes, signature: bytes, keys: list[Ed25519PublicKey]
) -> None:
    if not keys:
        raise BundleError("update.release_keys is empty: this node trusts no release key")
    try:
        raw = base64.urlsafe_b64decode(signature.strip() + b"=" * (-len(signature.strip()) % 4))
    except ValueError:
        raise BundleError(f"{path}: {SIGNATURE} is not base64url") from None
    for key in keys:
        try:
            key.verify(raw, manifest)
            return
        except InvalidSignature:
            continue
    raise BundleError(f"{path}: the manifest's signature is not by a release key this node trusts")


def _manifest(path: Path, data: bytes) -> Manifest:
    try:
        manifest = Manifest.model_validate_json(data)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BundleError(f"{path}: {MANIFEST} is not a valid manifest: {where}") from None
    if LOCK not in manifest.files:
        raise BundleError(f"{path}: the manifest names no {LOCK}")
    if not any(name.startswith(f"{WHEELS}/{PROJECT}-{manifest.version}-") for name in
               manifest.files):  # fmt: skip
        raise BundleError(f"{path}: no {PROJECT} {manifest.version} wheel in the manifest")
    return manifest


@contextmanager
def _open(path: Path) -> Iterator[tarfile.TarFile]:
    try:
        with tarfile.open(path, "r:*") as tar:
            yield tar
    except (tarfile.TarError, EOFError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise BundleError(f"{path}: not a readable bundle (truncated or corrupt?): {reason}") from (
            None
        )


def _small(tar: tarfile.TarFile, path: Path, name: str, limit: int) -> bytes:
    try:
        member = tar.getmember(name)
    except KeyError:
        raise BundleError(f"{path}: no {name} in the bundle") from None
    if not member.isfile() or member.size > limit:
        raise BundleError(f"{path}: {name} is not a file of at most {limit} bytes")
    stream = tar.extractfile(member)
    assert stream is not None  # a regular file
    return stream.read()


def _members(
    path: Path, tar: tarfile.TarFile, files: dict[str, BundleFile]
) -> Iterator[tuple[str, IO[bytes]]]:
    """Each member the manifest names, streamed; anything else in the tar is refused."""
    count = 0
    for member in tar:
        name = str(PurePosixPath(member.name))
        count += 1
        if count > FILES_MAX + 2:
            raise BundleError(f"{path}: more than {FILES_MAX + 2} members")
        if name in (MANIFEST, SIGNATURE) or (member.isdir() and name == WHEELS):
            continue
        if name not in files or not member.isfile():
            raise BundleError(f"{path}: {member.name!r} is not a file the manifest names")
        if member.size != files[name].size:
            raise BundleError(f"{path}: {name} is {member.size} bytes, the manifest says "
                              f"{files[name].size}")  # fmt: skip
        stream = tar.extractfile(member)
        assert stream is not None
        yield name, stream


def _copy(stream: IO[bytes], out: IO[bytes] | None) -> str:
    digest = hashlib.sha256()
    try:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise BundleError(f"bundle ends early (truncated?): {exc}") from None
    return digest.hexdigest()
