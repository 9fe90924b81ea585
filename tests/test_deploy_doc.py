"""Every `gatepost` command docs/deploy.md shows is one the CLI accepts, options and all."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from edge.cli import build_parser

DEPLOY = Path(__file__).resolve().parent.parent / "docs" / "deploy.md"
# The shell variables the guide sets before using them.
VARIABLES = {"$A": "site/clients/admin-tech"}
_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def documented_commands(text: str) -> list[list[str]]:
    """The argv after `gatepost` of each command in the page's sh blocks."""
    found = []
    for block in _BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            expanded = line
            for name, value in VARIABLES.items():
                expanded = expanded.replace(name, value)
            for command in re.split(r"&&|\|", expanded):
                words = shlex.split(command, comments=True)
                if words[:1] == ["sudo"]:
                    words = words[1:]
                if words and Path(words[0]).name == "gatepost":
                    found.append(words[1:])
    return found


COMMANDS = documented_commands(DEPLOY.read_text(encoding="utf-8"))


def test_the_guide_shows_the_whole_way() -> None:
    shown = {" ".join(argv[:2]) for argv in COMMANDS}
    for step in ("fw site", "fw keygen", "fw trust-list", "fw provision", "gateway run",
                 "gateway token", "fw device", "edge update", "fw fleet", "fw config",
                 "fw bundle", "fw issue"):  # fmt: skip
        assert step in shown, f"docs/deploy.md shows no `gatepost {step}`"


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(argv[:3]) for argv in COMMANDS])
def test_documented_command_parses(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        build_parser(argv[0]).parse_args(argv)
    except SystemExit:
        pytest.fail(f"`gatepost {shlex.join(argv)}`: {capsys.readouterr().err.strip()}")


def test_a_wrong_option_in_the_guide_would_fail() -> None:
    page = "```sh\nsudo /tmp/gp/bin/gatepost fw provision g01 --role gate \\\n    --port A1\n```\n"
    (argv,) = documented_commands(page)
    assert argv == ["fw", "provision", "g01", "--role", "gate", "--port", "A1"]
    with pytest.raises(SystemExit):
        build_parser(argv[0]).parse_args(argv)
