"""`gatepost fw fleet`: every node of a site and what is wrong with it, from the gateway's API
(or, when it does not answer, from the broker: fleet_broker.py)."""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

from pydantic import Field, TypeAdapter, ValidationError

from edge.cli import add_broker_options, endpoint, slug_arg
from edge.errors import GatepostError

if TYPE_CHECKING:
    from gateway.fleet import FleetNode

FLEET_PATH = "/api/nodes/fleet"
TOKEN_ENV = "GATEPOST_TOKEN"  # noqa: S105 (the variable's name, not a token)
TOKEN_MAX = 512  # characters of a token; the gateway's are 40-odd
RESPONSE_MAX_BYTES = 8 * 1024 * 1024  # ~2 KB a node: several thousand nodes
NODES_MAX = 5000
CONFIG_SHOWN = 12  # characters of the config hash in the table (--json has all of it)
LISTEN_S = 25.0  # from the broker: two heartbeats of the default 10 s, and some
LISTEN_MAX_S = 600.0
TIMEOUT_MAX_S = 300.0
# Exit codes, for scripts: every node well, a node with a problem, the fleet not read.
WELL, PROBLEM, UNREAD = 0, 1, 2


class FleetError(Exception):
    """The fleet could not be read: the sentence says what to fix."""


def add_fleet(tools: Any) -> None:
    """Register `fw fleet` on the `fw` subparsers."""
    parser = tools.add_parser(
        "fleet",
        help="every node's version, config, trust list, devices and health; problems first",
        description="Read the fleet from the gateway (GET /api/nodes/fleet, an admin token) "
        "and print one row per node, those with problems first (offline, trust-stale, "
        "clock-skew, device-fault, judged by the gateway's alarm limits). Without --gateway, "
        "read the site's retained status and its heartbeats from the broker with an admin "
        "identity (--site, --broker, --ca, --cert, --key), judged by the default limits. "
        "Exit code 0: every node well; 1: a node has a problem; 2: the fleet could not be read.",
    )
    parser.add_argument(
        "--gateway", metavar="URL", help="the gateway's address, http(s)://host:port"
    )
    parser.add_argument(
        "--token-file", type=Path, metavar="PATH",
        help=f"a file holding an admin token (default: the {TOKEN_ENV} environment variable; "
        "never on the command line, where every user's `ps` sees it)",
    )  # fmt: skip
    add_broker_options(parser)  # --ca is also the CA of the gateway's HTTPS certificate
    parser.add_argument("--site", type=slug_arg("site"), help="this site's nodes only")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S",
        help="seconds to wait for the gateway or the broker's connection (default: 10)",
    )  # fmt: skip
    parser.add_argument(
        "--listen", type=float, default=LISTEN_S, metavar="S",
        help=f"from the broker: seconds to hear heartbeats (default: {LISTEN_S:.0f}, two "
        "intervals of the default 10 s; a node heard from in none of them is silent)",
    )  # fmt: skip
    parser.set_defaults(run=_run_fleet)


def _run_fleet(args: argparse.Namespace) -> int:
    try:
        if not 0 < args.timeout <= TIMEOUT_MAX_S:
            raise FleetError(f"--timeout {args.timeout}: give 0 to {TIMEOUT_MAX_S:.0f} seconds")
        if args.gateway is not None:
            token = read_token(args.token_file, os.environ)
            nodes, at = read_fleet(args.gateway, token, site=args.site, ca=args.ca,
                                   timeout_s=args.timeout)  # fmt: skip
        else:
            nodes, at = _from_broker(args)
    except FleetError as exc:
        print(f"gatepost fw fleet: error: {exc}", file=sys.stderr)
        return UNREAD
    if args.json:
        print_json(nodes, at, sys.stdout)
    else:
        sys.stdout.write(fleet_table(nodes, at))
    return PROBLEM if any(node.problems for node in nodes) else WELL


def _from_broker(args: argparse.Namespace) -> tuple[list[FleetNode], datetime]:
    """The site's fleet as the broker tells it, judged by the gateway's default limits."""
    from firmware_tools.fleet_broker import BrokerFleet, BrokerFleetError
    from gateway.config import AlarmSection
    from gateway.fleet import fleet_node, fleet_order

    if args.site is None:
        raise FleetError("give --gateway URL, or --site with the broker's options")
    if not 0 < args.listen <= LISTEN_MAX_S:
        raise FleetError(f"--listen {args.listen}: give 0 to {LISTEN_MAX_S:.0f} seconds")
    try:
        records = BrokerFleet(endpoint(args), args.site, args.prefix).read(
            args.listen, connect_timeout_s=args.timeout
        )
    except (BrokerFleetError, GatepostError, OSError) as exc:
        raise FleetError(str(exc)) from None
    now = datetime.now(UTC)
    limits = AlarmSection()
    rows = [fleet_node(r, expected=True, faults=[], limits=limits, now=now) for r in records]
    return sorted(rows, key=fleet_order), now


def read_token(path: Path | None, environ: Mapping[str, str]) -> str:
    """The admin token from `path`, else from the environment.

    Raises:
        FleetError: neither gives one, the file cannot be read, or it is not one token.
    """
    if path is None:
        given, source = environ.get(TOKEN_ENV, ""), f"${TOKEN_ENV}"
        if not given:
            raise FleetError(f"no token: give --token-file or set {TOKEN_ENV}")
    else:
        source = f"--token-file {path}"
        try:
            with path.open(encoding="utf-8") as file:
                given = file.read(TOKEN_MAX + 2)
        except (OSError, UnicodeDecodeError) as exc:
            raise FleetError(f"{source}: cannot read it ({exc})") from None
    token = given.strip()
    if not token or len(token) > TOKEN_MAX or any(c.isspace() for c in token):
        raise FleetError(f"{source}: not one token (one word of at most {TOKEN_MAX} characters)")
    return token


