"""`gatepost fw provision NODE --role gate|depot`: one bundle that makes a Pi a site's node."""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.contract.topics import check_slug
from firmware_tools.node_bundle import (
    DEFAULT_EXEC,
    ETC,
    KIOSK_UNIT,
    NODE_UNIT,
    STATE,
    Bundle,
    NodeRequest,
    ProvisionError,
    UsbAdapter,
    add_units_and_rules,
    write_tarball,
)
from firmware_tools.site_broker import grants_text
from firmware_tools.site_certs import common_name, load_cert
from firmware_tools.site_pki import IdentityRole, SiteError, SitePki

CONSOLE_URL = "http://127.0.0.1:8080/"
ADAPTERS_MAX, SENSORS_MAX = 8, 64
# In the site folder's trust/: what `gatepost fw trust-list` and `revocations` --out wrote.
SITE_DOCUMENTS = ("trust-list.json", "revocations.json")
MAX_DOCUMENT_BYTES = 4_000_000
_SENSOR = re.compile(r"(?:([1-8])/)?([a-z0-9][a-z0-9_-]{0,62}):(\d{1,3})")
_SCALE = re.compile(r"([a-z0-9][a-z0-9_-]{0,62}):([a-z0-9][a-z0-9_-]{0,62})")


def add_provision(tools: Any) -> None:
    """Register `gatepost fw provision`."""
    parser = tools.add_parser(
        "provision",
        help="issue a node's identity and make its install bundle (config, units, udev rules)",
        description="Issue <ROLE>-<NODE> from the site CA (replacing and revoking one in "
        "force), write the node's config (validated), the signed trust list and revocations "
        "the site holds (DIR/trust/), systemd units, udev rules and install.sh into one "
        "tarball, and print the broker grants and the gateway's inventory entry.",
    )
    parser.add_argument("node", metavar="NODE", help="the node's name, a topic slug (g01, d01)")
    parser.add_argument("--role", required=True, choices=("gate", "depot"))
    parser.add_argument("--site-dir", required=True, type=Path, metavar="DIR",
                        help="the site folder made by `gatepost fw site init`")  # fmt: skip
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="the bundle (default: DIR/bundles/gatepost-ROLE-NODE.tar.gz)",
    )
    parser.add_argument(
        "--broker",
        metavar="URL",
        help="mqtts://host:port the node reaches the broker at (default: the "
        "broker certificate's first name and broker/gatepost.conf's port)",
    )
    parser.add_argument(
        "--root-key",
        type=Path,
        metavar="PEM",
        help="the site root public key (default: DIR/trust/root.pub.pem)",
    )
    for part in ("scanner", "thermometer"):
        parser.add_argument(
            f"--{part}-serial",
            metavar="[VID:PID:]SERIAL",
            help=f"the {part}'s USB-serial adapter: /dev/gatepost-{part} (gate)",
        )
    parser.add_argument(
        "--rs485-serial",
        action="append",
        default=[],
        metavar="[VID:PID:]SERIAL",
        help="an RS485 adapter, /dev/gatepost-rs485-<n> in order (depot)",
    )
    parser.add_argument(
        "--scale-serial",
        action="append",
        default=[],
        metavar="[VID:PID:]SERIAL",
        help="a scale's adapter, /dev/gatepost-scale-<n> in order (depot)",
    )
    parser.add_argument(
        "--sensor",
        action="append",
        default=[],
        metavar="[BUS/]ZONE:ID",
        help="a Modbus sensor on RS485 bus BUS (default 1) at slave id ID (depot)",
    )
    parser.add_argument(
        "--scale",
        action="append",
        default=[],
        metavar="NAME:ITEM",
        help="a platform scale under catalogue item ITEM (depot)",
    )
    parser.add_argument(
        "--sections",
        type=Path,
        metavar="YAML",
        help="config sections merged over the made ones (gpio, policy, buses…)",
    )
    parser.add_argument(
        "--exec",
        dest="exec_path",
        default=DEFAULT_EXEC,
        metavar="PATH",
        help=f"the gatepost command on the Pi (default: {DEFAULT_EXEC})",
    )
    parser.add_argument("--chromium", default="/usr/bin/chromium", metavar="PATH")
    parser.add_argument(
        "--compositor",
        default="/usr/bin/cage",
        metavar="PATH",
        help="the Wayland kiosk compositor chromium runs in ('' for none)",
    )
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        return provision(args, print)
    except (SiteError, OSError) as exc:
        problem = str(exc) if isinstance(exc, SiteError) else f"{exc.filename}: {exc.strerror}"
        print(f"gatepost fw provision: error: {problem}", file=sys.stderr)
        return 2


