"""``tape record``: keep a backbone running and write everything it yields to Parquet.

Settings come from, in increasing priority: the defaults shown by ``--help``, a TOML file
given with ``--config`` whose keys are the long flag names (``flush-interval = "250ms"``,
``symbols = ["KRW-BTC", "KRW-ETH"]``, dashes or underscores), and the command line.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from backbone.client import MarketDataBackbone
from backbone.config import UPBIT_REST_URL, UPBIT_WS_URL
from backbone.errors import BackboneError
from recorder.capture import Recorder, RecorderStatistics
from recorder.config import CHANNELS, RecorderConfig, StorageConfig
from recorder.errors import RecorderError
from recorder.metrics import MetricsServer
from recorder.parts import COMPRESSIONS
from recorder.raw import RawTap
from recorder.rows import AnyRecord, RestSnapshot, dataset_of, symbol_of
from tape.record_status import PlainStatus, RichStatus, StatusView
from tape.timeparse import DURATION

_log = logging.getLogger("tape.record")


def _split(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    return tuple(item.strip() for item in items if item.strip())


def _apply_config_file(ctx: click.Context, path: Path | None) -> None:
    # Fill every parameter not given on the command line from the TOML file.
    if path is None:
        return
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="--config") from exc
    params = {p.name: p for p in ctx.command.params if p.name and p.name != "config"}
    for key, value in values.items():
        name = key.replace("-", "_")
        param = params.get(name)
        if param is None:
            valid = ", ".join(sorted(n.replace("_", "-") for n in params))
            raise click.BadParameter(
                f"unknown key {key!r} in {path}: use the long flag names ({valid})",
                param_hint="--config",
            )
        if ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            if isinstance(value, list):
                value = ",".join(str(v) for v in value)
            ctx.params[name] = param.type_cast_value(ctx, value)


@click.command("record")
@click.option("--symbols", help="Markets to record, comma-separated (e.g. KRW-BTC,KRW-ETH).")
@click.option(
    "--quote",
    help="Record every market of this quote currency, refreshed periodically "
    "(default: KRW when no --symbols).",
)
@click.option(
    "--channels",
    default=",".join(CHANNELS),
    show_default=True,
    help="Channels to record, comma-separated.",
)
@click.option("--candle-timeframe", default="1m", show_default=True, help="Candle timeframe.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Recording directory.",
)
@click.option("--rest-url", default=UPBIT_REST_URL, show_default=True, help="Upbit REST base.")
@click.option("--ws-url", default=UPBIT_WS_URL, show_default=True, help="Upbit WebSocket URL.")
@click.option("--sim", is_flag=True, help="Run the embedded simulator and record it.")
@click.option("--sim-seed", type=int, default=0, show_default=True, help="Simulator seed.")
@click.option(
    "--sim-speed", type=float, default=1.0, show_default=True, help="Simulator time speed."
)
@click.option("--duration", type=DURATION, default=None, help="Stop after e.g. 30s (else Ctrl-C).")
@click.option(
    "--flush-interval",
    type=DURATION,
    default=0.25,
    help="Journal flush interval, e.g. 250ms [250ms].",
)
@click.option(
    "--rotation-interval", type=DURATION, default=300.0, help="Parquet rotation, e.g. 5m [5m]."
)
@click.option(
    "--rotation-size-mb",
    type=click.FloatRange(min=0.01),
    default=32.0,
    show_default=True,
    help="Rotate earlier when a journal segment reaches this size.",
)
@click.option(
    "--compression",
    type=click.Choice(COMPRESSIONS),
    default="zstd",
    show_default=True,
    help="Parquet compression.",
)
@click.option(
    "--no-compact",
    is_flag=True,
    help="Leave finished days as rotated (by default each partition of a UTC day is merged "
    "into one part after midnight, rows unchanged).",
)
@click.option("--raw", is_flag=True, help="Also keep every raw frame and REST body.")
@click.option(
    "--rest-snapshot-interval",
    type=DURATION,
    default=10.0,
    help="Reference REST snapshots of every symbol this often (0 turns them off) [10s].",
)
@click.option(
    "--rest-rate",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Reference REST requests per second per rate-limit group: a share of Upbit's 10 "
    "kept for the snapshots (the backbone gets the rest).",
)
@click.option(
    "--market-refresh-interval",
    type=DURATION,
    default=300.0,
    help="How often --quote re-reads the market list [5m].",
)
@click.option("--no-backfill", is_flag=True, help="Do not backfill trades missed while down.")
@click.option("--metrics-port", type=int, default=None, help="Serve /metrics and /healthz here.")
@click.option(
    "--status-interval",
    type=DURATION,
    default=10.0,
    help="Status log line interval when not on a terminal [10s].",
)
@click.option(
    "--accepted-log",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    hidden=True,
    help="Write '<seq> <dataset> <symbol> <received_ns>' per accepted record (for tests).",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    is_eager=False,
    help="TOML file whose keys are these long flag names.",
)
@click.pass_context
def record(ctx: click.Context, /, **_: Any) -> None:
    """Record Upbit market data into hive-partitioned Parquet until stopped.

    Every ticker, trade, orderbook and candle the streams deliver is journaled within the
    flush interval and written to Parquet at each rotation; SIGINT or SIGTERM flush and
    close cleanly, and a crash is recovered on the next start.
    """
    _apply_config_file(ctx, ctx.params.get("config"))
    p = ctx.params
    symbols = _split(p["symbols"])
    quote = p["quote"] or (None if symbols else "KRW")
    try:
        config = RecorderConfig(
            symbols=symbols,
            quote=quote if not symbols else None,
            channels=_split(p["channels"]),
            candle_timeframe=p["candle_timeframe"],
            market_refresh_interval_s=p["market_refresh_interval"],
            raw=p["raw"],
            rest_snapshot_interval_s=p["rest_snapshot_interval"],
            rest_requests_per_s=p["rest_rate"],
            backfill=not p["no_backfill"],
            storage=StorageConfig(
                flush_interval_ms=max(1, round(p["flush_interval"] * 1000)),
                rotation_interval_s=p["rotation_interval"],
                rotation_max_bytes=int(p["rotation_size_mb"] * 1024 * 1024),
                compression=p["compression"],
                compact_days=not p["no_compact"],
            ),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if symbols and p["quote"]:
        raise click.UsageError("give --symbols or --quote, not both")
    out: Path = p["out"].resolve()
    try:
        asyncio.run(
            _run(
                config,
                out,
                rest_url=p["rest_url"],
                ws_url=p["ws_url"],
                sim=p["sim"],
                sim_seed=p["sim_seed"],
                sim_speed=p["sim_speed"],
                duration_s=p["duration"],
                metrics_port=p["metrics_port"],
                status_interval_s=p["status_interval"],
                accepted_log=p["accepted_log"],
            )
        )
    except (RecorderError, BackboneError) as exc:
        raise click.ClickException(str(exc)) from exc


@contextlib.asynccontextmanager
async def _exchange(sim: bool, seed: int, speed: float) -> AsyncIterator[tuple[str, str] | None]:
    # The simulator runs in this process on a thread of its own with its own event loop, so
    # its work (it computes market history on demand) never stalls the recorder's loop.
    if not sim:
        yield None
        return
    from simulator import Exchange, RealClock, ScaledClock

    ready: concurrent.futures.Future[tuple[str, str]] = concurrent.futures.Future()
    stopped = threading.Event()
    stop_holder: list[Callable[[], object]] = []

    async def serve() -> None:
        clock = RealClock() if speed == 1.0 else ScaledClock(speed)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        stop_holder.append(lambda: loop.call_soon_threadsafe(stop.set))
        async with Exchange(seed=seed, clock=clock) as ex:
            ready.set_result((ex.rest_url, ex.ws_url))
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
        finally:
            stopped.set()

    thread = threading.Thread(target=run, name="tape-simulator", daemon=True)
    thread.start()
    urls = await asyncio.wrap_future(ready)
    click.echo(f"tape record: simulator running at {urls[0]}", err=True)
    try:
        yield urls
    finally:
        for stop_exchange in stop_holder:
            stop_exchange()
        await asyncio.to_thread(stopped.wait, 30)


def _echo_to(path: Path | None) -> tuple[Callable[[AnyRecord, int], None] | None, int | None]:
    if path is None:
        return None, None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def echo(record: AnyRecord, seq: int) -> None:
        inner = record.record if isinstance(record, RestSnapshot) else record
        line = f"{seq} {dataset_of(record)} {symbol_of(record) or '-'} {inner.received_ns}\n"
        os.write(fd, line.encode())

    return echo, fd


async def _run(
    config: RecorderConfig,
    out: Path,
    *,
    rest_url: str,
    ws_url: str,
    sim: bool,
    sim_seed: int,
    sim_speed: float,
    duration_s: float | None,
    metrics_port: int | None,
    status_interval_s: float,
    accepted_log: Path | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    tap = RawTap() if config.raw else None
    on_record, echo_fd = _echo_to(accepted_log)
    started = time.monotonic()
    try:
        async with contextlib.AsyncExitStack() as stack:
            urls = await stack.enter_async_context(_exchange(sim, sim_seed, sim_speed))
            if urls is not None:
                rest_url, ws_url = urls
            backbone = await stack.enter_async_context(
                MarketDataBackbone(
                    rest_url,
                    ws_url,
                    config=config.backbone_config(),
                    raw_sink=tap,
                )
            )
            recorder = await stack.enter_async_context(
                Recorder(backbone, out, config=config, on_record=on_record, raw_tap=tap)
            )
            click.echo(
                f"tape record: recording {len(recorder.symbols)} markets "
                f"({', '.join(config.channels)}) into {out} (session {recorder.session_id})",
                err=True,
            )
            if metrics_port is not None:
                server = await stack.enter_async_context(
                    MetricsServer(recorder.statistics, port=metrics_port)
                )
                click.echo(
                    f"tape record: metrics on http://127.0.0.1:{server.port}/metrics", err=True
                )
            view: StatusView = (
                RichStatus() if sys.stderr.isatty() else PlainStatus(status_interval_s)
            )
            with view:
                await _watch(recorder, view, stop, duration_s)
        final: RecorderStatistics = recorder.statistics()
    finally:
        if echo_fd is not None:
            os.close(echo_fd)
    total = sum(final.accepted.values())
    per = ", ".join(f"{k} {v}" for k, v in sorted(final.accepted.items()))
    click.echo(
        f"tape record: stopped after {time.monotonic() - started:.1f} s; {total} records "
        f"({per}) are in {out}\n"
        f"tape record: list them with `tape ls {out}`; read them with DuckDB: "
        f"read_parquet('{out}/trade/**/*.parquet', hive_partitioning=true)",
        err=True,
    )


async def _watch(
    recorder: Recorder, view: StatusView, stop: asyncio.Event, duration_s: float | None
) -> None:
    deadline = None if duration_s is None else time.monotonic() + duration_s
    while not stop.is_set():
        timeout = view.interval_s
        if deadline is not None:
            timeout = min(timeout, max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=timeout)
        view.update(recorder.statistics())
        if deadline is not None and time.monotonic() >= deadline:
            return
