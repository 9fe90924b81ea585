"""A node's install bundle: its files and modes, units, udev rules, install.sh, the tarball."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from firmware_tools.site_pki import IdentityRole, SiteError

ETC = "etc/gatepost"
STATE = "var/lib/gatepost"
UNITS = "etc/systemd/system"
UDEV = "etc/udev/rules.d/70-gatepost.rules"
NODE_UNIT, KIOSK_UNIT = "gatepost-node.service", "gatepost-kiosk.service"
NODE_USER, KIOSK_USER = "gatepost", "gatepost-kiosk"
SECRET_FILES = ("key.pem", "id-hash.key")  # mode 0600 in the bundle and on the Pi
FTDI_VENDOR = "0403"
# The BOM's USB-serial adapter (FTDI FT232R); another one is named VID:PID:SERIAL.
DEFAULT_ADAPTER = (FTDI_VENDOR, "6001")
DEFAULT_EXEC = "/opt/gatepost/current/venv/bin/gatepost"  # the A/B slot in use (docs/update.md)

# udev matches values literally between quotes: no quote, backslash or glob may get in.
_USB_SERIAL = re.compile(r"[A-Za-z0-9._-]{1,64}")
_USB_ID = re.compile(r"[0-9a-f]{4}")


class ProvisionError(SiteError):
    """A node that cannot be provisioned as asked; the message names the option or file."""


@dataclass(frozen=True)
class UsbAdapter:
    """A USB-serial adapter, found by udev by its vendor, product and serial number."""

    vendor: str
    product: str
    serial: str

    @classmethod
    def parse(cls, text: str, option: str) -> UsbAdapter:
        """`SERIAL` (the BOM's FTDI adapter) or `VID:PID:SERIAL` (hex ids).

        Raises:
            ProvisionError: naming `option` and what is wrong.
        """
        parts = text.split(":")
        vendor, product = DEFAULT_ADAPTER
        if len(parts) == 3:
            vendor, product = parts[0].lower(), parts[1].lower()
        elif len(parts) != 1:
            raise ProvisionError(f"{option} {text!r}: give SERIAL or VID:PID:SERIAL")
        serial = parts[-1]
        if not (_USB_ID.fullmatch(vendor) and _USB_ID.fullmatch(product)):
            raise ProvisionError(f"{option} {text!r}: VID and PID are 4 hex digits, e.g. 0403:6001")
        if not _USB_SERIAL.fullmatch(serial):
            raise ProvisionError(
                f"{option} {text!r}: a USB serial number is 1-64 of A-Z, a-z, 0-9, '.', '_', '-' "
                "(udevadm info -a -n /dev/ttyUSB0 | grep serial)"
            )
        return cls(vendor, product, serial)


@dataclass(frozen=True)
class NodeRequest:
    """What the technician asked for: the node, its adapters and where the node runs from."""

    name: str
    role: IdentityRole
    broker_url: str
    adapters: dict[str, UsbAdapter] = field(default_factory=dict)  # stable name -> adapter
    sensors: tuple[tuple[int, str, int], ...] = ()  # (bus, zone, slave id)
    scales: tuple[tuple[str, str], ...] = ()  # (name, item)
    buses: int = 0
    sections: dict[str, Any] = field(default_factory=dict)  # merged over what is made
    exec_path: str = DEFAULT_EXEC
    kiosk: str = ""  # the kiosk unit's ExecStart; "" for a depot


@dataclass
class Bundle:
    """The bundle's files as they will sit under the target's root, with their modes."""

    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)

    def add(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.files[path] = (data, mode)

    def manifest(self) -> bytes:
        """`sha256sum -c` input: one `<hex>  <path>` line per file."""
        lines = [f"{hashlib.sha256(data).hexdigest()}  {path}" for path, (data, _) in
                 sorted(self.files.items())]  # fmt: skip
        return ("\n".join(lines) + "\n").encode()


def udev_rules(adapters: dict[str, UsbAdapter]) -> str:
    """A stable /dev/<name> per adapter by its USB ids and serial; FTDI latency 1 ms."""
    lines = ["# Gatepost: stable names for the node's USB-serial adapters (by serial number)."]
    for name, usb in sorted(adapters.items()):
        match = (f'ATTRS{{idVendor}}=="{usb.vendor}", ATTRS{{idProduct}}=="{usb.product}", '
                 f'ATTRS{{serial}}=="{usb.serial}"')  # fmt: skip
        lines.append(f'SUBSYSTEM=="tty", {match}, SYMLINK+="{name}", GROUP="dialout", MODE="0660"')
        if usb.vendor == FTDI_VENDOR:
            # The FTDI chip holds a short reply up to 16 ms by default; 1 ms keeps reads quick.
            lines.append(f'ACTION=="add", SUBSYSTEM=="usb-serial", {match}, '
                         'ATTR{latency_timer}="1"')  # fmt: skip
    return "\n".join(lines) + "\n"


def render(name: str, values: dict[str, str]) -> str:
    text = resources.files("firmware_tools").joinpath("templates", name).read_text("utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = re.search(r"@[A-Z_]+@", text)
    if left:
        raise AssertionError(f"template {name}: {left[0]} is not filled in")
    return text


def add_units_and_rules(bundle: Bundle, site: str, request: NodeRequest) -> None:
    """The systemd units, the udev rules and install.sh (last: it lists every file)."""
    values = {"ROLE": str(request.role), "NODE": request.name, "SITE": site,
              "EXEC": request.exec_path, "KIOSK_EXEC": request.kiosk}  # fmt: skip
    bundle.add(f"{UNITS}/{NODE_UNIT}", render(NODE_UNIT, values).encode())
    units, users = [NODE_UNIT], [NODE_USER]
    if request.kiosk:
        bundle.add(f"{UNITS}/{KIOSK_UNIT}", render(KIOSK_UNIT, values).encode())
        units.append(KIOSK_UNIT)
        users.append(KIOSK_USER)
    bundle.add(UDEV, udev_rules(request.adapters).encode())
    state = sorted(path for path in bundle.files if path.startswith(f"{STATE}/"))
    placed = sorted(path for path in bundle.files if path not in state)
    puts = [f"stage {bundle.files[path][1]:04o} {path}" for path in placed]
    keeps = [f'[ -e "$root/{path}" ] || stage 0640 {path}' for path in state]
    secret = " ".join(f"/{ETC}/{name}" for name in SECRET_FILES if f"{ETC}/{name}" in placed)
    values |= {"USERS": " ".join(users), "UNITS": " ".join(units), "PUT_FILES": "\n".join(puts),
               "PUT_STATE": "\n".join(keeps) or ":", "SECRETS": secret}  # fmt: skip
    bundle.add("install.sh", render("install.sh", values).encode(), 0o755)


def write_tarball(out: Path, bundle: Bundle, top: str) -> None:
    """`bundle` and its manifest as `out` (gzip), whole or not at all."""
    files = dict(bundle.files)
    files["MANIFEST.sha256"] = (bundle.manifest(), 0o644)
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(descriptor, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                now = int(time.time())
                for path, (data, mode) in sorted(files.items()):
                    info = tarfile.TarInfo(f"{top}/{path}")
                    info.size, info.mode, info.mtime = len(data), mode, now
                    info.uname = info.gname = "root"
                    tar.addfile(info, io.BytesIO(data))
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(temporary, 0o600)  # it holds the node's key
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def unpack(bundle: Path, into: Path) -> Path:
    """Unpack a bundle under `into` (refusing links and paths outside it); its top folder."""
    with tarfile.open(bundle, "r:gz") as tar:
        tar.extractall(into, filter="data")
        top = {member.name.split("/", 1)[0] for member in tar.getmembers()}
    if len(top) != 1:
        raise ProvisionError(f"{bundle}: not one top folder but {sorted(top)}")
    return into / top.pop()