def read_fleet(
    gateway: str, token: str, *, site: str | None = None, ca: Path | None = None,
    timeout_s: float = 10.0,
) -> tuple[list[FleetNode], datetime]:  # fmt: skip
    """The fleet as the gateway judges it, and the gateway's time of the answer.

    Raises:
        FleetError: a bad URL, no answer, a refused token, or an answer that is not a fleet.
    """
    from gateway.fleet import FleetNode  # the gateway's models, only when a command runs

    url = _fleet_url(gateway, site)  # http(s) only: urlopen never sees file: or others
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if url.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=_tls(ca)))
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout_s) as response:
            body = response.read(RESPONSE_MAX_BYTES + 1)
            at = _date_of(response.headers.get("Date"))
    except urllib.error.HTTPError as exc:
        raise FleetError(_refusal(exc)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise FleetError(f"--gateway {gateway}: no answer ({reason})") from None
    if len(body) > RESPONSE_MAX_BYTES:
        raise FleetError(f"the gateway's answer is larger than {RESPONSE_MAX_BYTES} bytes")
    shape = TypeAdapter(Annotated[list[FleetNode], Field(max_length=NODES_MAX)])
    try:
        return shape.validate_json(body), at
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise FleetError(f"the gateway's answer is not a fleet: {where}: {first['msg']}") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: urllib would send the token on to wherever it points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _fleet_url(gateway: str, site: str | None) -> str:
    parts = urllib.parse.urlsplit(gateway)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise FleetError(f"--gateway {gateway!r}: give http(s)://host:port")
    query = f"?{urllib.parse.urlencode({'site': site})}" if site else ""
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}{FLEET_PATH}{query}"


def _tls(ca: Path | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=str(ca) if ca else None)
    except (OSError, ssl.SSLError) as exc:
        raise FleetError(f"--ca {ca}: not a CA certificate ({exc})") from None


def _refusal(exc: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(exc.read(4096)).get("detail", "")
    except (ValueError, AttributeError, OSError):
        detail = ""
    if exc.code == 401:
        return f"the gateway refused the token (401): {detail or 'unknown or revoked'}"
    if exc.code == 403:
        return f"the fleet needs an admin token (403): {detail}"
    return f"the gateway answered {exc.code}: {detail or exc.reason}"


def _date_of(header: str | None) -> datetime:
    # The gateway's clock, not this laptop's, ages the last-seen times.
    try:
        return parsedate_to_datetime(header) if header else datetime.now(UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)


# --- output ----------------------------------------------------------------------------------

COLUMNS = (
    "SITE", "NODE", "ROLE", "STATE", "VERSION", "CONFIG", "TRUST", "LAST SEEN", "SKEW",
    "OUTBOX", "DEVICES", "PROBLEMS",
)  # fmt: skip


def fleet_table(nodes: Sequence[FleetNode], at: datetime) -> str:
    """An aligned table, one row per node in the gateway's order, and a summary line."""
    rows = [COLUMNS, *(_row(node, at) for node in nodes)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    unwell = sum(1 for node in nodes if node.problems)
    lines.append(f"{len(nodes)} node{'' if len(nodes) == 1 else 's'}, {unwell} with problems")
    return "\n".join(lines) + "\n"


def _row(node: FleetNode, at: datetime) -> tuple[str, ...]:
    state = "online" if node.online else f"offline ({node.offline_reason or '?'})"
    seen = (
        "never" if node.last_seen is None else f"{age((at - node.last_seen).total_seconds())} ago"
    )
    skew = "-" if node.clock_skew_s is None else f"{node.clock_skew_s:+.1f}s"
    trust = "-" if node.trust_list_age_s is None else age(node.trust_list_age_s)
    return (
        node.site, node.node, node.role.value, state, node.version or "-",
        _config(node), trust, seen, skew,
        "-" if node.outbox_depth is None else str(node.outbox_depth), _devices(node),
        ",".join(node.problems) or "-",
    )  # fmt: skip


def _config(node: FleetNode) -> str:
    """serial/hash: the signed config's serial (`-` when the node does not say) and the start
    of its hash."""
    serial = "-" if node.config_serial is None else str(node.config_serial)
    return f"{serial}/{(node.config_hash or '-')[:CONFIG_SHOWN]}"


def _devices(node: FleetNode) -> str:
    """Devices not ok by name and state, and how many are ok; open faults the same way."""
    ok = sum(1 for state in node.devices.values() if state == "ok")
    unwell = [f"{d}={s}" for d, s in sorted(node.devices.items()) if s != "ok"]
    parts = [*unwell, *node.faults]
    if ok:
        parts.append(f"{ok} ok")
    return " ".join(parts) or "-"


def age(seconds: float) -> str:
    """A duration as a technician reads it: 45s, 12m, 5h, 3d."""
    s = max(0, round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= 2 * size:
            return f"{round(s / size)}{unit}"
    return f"{s}s"


def print_json(nodes: Sequence[FleetNode], at: datetime, out: TextIO) -> None:
    """`{"at": gateway time, "nodes": [...]}`, nodes as the API gives them."""
    document = {"at": at.isoformat(), "nodes": [node.model_dump(mode="json") for node in nodes]}
    json.dump(document, out, ensure_ascii=False, indent=2)
    out.write("\n")
