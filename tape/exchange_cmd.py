"""``tape exchange``: run the local Upbit simulator until interrupted or for a duration."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from datetime import datetime

import click

from simulator import (
    Clock,
    Exchange,
    ExchangeConfig,
    FirehoseConfig,
    ManualClock,
    RealClock,
    ScaledClock,
)
from tape.timeparse import DURATION, TIME


def _clock(speed: float | None, manual: bool, start: datetime | None) -> Clock:
    start_ms = int(start.timestamp() * 1000) if start is not None else None
    if manual:
        if start_ms is None:
            raise click.UsageError("--manual-clock needs --start (the exchange time to start at)")
        return ManualClock(start_ms)
    if speed is not None or start_ms is not None:
        return ScaledClock(speed if speed is not None else 1.0, start_ms)
    return RealClock()


async def _serve(exchange: Exchange, duration_s: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with exchange as ex:
        urls = {"rest_url": ex.rest_url, "ws_url": ex.ws_url, "admin_url": ex.admin_url}
        sys.stdout.write(json.dumps(urls) + "\n")
        sys.stdout.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration_s)
        stats: dict[str, object] = dict(ex.stats)
        stats["frames_sent"] = ex.frames_sent()
    click.echo(f"tape exchange: stopped; {json.dumps(stats)}", err=True)


@click.command("exchange")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=0, show_default=True, help="Port (0 picks a free one).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the market.")
@click.option("--markets", default=None, help="Comma-separated codes (default: ~300 Upbit-like).")
@click.option(
    "--speed", type=float, default=None, help="Exchange time runs this many times faster."
)
@click.option("--manual-clock", is_flag=True, help="Time moves only by POST /_sim/clock.")
@click.option(
    "--start", type=TIME, default=None, help="Exchange start time, ISO-8601 (UTC if no zone)."
)
@click.option("--duration", type=DURATION, default=None, help="Stop after this long, e.g. 10s, 5m.")
@click.option(
    "--activity", type=float, default=1.0, show_default=True, help="Trade-rate multiplier."
)
@click.option("--no-rate-limits", is_flag=True, help="Disable REST and WebSocket rate limits.")
@click.option("--idle-timeout", type=DURATION, default=120.0, help="WebSocket idle timeout [120s].")
@click.option(
    "--firehose",
    type=click.Choice(["trades", "mixed"]),
    default=None,
    help="Firehose mode: pre-encoded frames instead of the market. trades: trade messages "
    "only; mixed: half trades, a quarter tickers, a quarter 30-unit orderbooks.",
)
@click.option(
    "--firehose-frames",
    type=click.IntRange(min=0),
    default=1_000_000,
    show_default=True,
    help="Frames per connection in the mix, budgeted per channel: a connection gets, of each "
    "channel it subscribes to, that channel's share (mixed: trade 1/2, ticker 1/4, orderbook "
    "1/4), so one socket per data kind or one for all gets this many in all. Counts: GET "
    "/_sim/stats (firehose) and /_sim/connections.",
)
@click.option(
    "--firehose-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Pace the firehose at this many frames a second (real time), shared among the "
    "channels by the mix, in bursts at most a millisecond apart; frames carry the time they "
    "were made. Default: as fast as the socket takes them.",
)
def exchange(
    host: str,
    port: int,
    seed: int,
    markets: str | None,
    speed: float | None,
    manual_clock: bool,
    start: datetime | None,
    duration: float | None,
    activity: float,
    no_rate_limits: bool,
    idle_timeout: float,
    firehose: str | None,
    firehose_frames: int,
    firehose_rate: float | None,
) -> None:
    """Run the local, protocol-faithful Upbit exchange (REST, WebSocket, /_sim admin).

    The first line on stdout is a JSON object with rest_url, ws_url and admin_url.
    """
    if firehose_rate is not None and firehose is None:
        raise click.UsageError("--firehose-rate paces the firehose: add --firehose trades|mixed")
    codes = [c.strip() for c in markets.split(",") if c.strip()] if markets else None
    limits = {} if not no_rate_limits else {
        "rest_limit_per_s": None,
        "ws_connect_limit_per_s": None,
        "ws_message_limit_per_s": None,
        "ws_message_limit_per_min": None,
    }  # fmt: skip
    try:
        config = ExchangeConfig(
            activity_scale=activity,
            idle_timeout_s=idle_timeout,
            firehose=FirehoseConfig(
                mix=firehose,  # type: ignore[arg-type]
                frames=firehose_frames,
                rate=firehose_rate,
            )
            if firehose
            else None,
            **limits,  # type: ignore[arg-type]
        )
        ex = Exchange(
            seed=seed,
            markets=codes,
            port=port,
            host=host,
            clock=_clock(speed, manual_clock, start),
            config=config,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    asyncio.run(_serve(ex, duration))
