"""The ``tape`` command line: the one place that reads flags, files and the environment.

Each command lives in its own module and is registered on the ``main`` group here.
"""

from __future__ import annotations

import logging

import click

from tape.check_cmd import check
from tape.compact_cmd import compact
from tape.demo_cmd import demo
from tape.exchange_cmd import exchange
from tape.ls_cmd import ls
from tape.record_cmd import record
from tape.renormalize_cmd import renormalize
from tape.replay_cmd import replay
from tape.report_cmd import report


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="upbit-tape")
def main(verbose: int) -> None:
    """Record, replay and check the Upbit exchange's public market data."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


for _command in (exchange, record, ls, compact, renormalize, replay, check, report, demo):
    main.add_command(_command)
