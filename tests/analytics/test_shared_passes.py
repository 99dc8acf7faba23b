"""The measures computed from shared passes equal their direct definitions.

``stream_order`` sorts each dataset once for the silences, the order check and the duplicate
screen; ``latency_groups`` computes both latency groupings in one pass; the excursions skip
the scan when the channel's extremes show no late or negative record. Here random
recordings (records delivered out of exchange order, REST-sourced stream records, duplicate
trade keys, receive-time ties, silences, two sessions) are checked against straightforward
SQL for each measure, so the shortcuts cannot change a result.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from analytics_synth import MS, T0_NS, S, Synth, at, dec

from analytics import Recording, run_checks

SYMBOLS = ("KRW-BTC", "KRW-ETH", "KRW-XRP")

OUT_OF_ORDER = """
SELECT dataset, session_id, symbol, seq, received_ns, exchange_time, previous_time
FROM (
    SELECT 'ticker' AS dataset, session_id, symbol, seq, received_ns,
        "timestamp" AS exchange_time,
        CASE WHEN lag(session_id) OVER w = session_id THEN lag("timestamp") OVER w END
            AS previous_time
    FROM ticker WHERE source = 'websocket'
    WINDOW w AS (PARTITION BY symbol ORDER BY received_ns, seq)
    UNION ALL
    SELECT 'trade', session_id, symbol, seq, received_ns, trade_timestamp,
        CASE WHEN lag(session_id) OVER w = session_id THEN lag(trade_timestamp) OVER w END
    FROM trade WHERE source = 'websocket'
    WINDOW w AS (PARTITION BY symbol ORDER BY received_ns, seq)
    UNION ALL
    SELECT 'orderbook', session_id, symbol, seq, received_ns, "timestamp",
        CASE WHEN lag(session_id) OVER w = session_id THEN lag("timestamp") OVER w END
    FROM orderbook WHERE source = 'websocket'
    WINDOW w AS (PARTITION BY symbol ORDER BY received_ns, seq)
)
WHERE exchange_time < previous_time
"""

DUPLICATES = """
SELECT symbol, sequential_id, count(*) AS copies,
    count(DISTINCT (trade_price, trade_volume, trade_side, trade_timestamp)) > 1 AS conflicting
FROM trade GROUP BY symbol, sequential_id HAVING count(*) > 1
"""

ARRIVALS = """
SELECT dataset, session_id, symbol, received_ns,
    CASE WHEN lag(session_id) OVER w = session_id THEN received_ns - lag(received_ns) OVER w END
        AS gap_ns
FROM (
    SELECT 'ticker' AS dataset, session_id, symbol, received_ns, seq FROM ticker
    UNION ALL SELECT 'trade', session_id, symbol, received_ns, seq FROM trade
    UNION ALL SELECT 'orderbook', session_id, symbol, received_ns, seq FROM orderbook
    UNION ALL SELECT 'candle', session_id, symbol, received_ns, seq FROM candle
)
WINDOW w AS (PARTITION BY dataset, symbol ORDER BY received_ns)
"""

SILENCES = f"""
SELECT a.dataset, a.session_id, a.symbol, a.received_ns - a.gap_ns AS start_ns,
    a.received_ns AS end_ns, a.gap_ns / 1e6 AS silent_ms, r.usual_ms, r.threshold_ms
FROM ({ARRIVALS}) AS a
JOIN (
    SELECT dataset, symbol,
        quantile_cont(gap_ns, getvariable('silence_quantile')) / 1e6 AS usual_ms,
        greatest(getvariable('silence_floor_ms'), getvariable('silence_factor') * usual_ms)
            AS threshold_ms
    FROM ({ARRIVALS}) GROUP BY dataset, symbol
) AS r USING (dataset, symbol)
WHERE a.gap_ns / 1e6 > r.threshold_ms
"""

BY_CHANNEL = """
SELECT channel, source, count(*) AS rows,
    quantile_disc(latency_ms, 0.5) AS p50_ms, quantile_disc(latency_ms, 0.9) AS p90_ms,
    quantile_disc(latency_ms, 0.99) AS p99_ms, max(latency_ms) AS max_ms,
    min(latency_ms) AS min_ms, count(*) FILTER (WHERE latency_ms < 0) AS negative,
    quantile_cont(latency_ms, 0.5) AS median_ms
FROM stream_latency GROUP BY channel, source
"""

BY_SYMBOL = """
SELECT channel, source, symbol, count(*) AS rows,
    quantile_disc(latency_ms, 0.5) AS p50_ms, quantile_disc(latency_ms, 0.9) AS p90_ms,
    quantile_disc(latency_ms, 0.99) AS p99_ms, max(latency_ms) AS max_ms,
    min(latency_ms) AS min_ms, count(*) FILTER (WHERE latency_ms < 0) AS negative
