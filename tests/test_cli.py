"""Every `gatepost` command has help text and is documented in the README; bad arguments say why."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import build_parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def commands(parser: argparse.ArgumentParser, prefix: str = "gatepost") -> list[tuple[str, str]]:
    """(full command, help) for every subcommand, nested ones included."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((f"{prefix} {name}", helps.get(name) or ""))
                found.extend(commands(sub, f"{prefix} {name}"))
    return found


@pytest.mark.parametrize(
    ("command", "help_text"), commands(build_parser()), ids=[c for c, _ in commands(build_parser())]
)
def test_every_command_has_help_and_is_in_the_readme(command: str, help_text: str) -> None:
    assert help_text, f"{command} has no help text"
    assert f"`{command}" in README, f"README.md does not document {command}"


def test_help_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for command in ("demo", "watch", "sim"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["watch", "--broker", "http://gw"], "is not mqtt://host[:port]"),
        (["sim", "node", "--site", "North Gate"], "site 'North Gate' is not a valid topic segment"),
        (["watch", "--prefix", "a/b"], "prefix 'a/b' is not a valid topic segment"),
        (["launch"], "invalid choice: 'launch'"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(argv: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", *argv], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert message in result.stderr
