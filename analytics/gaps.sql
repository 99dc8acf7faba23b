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
-- and symbol (NULL for the first). Each dataset is ordered per symbol by receive time alone
-- (its files are partitioned by symbol, which DuckDB's window uses as it is; records received
-- at the same instant have the same gaps whichever comes first): the sessions of a recording
-- follow one another, so a session's records are consecutive there.
SELECT
    'ticker' AS dataset, session_id, symbol, seq, received_ns,
    CASE WHEN lag(session_id) OVER w = session_id THEN received_ns - lag(received_ns) OVER w END
        AS gap_ns
FROM ticker
WINDOW w AS (PARTITION BY symbol ORDER BY received_ns)
UNION ALL
SELECT
    'trade' AS dataset, session_id, symbol, seq, received_ns,
    CASE WHEN lag(session_id) OVER w = session_id THEN received_ns - lag(received_ns) OVER w END
        AS gap_ns
FROM trade
WINDOW w AS (PARTITION BY symbol ORDER BY received_ns)
UNION ALL
SELECT
    'orderbook' AS dataset, session_id, symbol, seq, received_ns,
    CASE WHEN lag(session_id) OVER w = session_id THEN received_ns - lag(received_ns) OVER w END
        AS gap_ns
FROM orderbook
WINDOW w AS (PARTITION BY symbol ORDER BY received_ns)
UNION ALL
SELECT
    'candle' AS dataset, session_id, symbol, seq, received_ns,
    CASE WHEN lag(session_id) OVER w = session_id THEN received_ns - lag(received_ns) OVER w END
        AS gap_ns
FROM candle
WINDOW w AS (PARTITION BY symbol ORDER BY received_ns);

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
-- Every silent period: from the record before the silence to the record that ended it. One
-- pass over the arrivals measures each dataset and symbol's rhythm and collects, beside it,
-- the gaps longer than silence_floor_ms (no threshold is lower): those above the threshold.
SELECT
    dataset, c.session_id, symbol,
    c.received_ns - c.gap_ns AS start_ns,
    c.received_ns AS end_ns,
    c.gap_ns / 1e6 AS silent_ms,
    usual_ms,
    threshold_ms
FROM (
    SELECT
        dataset, symbol,
        quantile_cont(gap_ns, getvariable('silence_quantile')) / 1e6 AS usual_ms,
        greatest(getvariable('silence_floor_ms'), getvariable('silence_factor') * usual_ms)
            AS threshold_ms,
        list({'session_id': session_id, 'received_ns': received_ns, 'gap_ns': gap_ns})
            FILTER (WHERE gap_ns / 1e6 > getvariable('silence_floor_ms')) AS candidates
    FROM stream_arrivals
    GROUP BY dataset, symbol
), unnest(candidates) AS u(c)
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
