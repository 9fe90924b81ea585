"""`gatepost fw site init|add|add-web|revoke|list`: the site CA, its identities and their
grants, and web servers' certificates."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from firmware_tools.site_pki import SHARE_GROUP, IdentityRole, SiteError, SitePki

# Mosquitto 2.0.11's dynamic security plugin reads its file only when the broker starts;
# SIGHUP rereads the CRL but not the grants (tests/test_broker_security.py). A restart
# keeps persistent sessions and their queues in the persistence file.
# Always in a web certificate: the kiosk browser on the gate, a browser on the gateway.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")
APPLY = (
    "the broker applies it once restarted (`systemctl restart mosquitto`); a reload "
    "(SIGHUP) rereads the CRL but not the grants"
)


def add_site_commands(tools: Any) -> None:
    site = tools.add_parser(
        "site",
        help="the site CA, MQTT identities and the broker's locked config and grants",
        description="Every MQTT client of a site is an identity: a client certificate of "
        "the site CA whose name is its user name and client id on the broker, and whose role "
        "decides what it may read and write (docs/security.md).",
    )
    actions = site.add_subparsers(dest="action", required=True, metavar="ACTION")

    init = actions.add_parser(
        "init",
        help="make a site CA, the broker's certificate and its locked config",
        description="Create DIR with the site CA (key mode 0600), an empty CRL, the broker's "
        "certificate for every --host, empty grants for Mosquitto's dynamic security plugin "
        "and broker/gatepost.conf. Refuses a DIR that already holds a CA.",
    )
    init.add_argument("dir", type=Path, metavar="DIR")
    init.add_argument("--site", required=True, help="the site's name in topics")
    init.add_argument("--prefix", default="gatepost", help="topic prefix (default: gatepost)")
    init.add_argument(
        "--host", action="append", metavar="H",
        help="a DNS name or IP address clients reach the broker by; repeat for each "
        "(default: localhost and 127.0.0.1)",
    )  # fmt: skip
    init.add_argument("--port", type=int, default=8883, help="the broker's TLS port")
    init.add_argument("--days", type=int, default=3650, help="validity of the CA")
    init.add_argument(
        "--share-group", default=SHARE_GROUP, metavar="G",
        help="the $share group of the gateway's replicas, its config's broker.share_group; "
        f"no other identity may join it (default: {SHARE_GROUP})",
    )  # fmt: skip
    init.add_argument(
        "--plugin", type=Path, metavar="PATH",
        help="mosquitto_dynamic_security.so on the broker's machine, when it is not where "
        "this machine has it (default: found under /usr/lib and /usr/local/lib)",
    )  # fmt: skip
    init.set_defaults(run=_guarded(_run_init))

    add = actions.add_parser(
        "add",
        help="issue an identity (client certificate) and rewrite the grants",
        description="Issue <ROLE>-<NAME> (a gateway also gets <NAME>-out for its publisher) "
        "into DIR/clients/<cn>/. For a gate or depot, NAME is the node's name.",
    )
    add.add_argument("dir", type=Path, metavar="DIR")
    add.add_argument("role", choices=[role.value for role in IdentityRole], metavar="ROLE",
                     help=", ".join(role.value for role in IdentityRole))  # fmt: skip
    add.add_argument("name", metavar="NAME", help="a topic slug: a-z, 0-9, '-', '_'")
    add.add_argument("--days", type=int, default=825, help="validity (default: 825)")
    add.set_defaults(run=_guarded(_run_add))

    web = actions.add_parser(
        "add-web",
        help="issue a TLS server's certificate (HTTPS for the gateway or a console, PostgreSQL)",
        description="Issue a TLS server certificate of the site CA for every --host into "
        "DIR/web/NAME/ (cert.pem, key.pem and ca.crt): the gateway's http.tls_cert and "
        "tls_key, a gate's console.tls_cert and tls_key, or the gateway's PostgreSQL "
        "server's ssl_cert_file and ssl_key_file (docs/security.md#postgresql). localhost "
        "and 127.0.0.1 are always in it, for a client on that machine. Browsers trust it "
        "once ca.crt is installed as a trusted authority (docs/security.md).",
    )
    web.add_argument("dir", type=Path, metavar="DIR")
    web.add_argument("name", metavar="NAME", help="the machine, a slug: e.g. g01 or gateway")
    web.add_argument(
        "--host", action="append", required=True, metavar="H",
        help="a DNS name or IP address browsers reach it by; repeat for each",
    )  # fmt: skip
    web.add_argument("--days", type=int, default=825, help="validity (default: 825)")
    web.set_defaults(run=_guarded(_run_add_web))

    revoke = actions.add_parser(
        "revoke",
        help="revoke an identity: into the CRL, out of the grants",
        description="Add CN's serial to the CRL, drop its grants and delete its key "
        "(a gateway's two identities go together). The certificate stays in DIR/revoked/.",
    )
    revoke.add_argument("dir", type=Path, metavar="DIR")
    revoke.add_argument("cn", metavar="CN", help="the identity, e.g. gate-north-1")
    revoke.set_defaults(run=_guarded(_run_revoke))

    show = actions.add_parser(
        "list",
        help="list identities: role, expiry, revoked",
        description="One line per certificate issued: name, role, expiry, and when revoked.",
    )
    show.add_argument("dir", type=Path, metavar="DIR")
    show.add_argument(
        "--grants", action="store_true",
        help="also what each identity in force may read, write and subscribe to",
    )  # fmt: skip
    show.set_defaults(run=_guarded(_run_list))


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A refusal is one line on stderr and exit code 2 (a usage error), never a traceback."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except SiteError as exc:
            problem = str(exc)
        except OSError as exc:
            problem = f"{exc.filename or args.dir}: {exc.strerror or exc}"
        print(f"gatepost fw site {args.action}: error: {problem}", file=sys.stderr)
        return 2

    return guarded


def _run_init(args: argparse.Namespace) -> int:
    hosts = args.host or ["localhost", "127.0.0.1"]
    pki = SitePki.init(args.dir, args.site, args.prefix, hosts, args.days,
                       share_group=args.share_group, plugin=args.plugin)  # fmt: skip
    conf = pki.write_broker_config(args.port)
    print(f"site {pki.site} (topics {pki.root}/…) in {pki.folder}")
    print(f"  CA         {pki.ca_cert_path}, key {pki.ca_key_path} (keep it off the LAN)")
    print(f"  CRL        {pki.crl_path} (empty)")
    print(f"  broker     {pki.server_cert_path}, key {pki.server_key_path} for {', '.join(hosts)}")
    print(f"  config     {conf} (TLS on port {args.port}, client certificates only)")
    print(f"  grants     {pki.dynsec_path} (no identities yet; plugin {pki.plugin})")
    print("next:")
    print(f"  gatepost fw site add {args.dir} gateway <name>   (and gate, depot, command, admin)")
    print(f"  include {conf} in mosquitto's config, or run: mosquitto -c {conf}")
    print("  (mosquitto's user must be able to read broker/, ca/ca.crt and ca/crl.pem;")
    print("  ca/ca.key and clients/ stay on this machine)")
    return 0


def _run_add(args: argparse.Namespace) -> int:
    pki = SitePki.open(args.dir)
    files = pki.issue(args.role, args.name, days=args.days)
    issued = [files]
    if files.role is IdentityRole.GATEWAY:
        issued.append(pki.files(f"{files.cn}-out"))
    for each in issued:
        print(f"{each.cn} ({each.role}): {each.cert.parent}/")
        print(f"  certificate {each.cert}\n  key         {each.key}\n  site CA     {each.ca}")
    if files.role is IdentityRole.GATEWAY:
        print(f"  the gateway's ingest uses {files.cn}, its publisher {files.cn}-out")
    print(f"grants rewritten: {pki.dynsec_path}")
    print(APPLY)
    print(f"copy {files.cert.parent}/ to that machine and nothing else")
    return 0


def _run_add_web(args: argparse.Namespace) -> int:
    pki = SitePki.open(args.dir)
    hosts = list(dict.fromkeys([*args.host, *LOOPBACK_HOSTS]))
    files = pki.issue_web(args.name, hosts, days=args.days)
    print(f"web server {args.name}: {files.cert.parent}/ for {', '.join(hosts)}")
    print(f"  certificate {files.cert}   (tls_cert)\n  key         {files.key}   (tls_key)")
    print(f"  site CA     {files.ca}   (browsers and tablets install it as trusted)")
    print(f"copy {files.cert.parent}/ to that machine; keep the key mode 0600")
    return 0


def _run_revoke(args: argparse.Namespace) -> int:
    pki = SitePki.open(args.dir)
    names = pki.revoke(args.cn)
    print(f"revoked {', '.join(names)}: CRL {pki.crl_path}, grants {pki.dynsec_path} rewritten")
    print(APPLY)
    print("the restart closes its connections and the broker refuses it from then on")
    return 0


def _run_list(args: argparse.Namespace) -> int:
    pki = SitePki.open(args.dir)
    now = datetime.now(UTC)
    in_force, revoked = pki.identities(), pki.revoked()
    print(
        f"site {pki.site} (topics {pki.root}/…): {len(in_force)} in force, {len(revoked)} revoked"
    )
    print(f"{'IDENTITY':<40} {'ROLE':<10} {'EXPIRES':<11} STATE")
    for identity in [*in_force, *revoked]:
        if identity in revoked:
            at = identity.revoked_at
            state = f"revoked {at.date().isoformat()}" if at else "revoked"
        else:
            state = "expired" if identity.not_after < now else "in force"
        expires = identity.not_after.date().isoformat()
        print(f"{identity.cn:<40} {identity.role.value:<10} {expires:<11} {state}")
    if args.grants:
        print()
        print(pki.acl(), end="")
    return 0
