"""``tape demo``: the whole pipeline in one command, against the embedded exchange.

Starts the local simulator, records it for a while with a few faults injected, replays the
recording and prints its digest, runs the checks and writes the HTML report, saying at each
step what happened and where the files are. Needs no network but the loopback.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from analytics import MeasureConfig, Recording, Selection, run_checks
from analytics.report import render_report
from backbone.client import MarketDataBackbone
from recorder.capture import Recorder
from recorder.config import RecorderConfig, StorageConfig
from recorder.layout import MANIFEST_FILE
from recorder.rows import AnyRecord, dataset_of
from replay import replay_digest
from simulator import Exchange, ExchangeConfig, ScaledClock
from tape.check_cmd import parse_symbols, print_summary
from tape.timeparse import DURATION

DEFAULT_MARKETS = "KRW-BTC,KRW-ETH,KRW-XRP"


@dataclass(frozen=True, slots=True)
class DemoFault:
    """A fault the demo injects, at a fraction of the recording's duration."""

    at_fraction: float
    kind: str
    params: dict[str, Any]
    says: str


def demo_faults(speed: float) -> tuple[DemoFault, ...]:
    """Return the faults of the demo (windows in exchange time, sized for ``speed``)."""
    return (
        DemoFault(0.2, "disconnect", {}, "close every WebSocket connection"),
        DemoFault(
            0.4,
            "drop_ws",
            {"channel": "trade", "fraction": 0.5, "seconds": 2.0 * speed},
            "drop half the WebSocket trades for 2 s",
        ),
        DemoFault(
            0.6,
            "delay_ws",
            {"ms": int(1500 * speed), "seconds": 1.0 * speed},
            "hold WebSocket messages back 1.5 s for 1 s",
        ),
        DemoFault(
            0.8,
            "clock_skew",
            {"ms": int(1000 * speed), "seconds": 1.0 * speed},
            "run the exchange's clock 1 s ahead for 1 s",
        ),
    )


def _say(text: str) -> None:
    click.echo(text)


def _step(number: int, text: str) -> None:
    click.echo("")
    click.secho(f"[{number}/5] {text}", bold=True)


def _effects(fault: dict[str, Any]) -> str:
    effects = dict(fault["effects"])
    effects.pop("dropped_trades", None)
    effects.pop("connection_ids", None)

    def total(node: Any) -> int:
        if isinstance(node, dict):
            return sum(total(value) for value in node.values())
        return int(node) if isinstance(node, int) else 0

    parts = [f"{name.replace('_', ' ')} {total(value)}" for name, value in effects.items()]
    return ", ".join(parts) or "nothing to do"


async def _record(
    root: Path, markets: tuple[str, ...], duration_s: float, speed: float, seed: int
) -> list[dict[str, Any]]:
    clock = ScaledClock(speed)

    def clock_ns() -> int:
        return int(clock.now_ms()) * 1_000_000

    counts: Counter[str] = Counter()
    streaming: set[tuple[str, str]] = set()
    wanted = {(channel, market) for channel in ("ticker", "orderbook") for market in markets}
    flowing = asyncio.Event()

    def on_record(record: AnyRecord, seq: int) -> None:
        dataset = dataset_of(record)
        counts[dataset] += 1
        streaming.add((dataset, getattr(record, "symbol", "")))
        if wanted <= streaming:
            flowing.set()

    exchange = Exchange(
        seed=seed, markets=list(markets), clock=clock, config=ExchangeConfig(activity_scale=4)
    )
    config = RecorderConfig(
        symbols=markets,
        rest_snapshot_interval_s=1.0,
        rest_requests_per_s=5.0,
        backfill=False,
        storage=StorageConfig(flush_interval_ms=100),
    )
    async with exchange as ex:
        _say(f"      exchange at {ex.rest_url} and {ex.ws_url}, clock {speed:g}x real time")
        _step(2, f"Recording {', '.join(markets)} for {duration_s:g} s into {root}")
        async with (
            MarketDataBackbone(
                ex.rest_url,
                ex.ws_url,
                config=config.backbone_config(),
                clock_ns=clock_ns,
            ) as backbone,
            Recorder(backbone, root, config=config, on_record=on_record, clock_ns=clock_ns),
        ):
            waited = time.monotonic()
            try:
                await asyncio.wait_for(flowing.wait(), timeout=60)
            except TimeoutError:
                raise click.ClickException(
                    "the streams did not start within 60 s: is the machine overloaded?"
                ) from None
            _say(f"      streams flowing after {time.monotonic() - waited:.1f} s")
            start = time.monotonic()
            for fault in demo_faults(speed):
                await asyncio.sleep(
                    max(0.0, start + fault.at_fraction * duration_s - time.monotonic())
                )
                ex.faults.apply(fault.kind, **fault.params)
                _say(
                    f"      t+{time.monotonic() - start:4.1f} s  fault {fault.kind}: {fault.says}"
                    f"  ({sum(counts.values()):,} records so far)"
                )
            await asyncio.sleep(max(0.0, start + duration_s - time.monotonic()))
            log: list[dict[str, Any]] = ex.faults.list()
        kept = ", ".join(f"{name} {count:,}" for name, count in sorted(counts.items()))
        _say(f"      recorded {sum(counts.values()):,} records: {kept}")
        for done in log:
            _say(f"      the exchange's log: {done['kind']} did: {_effects(done)}")
    return log


