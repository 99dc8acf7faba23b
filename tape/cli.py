"""The ``tape`` command line: the one place that reads flags, files and the environment.

Each command lives in its own module and is registered on the ``main`` group here.
"""

from __future__ import annotations

import logging

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="upbit-tape")
def main(verbose: int) -> None:
    """Record, replay and check the Upbit exchange's public market data."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

from tape.exchange_cmd import exchange  # noqa: E402, I001
main.add_command(exchange)

from tape.ls_cmd import ls  # noqa: E402, I001
main.add_command(ls)

from tape.compact_cmd import compact  # noqa: E402, I001
main.add_command(compact)

from tape.check_cmd import check  # noqa: E402, I001
main.add_command(check)

from tape.report_cmd import report  # noqa: E402, I001
main.add_command(report)

from tape.record_cmd import record  # noqa: E402, I001
main.add_command(record)

from tape.replay_cmd import replay  # noqa: E402, I001
main.add_command(replay)

from tape.renormalize_cmd import renormalize  # noqa: E402, I001
main.add_command(renormalize)

from tape.demo_cmd import demo  # noqa: E402, I001
main.add_command(demo)