FROM stream_latency GROUP BY channel, source, symbol
"""

LATE = """
SELECT l.channel, l.symbol, l.seq, l.latency_ms
FROM stream_latency AS l JOIN late_thresholds AS t USING (channel)
WHERE l.source = 'websocket'
    AND (l.latency_ms < 0 OR (l.latency_ms > t.threshold_ms AND l.channel <> 'candle'))
"""


def _session(
    root: Path, session_id: str, start_ns: int, rng: random.Random, next_ids: dict[str, int]
) -> None:
    synth = Synth(root, session_id=session_id)
    for symbol in SYMBOLS:
        now = start_ns
        next_id = next_ids.get(symbol, 1)
        for _ in range(rng.randint(20, 60)):
            now += rng.choice((0, 1, 5, 20, 100)) * MS  # 0: a receive-time tie
            if rng.random() < 0.05:
                now += rng.randint(3, 12) * S  # a silence (or not, beside a slow rhythm)
            latency = rng.choice((3, 5, 8, 40, 40, 1500, -2)) * MS
            exchange_ns = now - latency - rng.choice((0, 0, 0, 300)) * MS  # some run backwards
            source = "rest" if rng.random() < 0.15 else "websocket"
            if symbol == SYMBOLS[-1] and next_id > 1 and rng.random() < 0.1:
                trade_id = next_id - 1  # delivered again at once: ids never fall here
            elif symbol != SYMBOLS[-1] and next_id > 1 and rng.random() < 0.1:
                trade_id = rng.randint(1, next_id - 1)  # late, maybe a copy
            else:
                trade_id, next_id = next_id, next_id + rng.choice((1, 1, 2))
            synth.add(
                "trade",
                received_ns=now,
                symbol=symbol,
                source=source,
                sequential_id=trade_id,
                trade_timestamp=at(exchange_ns),
                trade_volume=dec(rng.choice((1, 1, 1, 2))),
            )
            dataset = rng.choice(("ticker", "orderbook", "candle", None))
            if dataset is not None:
                synth.add(
                    dataset,
                    received_ns=now + rng.choice((0, 1)) * MS,
                    symbol=symbol,
                    source=source,
                    timestamp=at(exchange_ns),
                )
        next_ids[symbol] = next_id
    synth.write(by_receive_time=rng.random() < 0.5)


def _rows(recording: Recording, sql: str) -> list[tuple[Any, ...]]:
    return sorted(recording.connection.execute(sql).fetchall(), key=repr)


def _view(recording: Recording, name: str, columns: str) -> list[tuple[Any, ...]]:
    return _rows(recording, f"SELECT {columns} FROM {name}")


@pytest.mark.parametrize("seed", range(4))
def test_shared_passes_equal_the_direct_definitions(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    next_ids: dict[str, int] = {}
    _session(tmp_path, "s1", T0_NS, rng, next_ids)
    _session(tmp_path, "s2", T0_NS + 3600 * S, rng, next_ids)
    with Recording(tmp_path) as recording:
        expected = {
            "out_of_order": _rows(recording, OUT_OF_ORDER),
            "duplicates": _rows(recording, DUPLICATES),
            "silences": _rows(recording, SILENCES),
            "by_channel": _rows(recording, BY_CHANNEL),
            "by_symbol": _rows(recording, BY_SYMBOL),
        }
        found = {
            "out_of_order": _view(recording, "out_of_order", "*"),
            "duplicates": _view(recording, "trade_duplicates", "*"),
            "silences": _view(recording, "silences", "*"),
            "by_channel": _view(recording, "latency_by_channel", "*"),
            "by_symbol": _view(recording, "latency_by_symbol", "*"),
        }
        late = _rows(recording, LATE)
        excursions = recording.rows("latency_excursions")
        checks = run_checks(recording)
    assert found == expected
    # every late or negative record belongs to one excursion of its channel and symbol
    per_key: dict[tuple[str, str, str], int] = {}
    for channel, symbol, _, latency_ms in late:
        key = (channel, symbol, "negative" if latency_ms < 0 else "late")
        per_key[key] = per_key.get(key, 0) + 1
    counted: dict[tuple[str, str, str], int] = {}
    for row in excursions:
        key = (row["channel"], row["symbol"], row["kind"])
        counted[key] = counted.get(key, 0) + row["rows"]
    assert counted == per_key
    # the planted defects are there to be found: the comparison is not vacuous
    assert expected["out_of_order"] and expected["duplicates"] and expected["silences"]
    assert SYMBOLS[-1] in {symbol for symbol, *_ in expected["duplicates"]}
    assert {kind for _, _, kind in per_key} == {"late", "negative"}
    assert checks["integrity"]["out_of_order"] == len(expected["out_of_order"])
    assert checks["integrity"]["duplicate_trades"] == sum(
        copies - 1 for _, _, copies, _ in expected["duplicates"]
    )
    assert checks["gaps"]["silences"] == len(expected["silences"])
