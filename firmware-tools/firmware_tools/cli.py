"""Subcommands of the technicians' tools."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edge.cli import add_broker_options, endpoint, slug_arg
from edge.lifecycle import stop_on_signals
from firmware_tools.bundle import add_bundle
from firmware_tools.config_push import add_config
from firmware_tools.device.cli import add_device
from firmware_tools.fleet_view import add_fleet
from firmware_tools.issue import add_fw_commands
from firmware_tools.provision import add_provision
from firmware_tools.publish import add_publish
from firmware_tools.site_cli import add_site_commands
from firmware_tools.watch import Watcher


def add_watch(commands: Any) -> None:
    parser = commands.add_parser(
        "watch",
        help="print every MQTT message under the prefix, decoded and checked",
        description="Subscribe to <prefix>/# and print one line per message. Topics the "
        "contract does not define and payloads that fail their model are printed with '!!' "
        "and the reason; watching goes on.",
    )
    add_broker_options(parser)
    parser.add_argument(
        "--site", type=slug_arg("site"),
        help="watch this site's branch only (what a site's broker lets an admin read)",
    )  # fmt: skip
    parser.set_defaults(run=_run_watch)


def add_fw(commands: Any) -> None:
    parser = commands.add_parser("fw", help="site keys, codes and trust lists for technicians")
    tools = parser.add_subparsers(dest="tool", required=True, metavar="TOOL")
    add_fw_commands(tools)
    add_site_commands(tools)
    add_bundle(tools)
    add_config(tools)
    add_device(tools)
    add_provision(tools)
    add_publish(tools)
    add_fleet(tools)


def _run_watch(args: argparse.Namespace) -> int:
    stop = stop_on_signals()
    Watcher(endpoint(args), sys.stdout, args.prefix, args.site).run(stop)
    return 0
