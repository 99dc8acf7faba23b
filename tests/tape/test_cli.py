"""The command group: every listed command loads, and only the one that runs is imported."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from tape.cli import COMMANDS, main


def test_every_listed_command_loads_under_its_name() -> None:
    ctx = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert isinstance(command, click.Command)
        assert command.name == name
        assert command.help, f"{name} has no help text"
    assert main.get_command(ctx, "nosuch") is None


def test_help_lists_every_command_and_an_unknown_one_is_refused() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    listed = result.output.split("Commands:")[1]
    assert [line.split()[0] for line in listed.strip().splitlines()] == list(COMMANDS)
    wrong = CliRunner().invoke(main, ["nosuch"])
    assert wrong.exit_code == 2
    assert "No such command 'nosuch'" in wrong.output


def test_a_command_imports_neither_the_network_client_nor_the_other_commands() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from tape.cli import main; "
        "CliRunner().invoke(main, ['check', '--help']); "
        "print(sorted(m for m in ('backbone', 'simulator', 'tape.demo_cmd', 'tape.check_cmd') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.strip() == "['tape.check_cmd']"
