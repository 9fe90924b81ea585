"""`gatepost`: one command line for every Gatepost component; each package adds its subcommands."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from edge.contract.topics import DEFAULT_PREFIX, check_slug
from edge.errors import GatepostError
from edge.mqtt import BrokerUrl, Endpoint, certificate_problem


def broker_arg(value: str) -> BrokerUrl:
    """argparse type for a broker URL, with the reason when it is not one."""
    try:
        return BrokerUrl.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def slug_arg(what: str) -> Callable[[str], str]:
    """argparse type for a topic segment (site, node, prefix)."""

    def parse(value: str) -> str:
        try:
            return check_slug(value, what)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def instant_arg(text: str) -> datetime:
    """argparse type for a point in time: ISO 8601 with a UTC offset."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset")
    return at


def add_broker_options(parser: argparse.ArgumentParser) -> None:
    """The broker, who we are to it, and the prefix: the same for every command that talks MQTT.

    `endpoint(args)` makes the Endpoint of what was given.
    """
    parser.add_argument(
        "--broker", type=broker_arg, default=BrokerUrl("127.0.0.1", 8883, tls=True),
        help="mqtts://host:port, or mqtt://host:port on a test bench "
        "(default: mqtts://127.0.0.1:8883)",
    )  # fmt: skip
    parser.add_argument("--ca", type=Path, help="the site CA (PEM), from `gatepost fw site`")
    parser.add_argument("--cert", type=Path, help="this client's certificate (PEM)")
    parser.add_argument("--key", type=Path, help="the certificate's private key (PEM)")
    parser.add_argument(
        "--prefix", type=slug_arg("prefix"), default=DEFAULT_PREFIX,
        help=f"topic prefix (default: {DEFAULT_PREFIX})",
    )  # fmt: skip


def endpoint(args: argparse.Namespace) -> Endpoint:
    """The Endpoint of --broker, --ca, --cert and --key.

    Raises:
        GatepostError: they do not fit together (a certificate without its key, or
            certificates with an mqtt:// broker).
    """
    try:
        given = Endpoint(args.broker, ca=args.ca, cert=args.cert, key=args.key)
        problem = None if args.cert is None else certificate_problem(args.cert, datetime.now(UTC))
    except (OSError, ValueError) as exc:
        raise GatepostError(f"--broker/--ca/--cert/--key: {exc}") from None
    if problem is not None:  # the broker would only say its handshake failed
        raise GatepostError(f"--cert: {problem}: the broker refuses it; issue a new one "
                            "with gatepost fw site add")  # fmt: skip
    return given


def endpoint_args(endpoint: Endpoint) -> list[str]:
    """The options that give a child process `endpoint` (the inverse of `endpoint`)."""
    files = {"--ca": endpoint.ca, "--cert": endpoint.cert, "--key": endpoint.key}
    given = [arg for flag, path in files.items() if path for arg in (flag, str(path))]
    return ["--broker", str(endpoint.url), *given]


# Each command, and the package function that registers it, in the order `--help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("simulators.cli", "add_demo"),
    "watch": ("firmware_tools.cli", "add_watch"),
    "edge": ("edge.gate.cli", "add_edge"),
    "gateway": ("gateway.cli", "add_gateway"),
    "sim": ("simulators.cli", "add_sim"),
    "verify": ("edge.credentials.cli", "add_verify"),
    "fw": ("firmware_tools.cli", "add_fw"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; each package registers its own subcommands here.

    Args:
        command: register only this command (the one being run), so that a node's process
            does not import the gateway, the simulators and the tools with their parsers
            (some 25 MB of a Pi's memory); None or an unknown name: every command.
    """
    parser = argparse.ArgumentParser(
        prog="gatepost",
        description="Gatepost: epidemic checkpoints and supply depots.",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"],
        help="how much to log on stderr (default: info)",
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Imported here so that importing edge never drags in the tools and simulators.
    for name in [command] if command in COMMANDS else COMMANDS:
        module, register = COMMANDS[name]
        getattr(importlib.import_module(module), register)(commands)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command `argv` runs: its first word that is not an option or an option's value."""
    words = iter(argv)
    for word in words:
        if word == "--log-level":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `gatepost` command; returns its exit code."""
    given = sys.argv[1:] if argv is None else argv
    args = build_parser(_command_of(given)).parse_args(given)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.run(args)
    except GatepostError as exc:
        print(f"gatepost {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
