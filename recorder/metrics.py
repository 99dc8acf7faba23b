"""Prometheus ``/metrics`` and ``/healthz`` for a running recorder (aiohttp, 127.0.0.1).

The figures are read from :meth:`Recorder.statistics` at each scrape, so nothing is counted
twice. ``/healthz`` answers 200 while the journal is being flushed on time and 503 when the
last flush is older than ``stale_after_s`` (the writer is stuck or the disk refuses writes),
with the details as JSON either way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from recorder.capture import RecorderStatistics

__all__ = ["MetricsServer"]

_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Collector(Collector):
    def __init__(self, statistics: Callable[[], RecorderStatistics]) -> None:
        self._statistics = statistics

    def collect(self) -> Iterator[Metric]:
        stats = self._statistics()
        accepted = CounterMetricFamily(
            "tape_records_accepted", "Records accepted per dataset", labels=["dataset"]
        )
        for dataset, count in sorted(stats.accepted.items()):
            accepted.add_metric([dataset], count)
        yield accepted
        age = GaugeMetricFamily(
            "tape_last_record_age_seconds",
            "Seconds since each channel last delivered a record",
            labels=["channel"],
        )
        for channel, seconds in sorted(stats.last_record_age_s.items()):
            if seconds is not None:
                age.add_metric([channel], seconds)
        yield age
        for name, help_, value in (
            ("tape_reconnects", "WebSocket reconnects of the backbone", stats.reconnects),
            ("tape_duplicates_dropped", "Trades dropped as duplicates", stats.duplicates_dropped),
            ("tape_backfilled_trades", "Trades backfilled after downtime", stats.backfilled_trades),
            ("tape_rest_snapshots", "Records from reference REST snapshots", stats.rest_snapshots),
            ("tape_rest_errors", "Failed reference REST requests", stats.rest_errors),
            ("tape_journal_bytes", "Bytes appended to the journal", stats.sink.journal_bytes),
            ("tape_parquet_bytes", "Bytes of Parquet parts written", stats.sink.parquet_bytes),
            ("tape_parts_written", "Parquet parts written", stats.sink.parts_written),
            (
                "tape_partitions_compacted",
                "Partitions of finished days merged into one part",
                stats.sink.partitions_compacted,
            ),
            ("tape_put_waits", "Times capture waited for the journal", stats.sink.put_waits),
        ):
            yield CounterMetricFamily(name, help_, value=value)
        for name, help_, value in (
            ("tape_open_gaps", "Gaps detected and not yet closed", stats.open_gaps),
            ("tape_unrepaired_gaps", "Gaps reported as lost this session", stats.unrepaired_gaps),
            ("tape_pending_records", "Records not yet journaled", stats.sink.pending_records),
            ("tape_symbols", "Symbols being recorded", stats.symbols),
        ):
            yield GaugeMetricFamily(name, help_, value=value)


class MetricsServer:
    """Serve ``/metrics`` and ``/healthz`` on ``host:port`` (0 picks a free port; read
    :attr:`port` after entering); use as an async context manager."""

    def __init__(
        self,
        statistics: Callable[[], RecorderStatistics],
        *,
        port: int,
        host: str = "127.0.0.1",
        stale_after_s: float = 5.0,
    ) -> None:
        self._statistics = statistics
        self._host = host
        self.port = port
        self._stale_after_s = stale_after_s
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(statistics))
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> MetricsServer:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self.port)
        await site.start()
        server: Any = site._server
        if server is not None and self.port == 0:
            self.port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": _CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        stats = self._statistics()
        flush_age_s = stats.sink.last_flush_age_s
        healthy = flush_age_s is not None and flush_age_s < self._stale_after_s
        body = {
            "status": "ok" if healthy else "stale",
            "session_id": stats.session_id,
            "last_flush_age_s": flush_age_s,
            "pending_records": stats.sink.pending_records,
            "last_record_age_s": stats.last_record_age_s,
            "open_gaps": stats.open_gaps,
        }
        return web.Response(
            status=200 if healthy else 503,
            text=json.dumps(body),
            content_type="application/json",
        )
