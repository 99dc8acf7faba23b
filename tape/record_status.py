"""The live status of ``tape record``: a rich line on a terminal, plain log lines otherwise."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Protocol

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from recorder.capture import RecorderStatistics
from tape.ls_cmd import human_size

_STREAMS = ("ticker", "trade", "orderbook", "candle")


class _Rates:
    # Messages per second per channel, from the change of the accepted counts.
    def __init__(self) -> None:
        self._last: tuple[float, dict[str, int]] | None = None

    def update(self, accepted: dict[str, int]) -> dict[str, float]:
        now = time.monotonic()
        previous, self._last = self._last, (now, dict(accepted))
        if previous is None or now <= previous[0]:
            return dict.fromkeys(accepted, 0.0)
        elapsed = now - previous[0]
        return {k: (v - previous[1].get(k, 0)) / elapsed for k, v in accepted.items()}


def render(stats: RecorderStatistics, rates: dict[str, float]) -> str:
    """Return one status line."""
    parts = []
    for channel in _STREAMS:
        if channel not in stats.last_record_age_s:
            continue
        age = stats.last_record_age_s[channel]
        age_text = "-" if age is None else f"{age:.1f}s"
        parts.append(f"{channel} {rates.get(channel, 0.0):.0f}/s (last {age_text})")
    return (
        " | ".join(parts)
        + f" | reconnects {stats.reconnects} | gaps open {stats.open_gaps}"
        + f" lost {stats.unrepaired_gaps} | written {human_size(stats.bytes_written)}"
        + f" | pending {stats.sink.pending_records}"
    )


class StatusView(Protocol):
    """Where ``tape record`` shows its status; ``update`` is called every ``interval_s``."""

    interval_s: float

    def update(self, stats: RecorderStatistics) -> None: ...

    def __enter__(self) -> StatusView: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class PlainStatus:
    """A log line on stderr every ``interval_s`` seconds."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._rates = _Rates()

    def update(self, stats: RecorderStatistics) -> None:
        line = render(stats, self._rates.update(stats.accepted))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        click.echo(f"{stamp} tape record: {line}", err=True)

    def __enter__(self) -> PlainStatus:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class RichStatus:
    """A status line redrawn in place on the terminal, once a second."""

    interval_s = 1.0

    def __init__(self) -> None:
        self._rates = _Rates()
        self._live = Live(Text("starting..."), console=Console(stderr=True), auto_refresh=False)

    def update(self, stats: RecorderStatistics) -> None:
        line = render(stats, self._rates.update(stats.accepted))
        self._live.update(Text(line), refresh=True)

    def __enter__(self) -> RichStatus:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()
