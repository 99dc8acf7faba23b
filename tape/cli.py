"""The ``tape`` command line: the one place that reads flags, files and the environment.

Each command lives in its own module, imported only when that command runs (``tape check``
need not load the network client, the simulator or polars), and is listed in
:data:`COMMANDS` here.
"""

from __future__ import annotations

import importlib
import logging
from typing import Final

import click

COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "exchange": ("tape.exchange_cmd", "Run the local, protocol-faithful Upbit exchange."),
    "record": ("tape.record_cmd", "Record Upbit market data into hive-partitioned Parquet."),
    "ls": ("tape.ls_cmd", "List a recording's datasets, dates, symbols, rows and bytes."),
    "compact": ("tape.compact_cmd", "Merge every partition's small parts into one."),
    "renormalize": ("tape.renormalize_cmd", "Rebuild the stream datasets from a raw capture."),
    "replay": ("tape.replay_cmd", "Print a recording's records as JSON lines, in order."),
    "check": ("tape.check_cmd", "Check the feed quality of a recording."),
    "report": ("tape.report_cmd", "Write a recording's feed-quality report as one HTML file."),
    "demo": ("tape.demo_cmd", "Run the whole pipeline against the embedded exchange."),
}
"""Each command's name, the module that defines it (a click command of the same name) and
its one-line help."""


class _LazyGroup(click.Group):
    """A group whose commands are imported on first use; ``--help`` lists them without."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = COMMANDS[cmd_name][0]
        command = getattr(importlib.import_module(module), cmd_name, None)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module} defines no click command named {cmd_name!r}")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="upbit-tape")
def main(verbose: int) -> None:
    """Record, replay and check the Upbit exchange's public market data."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
