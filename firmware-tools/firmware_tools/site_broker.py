"""A site broker's side of the PKI: what each role may do, the listener, the plugin's JSON."""

# Mosquitto's dynamic security plugin (2.0.11, plugins/dynamic-security) reads one JSON
# file when the broker starts: `defaultACLAccess`, `clients` (username, roles), `groups`
# and `roles` (rolename, acls of {acltype, topic, priority, allow}). Unlike `acl_file`,
# which on 2.0.11 lets any subscription through and filters only at delivery, it checks
# every SUBSCRIBE against the `subscribePattern`s of the client's roles, `$share/` ones
# included. A client unknown to the file is denied everything; so is `$CONTROL`, whatever
# the defaults, unless a role names it (none of ours does).

from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from edge.contract.topics import Site, TopicKind, kind_filters, shared

# (access, topic filter): `read` (receive and subscribe), `write` (publish) or
# `subscribe` (a filter only: a `$share/` group whose messages `read` grants).
Grant = tuple[str, str]
# The gateway config's `broker.share_group` default: its replicas split the stream in it.
SHARE_GROUP = "gateway"
# Home Assistant's default discovery prefix (the gateway config's
# `homeassistant.discovery_prefix`); a site.yaml may name another as `discovery_prefix`.
DISCOVERY_PREFIX = "homeassistant"

PLUGIN_FILE = "mosquitto_dynamic_security.so"
# Where packages put it: Debian and Ubuntu (multiarch), Fedora, Alpine and the Docker
# image, a source build, Homebrew.
PLUGIN_PLACES = (
    f"/usr/lib/*/{PLUGIN_FILE}",
    f"/usr/lib64/{PLUGIN_FILE}",
    f"/usr/lib/{PLUGIN_FILE}",
    f"/usr/lib/mosquitto/{PLUGIN_FILE}",
    f"/usr/local/lib/{PLUGIN_FILE}",
    f"/usr/local/lib/*/{PLUGIN_FILE}",
    f"/opt/homebrew/lib/{PLUGIN_FILE}",
)

# Nothing unless a role grants it. Unsubscribing stays open: it can only take away.
DEFAULT_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}
_ACLTYPES = {
    "read": ("publishClientReceive", "subscribePattern"),
    "write": ("publishClientSend",),
    "subscribe": ("subscribePattern",),
}


class IdentityRole(StrEnum):
    """What an identity may do on the site's broker; its grants follow from it alone."""

    GATE = "gate"
    DEPOT = "depot"
    GATEWAY = "gateway"
    COMMAND = "command"
    ADMIN = "admin"
    SIMULATOR = "simulator"
    HOMEASSISTANT = "homeassistant"


def acl_rules(
    role: IdentityRole,
    cn: str,
    site: Site,
    share_group: str = SHARE_GROUP,
    discovery_prefix: str = DISCOVERY_PREFIX,
) -> list[Grant]:
    """(access, topic filter) pairs of one identity under the site's root `P/v1/S`.

    `read` grants both receiving and subscribing; a gateway also subscribes through
    `$share/<share_group>/`, and no one else can join that group. Home Assistant's
    discovery configs of the site are under `<discovery_prefix>/sensor/<P>-<S>/`
    (gateway/homeassistant.py).
    """
    root = site.root
    # What the gateway publishes for Home Assistant: the site's discovery configs (read
    # too: it clears those of zones no longer in its config) and `P/v1/S/ha/...`.
    discovery = f"{discovery_prefix}/sensor/{site.prefix}-{site.name}/+/config"
    signed = [("read", f"{root}/trust"), ("read", f"{root}/revocations")]
    # Counts for the command center: checkpoint summaries, supply level, stock per category.
    summaries = [f"{root}/summary", f"{root}/summary/+", f"{root}/supply-level", f"{root}/stock"]
    match role:
        case IdentityRole.GATE | IdentityRole.DEPOT:
            node = cn.removeprefix(f"{role}-")
            return [
                ("write", f"{root}/{role}/{node}/#"),
                ("read", f"{root}/config/{node}"), *signed,
                ("read", f"{root}/receipt/{node}"),
            ]  # fmt: skip
        case IdentityRole.GATEWAY:
            writes = [f"{root}/alert/+", *summaries, f"{root}/receipt/+", f"{root}/ha/#",
                      discovery]  # fmt: skip
            return [
                ("read", f"{root}/#"), ("subscribe", shared(share_group, f"{root}/#")),
                ("read", discovery), *(("write", topic) for topic in writes),
            ]  # fmt: skip
        case IdentityRole.COMMAND:
            return [("read", topic) for topic in (f"{root}/alert/+", *summaries)]
        case IdentityRole.ADMIN:
            # Everything a technician checks, and no event: events carry personal data,
            # which only the gateway reads (and its API shows, audited, to those allowed).
            kinds = kind_filters(site)
            reads = [f for kind, f in kinds.items() if kind is not TopicKind.EVENT]
            writes = [kinds[TopicKind.TRUST], kinds[TopicKind.REVOCATIONS], kinds[TopicKind.CONFIG]]
            return [*(("read", topic) for topic in reads),
                    *(("write", topic) for topic in writes)]  # fmt: skip
        case IdentityRole.HOMEASSISTANT:
            # Discovery configs, the zones' states and availability; no event, no node
            # topic. It may announce itself (`<discovery_prefix>/status`, its birth).
            return [("read", f"{discovery_prefix}/#"), ("read", f"{root}/ha/#"),
                    ("write", f"{discovery_prefix}/status")]  # fmt: skip
        case IdentityRole.SIMULATOR:
            return [
                ("write", f"{root}/gate/+/#"), ("write", f"{root}/depot/+/#"),
                ("read", f"{root}/receipt/+"), ("read", f"{root}/config/+"), *signed,
            ]  # fmt: skip
    raise AssertionError(role)


