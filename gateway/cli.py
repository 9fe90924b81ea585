"""`gatepost gateway …`: run the gateway, check its config, audit its event log, manage tokens."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.errors import GatepostError
from edge.lifecycle import stop_on_signals
from gateway.access import DEPOTS_MAX, hash_token, new_token, token_depots
from gateway.config import load_config
from gateway.store import SqlStore, open_store
from gateway.store.records import ACCESS_ROLES

TOKEN_NAME_MAX = 64


class TokenError(GatepostError):
    """A token command that cannot be done (a name taken, no such token)."""


def add_gateway(commands: Any) -> None:
    parser = commands.add_parser(
        "gateway", help="run the gateway, check its config, manage API tokens",
        description="The gateway: MQTT ingest, store, alarms, REST API and dashboard.",
    )  # fmt: skip
    gateway = parser.add_subparsers(dest="gateway_command", required=True, metavar="COMMAND")
    run = gateway.add_parser(
        "run", help="run the gateway until Ctrl-C or SIGTERM",
        description="Validate the config, then ingest, raise alarms and serve the API "
        "and dashboard. Exits 1 naming every bad field.",
    )  # fmt: skip
    run.add_argument("--config", type=Path, required=True, help="the gateway's YAML config")
    run.set_defaults(run=_run)
    check = gateway.add_parser(
        "check", help="validate a gateway config file",
        description="Exit 0 if FILE is valid; exit 1 naming each bad field otherwise.",
    )  # fmt: skip
    check.add_argument("--config", type=Path, required=True, help="the gateway's YAML config")
    check.set_defaults(run=_check)
    audit = gateway.add_parser(
        "audit-chain", help="prove from the store that no node event was removed, changed, "
        "reordered or inserted",
        description="Walk every node's event chain in the store, per outbox life, hashing "
        "each stored payload again. Prints OK with the count and the head hash per node, "
        "or each problem by seq; exits 1 if there is any. Compare a head with a printed "
        "daily report's prev_hash to pin the chain outside the store.",
    )  # fmt: skip
    audit.add_argument("--config", type=Path, required=True, help="the gateway's YAML config")
    audit.add_argument(
        "--node", metavar="SITE/NODE", help="audit one node only (default: every node stored)"
    )
    audit.set_defaults(run=_audit_chain)
    copy = gateway.add_parser(
        "store-copy", help="copy the SQLite store into an empty PostgreSQL database",
        description="Copy every table of the config's SQLite store (store.path) into the "
        "PostgreSQL database --to, in one transaction, keeping ids; then check row counts and "
        "the event chain audit on both. Stop the gateway first (its later writes would be "
        "missing; a file being written is refused). Refuses a database that holds any row "
        "(no merging). Prints rows and seconds per table; exits 1 on a refusal or a failed "
        "check. Then set store.url to the database (docs/scale.md).",
    )  # fmt: skip
    copy.add_argument("--config", type=Path, required=True, help="the gateway's YAML config")
    copy.add_argument(
        "--to", required=True, metavar="URL", help="the target, postgresql://user@host/db"
    )
    copy.set_defaults(run=_store_copy)
    _add_token(gateway)


def _add_token(gateway: Any) -> None:
    token = gateway.add_parser(
        "token", help="create, list or revoke API tokens",
        description="API tokens are shown once, when created, and stored only as a hash.",
    )  # fmt: skip
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="make a token and print it (once)",
        description="Roles: command (dashboard, counts, alarms, reports; every depot; no "
        "personal data), depot (the depots named by --depot: their readings, figures and "
        "alarms to acknowledge), registrar (personal data, audited), admin (everything).",
    )  # fmt: skip
    create.add_argument("--role", choices=ACCESS_ROLES, required=True, help="what it may do")
    create.add_argument("--name", required=True, help="who holds it; shown in the audit log")
    create.add_argument(
        "--depot", action="append", default=[], metavar="SITE/NODE", dest="depots",
        help=f"role depot only, at least one, at most {DEPOTS_MAX}: a depot it may see "
        "(repeat for more)",
    )  # fmt: skip
    create.add_argument(
        "--json", action="store_true", help="print {name, role, depots, token} as JSON"
    )
    create.set_defaults(run=_token_create)
    listing = actions.add_parser(
        "list", help="list tokens (names, roles, depots; never the tokens)",
        description="One line per token: name, role, live or revoked, and a depot token's "
        "depots (comma-separated), tab-separated.",
    )  # fmt: skip
    listing.set_defaults(run=_token_list)
    revoke = actions.add_parser("revoke", help="revoke a token by its name")
    revoke.add_argument("--name", required=True, help="the token's name")
    revoke.set_defaults(run=_token_revoke)
    for parser in (create, listing, revoke):
        parser.add_argument("--config", type=Path, required=True, help="the gateway's config")


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    # The files the config names, as `run` would load them: a wrong path is named now.
    config.broker.endpoint().check()
    config.broker.publisher_endpoint().check()
    certificate = config.http.certificate()
    if certificate is not None:
        certificate.context()
    gates = sum(len(site.gates) for site in config.sites)
    print(f"{args.config}: valid, {len(config.sites)} site(s), {gates} gate(s)")
    return 0


def _audit_chain(args: argparse.Namespace) -> int:
    site, _, node = (args.node or "").partition("/")
    if args.node and not (site and node):
        raise GatepostError(f"--node {args.node!r}: give it as SITE/NODE, e.g. north/g01")
    section = load_config(args.config).store
    if not section.url and not section.path.is_file():  # opening would make an empty store
        raise GatepostError(f"{section.path}: no gateway store there (store.path in {args.config})")
    store = open_store(section)
    try:
        audits = store.audit_chain(site or None, node or None)
    finally:
        store.close()
    for audit in audits:
        print(audit.summary())
        for finding in audit.findings:
            print(f"  {finding}")
    if not audits:
        print(f"no events stored{f' for {args.node}' if args.node else ''}")
    return 0 if all(audit.ok for audit in audits) else 1


def _store_copy(args: argparse.Namespace) -> int:
    from gateway.store.conninfo import database_url
    from gateway.store.copy import copy_store

    # The URL is never quoted back: it may hold a password.
    if not str(args.to).startswith(("postgresql://", "postgres://")):
        raise GatepostError("--to: give a PostgreSQL URL (postgresql://...)")
    try:  # the rule store.url is held to: off this machine, only over verified TLS
        target = database_url(args.to, None)
    except ValueError as error:
        raise GatepostError(f"--to, held to the rule store.url is: {error}") from None
    section = load_config(args.config).store
    report = copy_store(section.path, target)
    for line in report.lines():
        print(line)
    return 0


def _run(args: argparse.Namespace) -> int:
    from gateway.service import Gateway

    config = load_config(args.config)
    stop = stop_on_signals()
    Gateway(config).run(stop)
    return 0


def _store(args: argparse.Namespace) -> SqlStore:
    return open_store(load_config(args.config).store)


def _token_create(args: argparse.Namespace) -> int:
    name: str = args.name
    # Shown in the audit log and on `list`'s tab-separated lines: one line, bounded.
    if not (0 < len(name) <= TOKEN_NAME_MAX and name.isprintable() and name.strip() == name):
        raise TokenError(f"--name: 1 to {TOKEN_NAME_MAX} printable characters, no tab, "
                         "newline or leading or trailing space")  # fmt: skip
    try:
        depots = token_depots(args.role, args.depots)
    except ValueError as exc:
        raise TokenError(f"--depot: {exc}") from None
    config = load_config(args.config)
    known = {f"{site.name}/{node}" for site in config.sites for node in site.depots}
    for depot in depots:
        if depot not in known:  # configs change: a depot added later is allowed
            print(f"warning: {depot} is not a depot in {args.config} (yet?); "
                  "the token will see it once it is", file=sys.stderr)  # fmt: skip
    token = new_token()
    store = open_store(config.store)
    try:
        store.add_token(hash_token(token), args.name, args.role, datetime.now(UTC), depots)
    except ValueError as exc:
        raise TokenError(str(exc)) from None
    finally:
        store.close()
    if args.json:
        print(json.dumps({"name": args.name, "role": args.role, "depots": list(depots),
                          "token": token}))  # fmt: skip
    else:
        print(token)
    return 0


def _token_list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        for record in store.tokens():
            state = f"revoked {record.revoked_at:%Y-%m-%d %H:%M}" if record.revoked_at else "live"
            depots = f"\t{','.join(record.depots)}" if record.depots else ""
            print(f"{record.name}\t{record.role}\t{state}{depots}")
    finally:
        store.close()
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        if not store.revoke_token(args.name, datetime.now(UTC)):
            raise TokenError(f"no live token named {args.name!r}")
    finally:
        store.close()
    print(f"revoked {args.name}")
    return 0