def _prepare(out: Path) -> Path:
    root = out / "recording"
    if root.exists():
        if not (root / MANIFEST_FILE).is_file():
            raise click.ClickException(
                f"{root} exists and is not a tape recording: choose another --out"
            )
        shutil.rmtree(root)
        _say(f"      replaced the previous demo recording in {root}")
    out.mkdir(parents=True, exist_ok=True)
    return root


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("tape-demo"),
    show_default=True,
    help="Folder for the recording, the checks and the report.",
)
@click.option(
    "--duration", type=DURATION, default=20.0, show_default="20s", help="How long to record."
)
@click.option("--markets", default=DEFAULT_MARKETS, show_default=True, help="Markets to record.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0.1, max=50),
    default=2.0,
    show_default=True,
    help="The exchange's clock runs this many times faster than real time.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the market.")
def demo(out: Path, duration: float, markets: str, speed: float, seed: int) -> None:
    """Run the whole pipeline against the embedded exchange: record, replay, check, report.

    No network is needed (everything runs on 127.0.0.1). The recording, checks.json and
    report.html land in OUT.
    """
    symbols = parse_symbols(markets)
    if not symbols:
        raise click.BadParameter("name at least one market, e.g. KRW-BTC", param_hint="--markets")
    if duration < 2:
        raise click.BadParameter("record for at least 2s", param_hint="--duration")
    _step(1, "Starting the embedded exchange (a local, protocol-faithful Upbit)")
    root = _prepare(out)
    asyncio.run(_record(root, symbols, duration, speed, seed))

    _step(3, "Replaying the recording")
    started = time.monotonic()
    digest = replay_digest(root)
    _say(f"      digest of everything replayed, in replay order: {digest}")
    _say(
        f"      ({time.monotonic() - started:.1f} s; replaying again gives the same digest: "
        '`python -c "from replay import replay_digest; '
        f"print(replay_digest('{root}'))\"`)"
    )

    _step(4, "Checking the feed's quality")
    # thresholds in exchange time: a hiccup of the machine is stretched by the clock's speed
    config = MeasureConfig(late_floor_ms=1000 * speed, silence_floor_ms=2000 * speed)
    with Recording(root, Selection(), config) as recording:
        checks = run_checks(recording)
        page = render_report(recording, checks, title="tape demo: feed-quality report")
    print_summary(checks, root, Selection())
    checks_path = out / "checks.json"
    checks_path.write_text(json.dumps(checks, indent=2) + "\n", encoding="utf-8")

    _step(5, "Writing the report")
    report_path = out / "report.html"
    report_path.write_text(page, encoding="utf-8")
    _say(f"      report:    {report_path.resolve()}  (one file, opens offline in any browser)")
    _say(
        f"      checks:    {checks_path.resolve()}  (as `tape check {root} --json "
        f"--late-after {speed:g}s --silent-after {2 * speed:g}s`: the demo's clock runs "
        f"{speed:g}x)"
    )
    _say(f"      recording: {root.resolve()}  (hive-partitioned Parquet; try `tape ls {root}`)")
    _say("")
    _say(f"Next: `tape check {root} --fail-on 'gaps.trades_missing>0'`, or open the report.")