def find_plugin(places: Sequence[str] = PLUGIN_PLACES) -> Path | None:
    """The first dynamic security plugin installed in one of `places` (globs), or None."""
    for place in places:
        for found in sorted(glob.glob(place)):
            if Path(found).is_file():
                return Path(found)
    return None


def dynsec_config(grants: Mapping[str, tuple[str, Sequence[Grant]]]) -> dict[str, Any]:
    """The plugin's JSON for `grants`: cn → (role, its grants); one client and role per cn.

    A client has no password: with `use_identity_as_username` Mosquitto takes the user
    name from the certificate and never asks the plugin to check one, and the plugin
    still finds the client by that name for every ACL check.
    """
    clients, roles = [], []
    for cn, (role, rules) in grants.items():
        clients.append({"username": cn, "textname": f"{role} identity, from its certificate",
                        "roles": [{"rolename": cn}]})  # fmt: skip
        acls = [
            {"acltype": acltype, "topic": topic, "priority": 0, "allow": True}
            for access, topic in rules
            for acltype in _ACLTYPES[access]
        ]
        roles.append({"rolename": cn, "textname": f"what {cn} may do", "acls": acls})
    return {"defaultACLAccess": DEFAULT_ACCESS, "clients": clients, "groups": [], "roles": roles}


def grants_text(grants: Mapping[str, tuple[str, Sequence[Grant]]], site: str) -> str:
    """The same grants for people: a block per identity, a line per grant."""
    lines = [f"# What each identity of site {site} may do on its broker (written to the "
             "broker as dynamic-security JSON)."]  # fmt: skip
    for cn, (role, rules) in grants.items():
        lines += ["", f"{cn} ({role})"]
        lines += [f"  {access:<9} {topic}" for access, topic in rules]
    return "\n".join(lines) + "\n"


def write_json(path: Path, config: Mapping[str, Any]) -> Path:
    """Write `config` to `path` whole (renamed into place), readable by the broker's user.

    The file holds no secret. The plugin would rewrite it only when told to through
    `$CONTROL`, which no identity may use; we rewrite it from the certificates instead.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    os.chmod(temporary, 0o644)
    temporary.replace(path)
    return path


def listener_conf(
    *,
    site: str,
    port: int,
    bind: str,
    tls: Mapping[str, Path],
    plugin: Path | None,
    dynsec: Path | None,
) -> str:
    """The broker's listener and security settings.

    Args:
        tls: `cafile`, `certfile`, `keyfile` and `crlfile` to their paths.
        plugin, dynsec: the dynamic security plugin and its JSON; None for neither,
            which lets every client the listener accepts read and write everything.
    """
    lines = [
        f"# Gatepost site {site}: TLS with a client certificate of the site CA only.",
        "# allow_anonymous and a plugin hold for the whole broker: add no other listener.",
        f"listener {port} {bind}",
        *(f"{setting} {path}" for setting, path in tls.items()),
        "tls_version tlsv1.2",
        "require_certificate true",
        "use_identity_as_username true",
        "use_username_as_clientid true",
        "allow_anonymous false",
    ]
    if plugin is not None and dynsec is not None:
        lines += [
            "# Read once, at the broker's start: restart it after `gatepost fw site add` or",
            "# `revoke` (a reload, SIGHUP, rereads the CRL but not the plugin's file).",
            f"plugin {plugin}",
            f"plugin_opt_config_file {dynsec}",
        ]
    return "\n".join(lines) + "\n"
