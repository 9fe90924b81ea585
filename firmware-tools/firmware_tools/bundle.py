"""`gatepost fw bundle build|key`: the signed update bundle a node installs offline.

The format is edge/updater/bundle.py's (the node reads it without these tools); how a node
installs it is in docs/update.md.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edge.credentials.issuer import Signer
from edge.errors import GatepostError
from edge.updater.bundle import (
    LOCK,
    MANIFEST,
    PROJECT,
    SIGNATURE,
    WHEELS,
    BundleFile,
    Manifest,
    b64url,
    version_key,
)

SOURCE = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", re.M)


def add_bundle(tools: Any) -> None:
    parser = tools.add_parser("bundle", help="build a signed update bundle for the nodes")
    steps = parser.add_subparsers(dest="bundle_command", required=True, metavar="STEP")
    build = steps.add_parser(
        "build", help="wheels, the pinned lock and a manifest signed by a release key",
        description="Write FILE: the project's wheel of --version, a wheel for every pin of "
        "the lock (so a node installs offline), the lock and manifest.json with each file's "
        "sha256, signed by --release-key (Ed25519: `gatepost fw keygen --alg eddsa`). "
        "Prints the release key's public half, for the nodes' update.release_keys.",
    )  # fmt: skip
    build.add_argument("--version", required=True, help="the project's version, e.g. 0.2.0")
    build.add_argument("--release-key", type=Path, required=True, help="Ed25519 key (PEM)")
    build.add_argument("--out", type=Path, required=True, help="the bundle file to write")
    build.add_argument(
        "--wheels", type=Path,
        help="take every wheel from this folder (offline) instead of building and downloading",
    )  # fmt: skip
    build.add_argument("--lock", type=Path, default=SOURCE / "requirements.lock")
    build.add_argument("--source", type=Path, default=SOURCE, help="the project to build")
    build.add_argument(
        "--platform", help="download dependencies' wheels for this pip platform tag "
        "(a Pi: manylinux2014_aarch64) instead of this machine's",
    )  # fmt: skip
    build.add_argument(
        "--allow-downgrade", action="store_true",
        help="sign that nodes may install it over a newer version",
    )  # fmt: skip
    build.add_argument(
        "--project-only", action="store_true",
        help="the project's wheel alone (a test bench; nodes refuse it by default)",
    )  # fmt: skip
    build.set_defaults(run=_run_build)
    key = steps.add_parser("key", help="print a release key's public half for node configs")
    key.add_argument("release_key", type=Path, metavar="KEY")
    key.set_defaults(run=_run_key)


def release_private_key(path: Path) -> Ed25519PrivateKey:
    key = Signer.load(path, issuer="").key
    if not isinstance(key, Ed25519PrivateKey):
        raise GatepostError(f"{path}: a release key must be Ed25519 (fw keygen --alg eddsa)")
    return key


def public_text(key: Ed25519PrivateKey) -> str:
    """The release key as a node's update.release_keys lists it."""
    return b64url(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def pins(lock: Path) -> dict[str, str]:
    """Normalised name to version of every `name==version` line of a lock."""
    try:
        text = lock.read_text(encoding="utf-8")
    except OSError as exc:
        raise GatepostError(f"--lock {lock}: {exc.strerror}") from None
    return {_normal(name): version for name, version in _PIN.findall(text)}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _wheel_of(path: Path) -> tuple[str, str]:
    """(normalised name, version) from a wheel's file name."""
    name, version = path.name.split("-")[:2]
    return _normal(name), version


def pick_wheels(
    folder: Path, version: str, lock: dict[str, str], *, project_only: bool
) -> list[Path]:
    """The project's wheel of `version` and, unless `project_only`, one per pin of `lock`.

    Raises:
        GatepostError: the project's wheel or a pinned dependency's is not in `folder`.
    """
    found = {_wheel_of(path): path for path in sorted(folder.glob("*.whl"))}
    project = found.get((PROJECT, version))
    if project is None:
        have = sorted(v for (name, v) in found if name == PROJECT) or ["none"]
        raise GatepostError(
            f"--version {version}: no {PROJECT} wheel of it in {folder} (found {', '.join(have)}; "
            "the version comes from pyproject.toml)"
        )
    if project_only:
        return [project]
    missing = [f"{name}=={pin}" for name, pin in lock.items() if (name, pin) not in found]
    if missing:
        raise GatepostError(f"{folder}: no wheel for {len(missing)} pins: {', '.join(missing[:8])}")
    return [project, *(found[item] for item in lock.items())]


def _pip(args: list[str], what: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], check=False,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise GatepostError(f"{what} failed: {tail[0]}")


def _gather(args: argparse.Namespace, into: Path) -> Path:
    """The folder holding the wheels: --wheels, or `into` filled by pip."""
    if args.wheels is not None:
        if not args.wheels.is_dir():
            raise GatepostError(f"--wheels {args.wheels}: not a folder")
        return Path(args.wheels)
    quiet = ["--quiet", "--disable-pip-version-check"]
    print(f"building the {PROJECT} wheel from {args.source}", file=sys.stderr)
    _pip(["wheel", *quiet, "--no-deps", "-w", str(into), str(args.source)], "pip wheel")
    if not args.project_only:
        print(f"fetching the wheels pinned in {args.lock}", file=sys.stderr)
        target = ["--only-binary=:all:", "--platform", args.platform] if args.platform else []
        _pip(["download", *quiet, "--no-deps", *target, "-d", str(into), "-r", str(args.lock)],
             "pip download")  # fmt: skip
    return into


def build_bundle(args: argparse.Namespace) -> Manifest:
    """Write the bundle `args` describe (temp file, then rename); return its manifest."""
    key = release_private_key(args.release_key)
    try:
        version_key(args.version)
    except ValueError as exc:
        raise GatepostError(f"--version: {exc}") from None
    lock = pins(args.lock)
    with tempfile.TemporaryDirectory(prefix="gatepost-bundle-") as temp:
        folder = _gather(args, Path(temp))
        wheels = pick_wheels(folder, args.version, lock, project_only=args.project_only)
        files = {LOCK: args.lock, **{f"{WHEELS}/{path.name}": path for path in wheels}}
        manifest = Manifest(
            version=args.version, created=datetime.now(UTC), downgrade=args.allow_downgrade,
            complete=not args.project_only,
            files={name: BundleFile(sha256=_sha256(path), size=path.stat().st_size)
                   for name, path in files.items()},
        )  # fmt: skip
        signed = manifest.signing_bytes()
        signature = b64url(key.sign(signed)).encode()
        _write_tar(args.out, signed, signature, files)
    return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_tar(out: Path, manifest: bytes, signature: bytes, files: dict[str, Path]) -> None:
    temp = out.with_name(f".{out.name}.partial")
    with tarfile.open(temp, "w") as tar:
        for name, data in ((MANIFEST, manifest), (SIGNATURE, signature)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, path in files.items():
            tar.add(path, arcname=name, recursive=False)
    with temp.open("rb") as written:
        os.fsync(written.fileno())
    temp.replace(out)


def _run_build(args: argparse.Namespace) -> int:
    manifest = build_bundle(args)
    size = args.out.stat().st_size / 2**20
    key = public_text(release_private_key(args.release_key))
    wheels = len(manifest.files) - 1
    print(f"{args.out}: {PROJECT} {manifest.version}, {wheels} wheels, {size:.1f} MiB; "
          f"release key {key}")  # fmt: skip
    return 0


def _run_key(args: argparse.Namespace) -> int:
    print(public_text(release_private_key(args.release_key)))
    return 0