def provision(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    """Everything `gatepost fw provision` does; `say` prints progress and the results."""
    pki = SitePki.open(args.site_dir)
    request = _request(args, pki)
    role, cn = request.role, f"{request.role}-{request.name}"
    out = args.out or pki.folder / "bundles" / f"gatepost-{role}-{request.name}.tar.gz"
    documents: dict[str, bytes] = {}
    if role is IdentityRole.GATE:
        say(f"[1/5] checking the root key and signed lists in {pki.folder / 'trust'}")
        documents = _signed_documents(pki, args.root_key)
    else:
        say("[1/5] options checked (a depot takes no signed lists)")
    bundle = Bundle()
    _node_config(bundle, pki, request)  # checked before anything is issued
    say(f"[2/5] node config for {cn} is valid")
    old = _old_serial(pki, cn)
    if old is not None:
        pki.revoke(cn)
        say(f"      {cn} was provisioned before: its certificate {old:x} is revoked (CRL "
            f"{pki.crl_path})")  # fmt: skip
    files = pki.issue(role, request.name)
    say(f"[3/5] identity {cn} issued, serial {load_cert(files.cert).serial_number:x}")
    for name, path in (("ca.crt", files.ca), ("cert.pem", files.cert), ("key.pem", files.key)):
        bundle.add(f"{ETC}/{name}", path.read_bytes(), 0o600 if name == "key.pem" else 0o644)
    for target, data in documents.items():
        bundle.add(target, data)
    add_units_and_rules(bundle, pki.site, request)
    say(f"[4/5] units {NODE_UNIT}{', ' + KIOSK_UNIT if request.kiosk else ''}, "
        f"udev rules for {len(request.adapters)} adapters")  # fmt: skip
    for name in _unnamed_ports(bundle, request):
        say(f"      note: no adapter serial for /dev/{name}, so no udev rule makes it; give its "
            "--…-serial, or name the port in the config with --sections")  # fmt: skip
    write_tarball(out, bundle, f"gatepost-{role}-{request.name}")
    say(f"[5/5] bundle {out} ({len(bundle.files)} files)")
    say(f"copy it to the Pi; there: tar xzf {out.name} && sudo sh "
        f"gatepost-{role}-{request.name}/install.sh")  # fmt: skip
    say("")
    say(grants_text({cn: pki.grants()[cn]}, pki.site).rstrip())
    say(
        f"grants rewritten: {pki.dynsec_path}; restart the broker (`systemctl restart "
        "mosquitto`) to apply them" + (" and the CRL" if old is not None else "")
    )
    listed = "gates" if role is IdentityRole.GATE else "depots"
    say(f"gateway inventory: under `sites:` at `- name: {pki.site}`, add {request.name} "
        f"to `{listed}:`")  # fmt: skip
    say(f"  {listed}: [{request.name}]")
    return 0


def _request(args: argparse.Namespace, pki: SitePki) -> NodeRequest:
    """The node asked for, every option checked; nothing is written yet."""
    role = IdentityRole(args.role)
    try:
        check_slug(args.node, "NODE")
    except ValueError as exc:
        raise ProvisionError(str(exc)) from None
    adapters: dict[str, UsbAdapter] = {}
    if role is IdentityRole.GATE:
        for part in ("scanner", "thermometer"):
            text = getattr(args, f"{part}_serial")
            if text:
                adapters[f"gatepost-{part}"] = UsbAdapter.parse(text, f"--{part}-serial")
        if args.rs485_serial or args.scale_serial or args.sensor or args.scale:
            raise ProvisionError("--rs485-serial, --scale-serial, --sensor, --scale: depot only")
    elif args.scanner_serial or args.thermometer_serial:
        raise ProvisionError("--scanner-serial and --thermometer-serial are for a gate")
    for kind in ("rs485", "scale"):
        given = getattr(args, f"{kind}_serial")
        if len(given) > ADAPTERS_MAX:
            raise ProvisionError(
                f"--{kind}-serial given {len(given)} times; at most {ADAPTERS_MAX}"
            )
        for n, text in enumerate(given, 1):
            adapters[f"gatepost-{kind}-{n}"] = UsbAdapter.parse(text, f"--{kind}-serial")
    sensors = tuple(_sensor(text) for text in args.sensor[: SENSORS_MAX + 1])
    scales = tuple(_scale(text) for text in args.scale[: ADAPTERS_MAX + 1])
    if len(sensors) > SENSORS_MAX or len(scales) > ADAPTERS_MAX:
        raise ProvisionError(f"at most {SENSORS_MAX} --sensor and {ADAPTERS_MAX} --scale")
    kiosk = ""
    if role is IdentityRole.GATE:
        browser = (
            f"{args.chromium} --kiosk --noerrdialogs --no-first-run "
            f"--disable-session-crashed-bubble --disable-translate {CONSOLE_URL}"
        )
        kiosk = f"{args.compositor} -s -- {browser}" if args.compositor else browser
    buses = max([len(args.rs485_serial), *(bus for bus, _, _ in sensors)])
    return NodeRequest(
        args.node, role, args.broker or _default_broker(pki), adapters, sensors, scales,
        buses, _sections(args.sections), args.exec_path, kiosk,
    )  # fmt: skip


def _sensor(text: str) -> tuple[int, str, int]:
    found = _SENSOR.fullmatch(text)
    if not found or not 1 <= int(found[3]) <= 247:
        raise ProvisionError(f"--sensor {text!r}: give [BUS/]ZONE:ID, BUS 1-8, ID 1-247")
    return int(found[1] or 1), found[2], int(found[3])


def _scale(text: str) -> tuple[str, str]:
    found = _SCALE.fullmatch(text)
    if not found:
        raise ProvisionError(f"--scale {text!r}: give NAME:ITEM, both slugs (pallet-1:n95-mask)")
    return found[1], found[2]


def _sections(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")[:1_000_000])
    except (OSError, yaml.YAMLError) as exc:
        raise ProvisionError(f"--sections {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict | list) for v in data.values()):
        raise ProvisionError(f"--sections {path}: give a mapping of config sections")
    return data


def _default_broker(pki: SitePki) -> str:
    """mqtts://<the broker certificate's first name>:<the listener's port>."""
    host = common_name(load_cert(pki.server_cert_path))
    port = 8883
    if pki.broker_config_path.is_file():
        for line in pki.broker_config_path.read_text(encoding="utf-8").splitlines():
            if line.startswith("listener "):
                port = int(line.split()[1])
    return f"mqtts://{host}:{port}"


def _unnamed_ports(bundle: Bundle, request: NodeRequest) -> list[str]:
    """The stable names the config uses that no udev rule makes."""
    config = bundle.files[f"{ETC}/node.yaml"][0].decode()
    used = sorted(set(re.findall(r"/dev/(gatepost-[a-z0-9-]+)", config)))
    return [name for name in used if name not in request.adapters]


def _old_serial(pki: SitePki, cn: str) -> int | None:
    try:
        return load_cert(pki.files(cn).cert).serial_number
    except SiteError:
        return None


def load_root_public_key(path: Path, folder: Path) -> Ed25519PublicKey:
    """The site root public key in `path` (PEM: the public key, or the key itself).

    Raises:
        ProvisionError: unreadable, not PEM, or not Ed25519; `folder` is where keygen puts it.
    """
    try:
        data = path.read_bytes()[:MAX_DOCUMENT_BYTES]
        if b"PRIVATE KEY" in data:  # the key itself: its public half is what nodes hold
            key: Any = serialization.load_pem_private_key(data, password=None).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (OSError, ValueError, TypeError) as exc:
        raise ProvisionError(
            f"--root-key {path}: {getattr(exc, 'strerror', None) or exc}; give the "
            f"site root public key (`gatepost fw keygen --alg eddsa --out {folder}/root.pem` "
            "writes it beside the key; keep the key itself off the LAN)"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ProvisionError(f"--root-key {path}: the site root key is Ed25519")
    return key


def _signed_documents(pki: SitePki, root_key: Path | None) -> dict[str, bytes]:
    """The gate's root key and the site's signed lists, each verified by that key.

    Raises:
        ProvisionError: no root key, or a list that is not signed by it or has expired.
    """
    from edge.contract.documents import SignedRevocationList, SignedTrustList
    from edge.credentials.store import TrustStore
    from edge.credentials.trust import root_keys_for

    folder = pki.folder / "trust"
    # What `gatepost fw keygen --alg eddsa --out DIR/trust/root.pem` writes, or a copy.
    path = root_key or next(
        (p for p in (folder / "root.pub.pem", folder / "root.pem.pub.pem") if p.is_file()),
        folder / "root.pem.pub.pem",
    )
    key = load_root_public_key(path, folder)
    found = {f"{ETC}/root.pub.pem": path.read_bytes()}
    store = TrustStore(root_keys_for([key]))
    models: tuple[type[SignedTrustList] | type[SignedRevocationList], ...]
    models = (SignedTrustList, SignedRevocationList)
    for model, site_name in zip(models, SITE_DOCUMENTS, strict=True):
        if not (folder / site_name).is_file():
            continue
        data = (folder / site_name).read_bytes()[:MAX_DOCUMENT_BYTES]
        try:
            document = model.model_validate_json(data)
            assert isinstance(document, SignedTrustList | SignedRevocationList)
            store.apply(document, datetime.now(UTC))
        except Exception as exc:  # ValidationError, DocumentRefused: both name the problem
            raise ProvisionError(f"{folder / site_name}: {str(exc).splitlines()[0]}") from None
        # Named as the node's TrustStore keeps it, so the node starts holding it.
        found[f"{STATE}/trust/{model.model_fields['document'].default}.json"] = data
    return found


def _node_config(bundle: Bundle, pki: SitePki, request: NodeRequest) -> None:
    """The node's config into `bundle`, loaded by the node's own loader first.

    Raises:
        ProvisionError: the config fails its model; every bad field is named.
    """
    from edge.configfile import ConfigError

    node = {"site": pki.site, "name": request.name, "role": str(request.role),
            "prefix": pki.prefix, "state_dir": f"/{STATE}"}  # fmt: skip
    config: dict[str, Any] = {
        "node": node,
        "broker": {"url": request.broker_url, "ca": "ca.crt", "cert": "cert.pem", "key": "key.pem"},
    }
    if request.role is IdentityRole.GATE:
        config |= {
            "devices": {
                "scanner": {"url": "/dev/gatepost-scanner", "profile": "gm65-scanner"},
                "thermometer": {"url": "/dev/gatepost-thermometer", "profile": "gy-mcu90614"},
            },
            "trust": {"root_keys": ["root.pub.pem"]},
            "secrets": {"id_hash_key_file": "id-hash.key"},
        }
    else:
        config["buses"] = [
            {"url": f"/dev/gatepost-rs485-{n}",
             "sensors": [{"zone": zone, "slave_id": slave} for bus, zone, slave in
                         request.sensors if bus == n]}
            for n in range(1, request.buses + 1)
        ]  # fmt: skip
        config["scales"] = [
            {"name": name, "item": item, "url": f"/dev/gatepost-scale-{n}"}
            for n, (name, item) in enumerate(request.scales, 1)
        ]
    for section, value in request.sections.items():
        merged = {**config[section], **value} if isinstance(value, dict) and isinstance(
            config.get(section), dict) else value  # fmt: skip
        config[section] = merged
    text = yaml.safe_dump(config, allow_unicode=True, sort_keys=False).encode()
    with tempfile.TemporaryDirectory(prefix=".provision-check-") as scratch:
        check = Path(scratch) / "node.yaml"
        check.write_bytes(text)
        for name in ("ca.crt", "cert.pem", "key.pem", "root.pub.pem"):
            (Path(scratch) / name).write_bytes(b"")
        try:
            if request.role is IdentityRole.GATE:
                from edge.gate.config import load_config

                load_config(check)
            else:
                from edge.depot.config import load_config as load_depot

                load_depot(check)
        except ConfigError as exc:
            raise ProvisionError(f"the node config would not load: {exc}") from None
    bundle.add(f"{ETC}/node.yaml", text)
    if request.role is IdentityRole.GATE:
        bundle.add(f"{ETC}/id-hash.key", _id_hash_key(pki), 0o600)


def _id_hash_key(pki: SitePki) -> bytes:
    """The site's key for ID number hashes, shared by its gates: made once, mode 0600."""
    path = pki.folder / "secrets" / "id-hash.key"
    if not path.exists():
        path.parent.mkdir(mode=0o700, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_bytes()
