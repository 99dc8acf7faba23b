-- Gaps: what the backbone said happened (the events ledger) and what the data shows (silent
-- periods: no record of a dataset for a symbol for longer than its usual rhythm).

-- name: events_ledger
-- Every connection, source-switch and gap event in delivery order, with its duration on the
-- local clock when it has both ends.
SELECT
    session_id, seq, received_ns, kind, source, channel, symbols, start_ns, end_ns,
    (end_ns - start_ns) / 1e9 AS duration_s,
    exchange_start, exchange_end, cause, rows_recovered, rows_missing, detail
FROM events;

-- name: events_by_kind
-- Per event kind and channel: events, rows recovered and rows known missing.
SELECT
    kind, channel,
    count(*) AS events,
    coalesce(sum(rows_recovered), 0) AS rows_recovered,
    coalesce(sum(rows_missing), 0) AS rows_missing
FROM events
GROUP BY kind, channel;

-- name: stream_order
-- Every stream record in delivery order: per dataset and symbol by receive time, then seq
-- (one window per dataset: its files are partitioned by symbol, which DuckDB's window uses as
-- it is). gap_ns: the time since the previous record of the same session (NULL for the
-- first; the sessions of a recording follow one another, so a session's records are
-- consecutive there). For a WebSocket ticker, trade or orderbook, previous_time: the exchange
-- time of the WebSocket record received just before it in the same session (REST-sourced
-- records between them skipped; a candle's exchange time is its last trade's, so candles
-- have none). For a trade, id_not_rising: its sequential_id is not above the previous
-- trade's (a symbol without one holds no duplicate key). One sort of each dataset serves the
-- silences, the order check and the duplicate screen.
SELECT
    dataset, session_id, symbol, seq, received_ns, source, exchange_time,
    CASE WHEN lag(session_id) OVER w = session_id THEN received_ns - lag(received_ns) OVER w END
        AS gap_ns,
    CASE
        WHEN source = 'websocket'
            AND lag(CASE WHEN source = 'websocket' THEN session_id END IGNORE NULLS) OVER w
                = session_id
        THEN lag(CASE WHEN source = 'websocket' THEN exchange_time END IGNORE NULLS) OVER w
    END AS previous_time,
    NULL::BOOLEAN AS id_not_rising
FROM (
    SELECT 'ticker' AS dataset, session_id, symbol, seq, received_ns, source,
        "timestamp" AS exchange_time
    FROM ticker
    UNION ALL
    SELECT 'orderbook' AS dataset, session_id, symbol, seq, received_ns, source,
        "timestamp" AS exchange_time
    FROM orderbook
)
WINDOW w AS (PARTITION BY dataset, symbol ORDER BY received_ns, seq)
UNION ALL
SELECT
    'trade' AS dataset, session_id, symbol, seq, received_ns, source,
    trade_timestamp AS exchange_time,
    CASE WHEN lag(session_id) OVER w = session_id THEN received_ns - lag(received_ns) OVER w END
        AS gap_ns,
    CASE
        WHEN source = 'websocket'
            AND lag(CASE WHEN source = 'websocket' THEN session_id END IGNORE NULLS) OVER w
                = session_id
        THEN lag(CASE WHEN source = 'websocket' THEN trade_timestamp END IGNORE NULLS) OVER w
    END AS previous_time,
    sequential_id <= lag(sequential_id) OVER w AS id_not_rising
FROM trade
WINDOW w AS (PARTITION BY symbol ORDER BY received_ns, seq)
UNION ALL
SELECT
    'candle' AS dataset, session_id, symbol, seq, received_ns, source,
    "timestamp" AS exchange_time,
    CASE WHEN lag(session_id) OVER w = session_id THEN received_ns - lag(received_ns) OVER w END
        AS gap_ns,
    NULL::TIMESTAMPTZ AS previous_time,
    NULL::BOOLEAN AS id_not_rising
FROM candle
WINDOW w AS (PARTITION BY symbol ORDER BY received_ns, seq);

-- name: stream_arrivals
-- Every stream record with the time since the previous record of the same dataset, session
-- and symbol (NULL for the first), as ordered in stream_order.
SELECT dataset, session_id, symbol, seq, received_ns, gap_ns
FROM stream_order;

-- name: stream_order_summary
-- One pass over stream_order, per dataset and symbol: its gaps, its usual inter-arrival time
-- (the silence_quantile of its gaps), the silence threshold max(silence_floor_ms,
-- silence_factor * usual), the gaps longer than silence_floor_ms (no threshold is lower:
-- candidates for silences), the WebSocket records out of order (exchange time earlier than
-- previous_time) and the trades whose sequential_id does not rise.
SELECT
    dataset, symbol,
    count(gap_ns) AS gaps,
    quantile_cont(gap_ns, getvariable('silence_quantile')) / 1e6 AS usual_ms,
    greatest(getvariable('silence_floor_ms'), getvariable('silence_factor') * usual_ms)
        AS threshold_ms,
    list({'session_id': session_id, 'received_ns': received_ns, 'gap_ns': gap_ns})
        FILTER (WHERE gap_ns / 1e6 > getvariable('silence_floor_ms')) AS candidates,
    list({
        'dataset': dataset, 'session_id': session_id, 'symbol': symbol, 'seq': seq,
        'received_ns': received_ns, 'exchange_time': exchange_time,
        'previous_time': previous_time
    }) FILTER (WHERE exchange_time < previous_time) AS out_of_order,
    count(*) FILTER (WHERE id_not_rising) AS ids_not_rising
FROM stream_order
GROUP BY dataset, symbol;

-- name: stream_rhythm
-- Per dataset and symbol: its usual inter-arrival time (the silence_quantile of its gaps) and
-- the silence threshold max(silence_floor_ms, silence_factor * usual).
SELECT dataset, symbol, gaps, usual_ms, threshold_ms
FROM stream_order_summary;

-- name: silences
-- Every silent period: from the record before the silence to the record that ended it: the
-- candidate gaps of stream_order_summary above their threshold.
SELECT
    dataset, c.session_id, symbol,
    c.received_ns - c.gap_ns AS start_ns,
    c.received_ns AS end_ns,
    c.gap_ns / 1e6 AS silent_ms,
    usual_ms,
    threshold_ms
FROM stream_order_summary, unnest(candidates) AS u(c)
WHERE c.gap_ns / 1e6 > threshold_ms;

-- name: silence_list
-- The silent periods, each carrying the count of all of them and the longest (in seconds), so
-- that a caller reading the first few learns the totals from the same computation.
SELECT *, count(*) OVER () AS silences, max(silent_ms) OVER () / 1e3 AS longest_silence_s
FROM silences;

-- name: silence_summary
-- One row: silent periods and the longest one, in seconds.
SELECT count(*) AS silences, max(silent_ms) / 1e3 AS longest_silence_s
FROM silences;
