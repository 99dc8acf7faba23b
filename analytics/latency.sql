-- Latency: how late each record arrived (local receive time minus exchange time), how long
-- REST requests took, and how much sooner the WebSocket delivered a state than REST did.
-- Quantiles are discrete (each is an observed value). A negative latency means the exchange's
-- clock ran ahead of ours: it is counted and reported, never clipped.

-- name: stream_latency
-- Every stream record's latency in milliseconds, with its channel (dataset) and exchange time
-- (ticker and orderbook: `timestamp`; trade: `trade_timestamp`; candle: `timestamp`, the time
-- of the candle's last trade). WebSocket snapshots (stream_type SNAPSHOT: the state as of its
-- last change, sent on subscribing) are left out: their age is not a delivery delay.
SELECT
    channel, session_id, seq, symbol, source, received_ns, exchange_time,
    (received_ns - epoch_ms(exchange_time) * 1000000) / 1e6 AS latency_ms
FROM (
    SELECT 'ticker' AS channel, session_id, seq, symbol, source, received_ns,
        "timestamp" AS exchange_time, stream_type
    FROM ticker
    UNION ALL
    SELECT 'trade', session_id, seq, symbol, source, received_ns, trade_timestamp, stream_type
    FROM trade
    UNION ALL
    SELECT 'orderbook', session_id, seq, symbol, source, received_ns, "timestamp", stream_type
    FROM orderbook
    UNION ALL
    SELECT 'candle', session_id, seq, symbol, source, received_ns, "timestamp", stream_type
    FROM candle
)
WHERE stream_type IS DISTINCT FROM 'SNAPSHOT';

-- name: latency_groups
-- Per channel and source (every_symbol), and per channel, source and symbol: records, latency
-- quantiles and extremes, negative latencies, and the continuous median. One pass over the
-- records computes both groupings.
SELECT
    channel, source, symbol,
    grouping(symbol) = 1 AS every_symbol,
    count(*) AS rows,
    quantile_disc(latency_ms, [0.5, 0.9, 0.99]) AS q,
    max(latency_ms) AS max_ms,
    min(latency_ms) AS min_ms,
    count(*) FILTER (WHERE latency_ms < 0) AS negative,
    quantile_cont(latency_ms, 0.5) AS median_ms
FROM stream_latency
GROUP BY GROUPING SETS ((channel, source), (channel, source, symbol));

-- name: latency_by_channel
-- Per channel and source: records, latency quantiles and extremes, negative latencies, and
-- the continuous median the late thresholds are drawn from.
SELECT
    channel, source, rows,
    q[1] AS p50_ms, q[2] AS p90_ms, q[3] AS p99_ms,
    max_ms, min_ms, negative, median_ms
FROM latency_groups
WHERE every_symbol;

-- name: latency_by_symbol
-- Per channel, source and symbol: the same figures as latency_by_channel (but the median).
SELECT
    channel, source, symbol, rows,
    q[1] AS p50_ms, q[2] AS p90_ms, q[3] AS p99_ms,
    max_ms, min_ms, negative
FROM latency_groups
WHERE NOT every_symbol;

-- name: latency_by_hour
-- Per channel, source, symbol and hour of exchange time (UTC): the same figures.
SELECT * EXCLUDE (q) FROM (
    SELECT
        channel, source, symbol,
        date_trunc('hour', exchange_time) AS hour,
        count(*) AS rows,
        quantile_disc(latency_ms, [0.5, 0.9, 0.99]) AS q,
        q[1] AS p50_ms, q[2] AS p90_ms, q[3] AS p99_ms,
        max(latency_ms) AS max_ms,
        min(latency_ms) AS min_ms,
        count(*) FILTER (WHERE latency_ms < 0) AS negative
    FROM stream_latency
    GROUP BY channel, source, symbol, hour
);

