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

-- name: stream_arrivals
-- Every stream record with the time since the previous record of the same dataset, session
-- and symbol (NULL for the first).
SELECT
    dataset, session_id, symbol, seq, received_ns,
    received_ns - lag(received_ns) OVER (
        PARTITION BY dataset, session_id, symbol ORDER BY received_ns, seq
    ) AS gap_ns
FROM (
    SELECT 'ticker' AS dataset, session_id, symbol, seq, received_ns FROM ticker
    UNION ALL
    SELECT 'trade', session_id, symbol, seq, received_ns FROM trade
    UNION ALL
    SELECT 'orderbook', session_id, symbol, seq, received_ns FROM orderbook
    UNION ALL
    SELECT 'candle', session_id, symbol, seq, received_ns FROM candle
);

-- name: stream_rhythm
-- Per dataset and symbol: its usual inter-arrival time (the silence_quantile of its gaps) and
-- the silence threshold max(silence_floor_ms, silence_factor * usual).
SELECT
    dataset, symbol,
    count(gap_ns) AS gaps,
    quantile_cont(gap_ns, getvariable('silence_quantile')) / 1e6 AS usual_ms,
    greatest(getvariable('silence_floor_ms'), getvariable('silence_factor') * usual_ms)
        AS threshold_ms
FROM stream_arrivals
GROUP BY dataset, symbol;

-- name: silences
-- Every silent period: from the record before the silence to the record that ended it (the
-- arrivals are computed once, then measured against their own rhythm).
WITH arrivals AS MATERIALIZED (
    SELECT * FROM stream_arrivals
),
rhythm AS (
    SELECT
        dataset, symbol,
        quantile_cont(gap_ns, getvariable('silence_quantile')) / 1e6 AS usual_ms,
        greatest(getvariable('silence_floor_ms'), getvariable('silence_factor') * usual_ms)
            AS threshold_ms
    FROM arrivals
    GROUP BY dataset, symbol
)
SELECT
    a.dataset, a.session_id, a.symbol,
    a.received_ns - a.gap_ns AS start_ns,
    a.received_ns AS end_ns,
    a.gap_ns / 1e6 AS silent_ms,
    r.usual_ms,
    r.threshold_ms
FROM arrivals AS a
JOIN rhythm AS r USING (dataset, symbol)
WHERE a.gap_ns / 1e6 > r.threshold_ms;

-- name: silence_list
-- The silent periods, each carrying the count of all of them and the longest (in seconds), so
-- that a caller reading the first few learns the totals from the same computation.
SELECT *, count(*) OVER () AS silences, max(silent_ms) OVER () / 1e3 AS longest_silence_s
FROM silences;

-- name: silence_summary
-- One row: silent periods and the longest one, in seconds.
SELECT count(*) AS silences, max(silent_ms) / 1e3 AS longest_silence_s
FROM silences;