-- name: late_thresholds
-- Per channel, the latency above which a WebSocket record counts as late:
-- max(late_floor_ms, late_factor * the channel's median latency).
SELECT
    channel,
    greatest(getvariable('late_floor_ms'), getvariable('late_factor') * median_ms) AS threshold_ms
FROM latency_by_channel
WHERE source = 'websocket';

-- name: latency_excursions
-- Episodes of late, or of negative (a clock problem), WebSocket records per session, channel
-- and symbol: such records belong to one episode while each follows the previous one within
-- max(the late threshold, silence_floor_ms), whatever normal records came between. Candles
-- are never late (their exchange time is their last trade's, not when they were sent), but
-- a negative candle latency is a clock problem like any other.
SELECT
    session_id, channel, symbol, kind,
    min(received_ns) AS start_ns,
    max(received_ns) AS end_ns,
    min(exchange_time) AS exchange_start,
    max(exchange_time) AS exchange_end,
    count(*) AS rows,
    max(latency_ms) AS max_ms,
    min(latency_ms) AS min_ms,
    any_value(threshold_ms) AS threshold_ms
FROM (
    SELECT
        *,
        sum(CASE WHEN since_ns IS NULL OR since_ns / 1e6 > merge_ms THEN 1 ELSE 0 END) OVER (
            PARTITION BY session_id, channel, symbol, kind ORDER BY received_ns, seq
        ) AS episode
    FROM (
        SELECT
            *,
            greatest(threshold_ms, getvariable('silence_floor_ms')) AS merge_ms,
            received_ns - lag(received_ns) OVER (
                PARTITION BY session_id, channel, symbol, kind ORDER BY received_ns, seq
            ) AS since_ns
        FROM (
            SELECT
                l.*, t.threshold_ms,
                CASE WHEN l.latency_ms < 0 THEN 'negative' ELSE 'late' END AS kind
            FROM stream_latency AS l
            JOIN (
                -- only the channels whose extremes show such records: none, no scan
                SELECT t.channel, t.threshold_ms
                FROM late_thresholds AS t
                JOIN latency_by_channel AS c ON c.channel = t.channel AND c.source = 'websocket'
                WHERE c.min_ms < 0 OR (c.max_ms > t.threshold_ms AND c.channel <> 'candle')
            ) AS t USING (channel)
            WHERE l.source = 'websocket'
                AND (l.latency_ms < 0 OR (l.latency_ms > t.threshold_ms AND l.channel <> 'candle'))
        )
    )
)
GROUP BY session_id, channel, symbol, kind, episode;

-- name: rest_requests
-- One row per REST reference request: its channel, round trip and the rows it returned.
SELECT
    channel, session_id, request_start_ns, request_end_ns,
    (request_end_ns - request_start_ns) / 1e6 AS round_trip_ms,
    rows
FROM (
    SELECT 'ticker' AS channel, session_id, request_start_ns, request_end_ns, count(*) AS rows
    FROM rest_ticker GROUP BY ALL
    UNION ALL
    SELECT 'trade', session_id, request_start_ns, request_end_ns, count(*)
    FROM rest_trade GROUP BY ALL
    UNION ALL
    SELECT 'orderbook', session_id, request_start_ns, request_end_ns, count(*)
    FROM rest_orderbook GROUP BY ALL
    UNION ALL
    SELECT 'candle', session_id, request_start_ns, request_end_ns, count(*)
    FROM rest_candle GROUP BY ALL
);

-- name: rest_round_trip
-- Per channel: REST requests and their round-trip time quantiles.
SELECT * EXCLUDE (q) FROM (
    SELECT
        channel,
        count(*) AS requests,
        quantile_disc(round_trip_ms, [0.5, 0.9, 0.99]) AS q,
        q[1] AS p50_ms, q[2] AS p90_ms, q[3] AS p99_ms,
        max(round_trip_ms) AS max_ms
    FROM rest_requests
    GROUP BY channel
);

-- name: freshness
-- Each REST ticker or orderbook whose state (symbol, exchange time) the WebSocket also
-- delivered: ws_lead_ms is how much sooner the WebSocket delivered it (negative: REST first).
SELECT
    'ticker' AS channel, r.session_id, r.symbol, r.seq AS rest_seq, r."timestamp" AS exchange_time,
    r.received_ns AS rest_received_ns,
    (r.received_ns - w.first_received_ns) / 1e6 AS ws_lead_ms
FROM rest_ticker AS r
JOIN (
    SELECT session_id, symbol, "timestamp", min(received_ns) AS first_received_ns
    FROM ticker WHERE source = 'websocket' GROUP BY ALL
) AS w USING (session_id, symbol, "timestamp")
UNION ALL
SELECT
    'orderbook', r.session_id, r.symbol, r.seq, r."timestamp", r.received_ns,
    (r.received_ns - w.first_received_ns) / 1e6
FROM rest_orderbook AS r
JOIN (
    SELECT session_id, symbol, "timestamp", min(received_ns) AS first_received_ns
    FROM orderbook WHERE source = 'websocket' GROUP BY ALL
) AS w USING (session_id, symbol, "timestamp");

-- name: freshness_by_channel
-- Per channel: states both delivered, the WebSocket's lead quantiles, and how often REST
-- delivered first.
SELECT * EXCLUDE (q) FROM (
    SELECT
        channel,
        count(*) AS compared,
        quantile_disc(ws_lead_ms, [0.5, 0.9]) AS q,
        q[1] AS p50_ms, q[2] AS p90_ms,
        max(ws_lead_ms) AS max_ms,
        min(ws_lead_ms) AS min_ms,
        count(*) FILTER (WHERE ws_lead_ms < 0) AS rest_first
    FROM freshness
    GROUP BY channel
);

-- name: latency_flags
-- Per channel: WebSocket records that were late, and that had a negative latency.
SELECT
    channel,
    coalesce(sum(rows) FILTER (WHERE kind = 'late'), 0) AS late,
    coalesce(sum(rows) FILTER (WHERE kind = 'negative'), 0) AS negative
FROM latency_excursions
GROUP BY channel;
