-- REST/WebSocket consistency: does what the streams delivered agree with the REST reference
-- snapshots the recorder took beside them? Every statement is a view over the dataset views.

-- name: ws_reach
-- How far each WebSocket ticker and orderbook stream got, per session and symbol: the exchange
-- time of its last state. A REST snapshot newer than that came after the stream stopped (the
-- recording ended, say, with the WebSocket's copy of that state still on its way): the
-- WebSocket never had the chance to show it, so it is counted apart and not compared.
SELECT 'ticker' AS channel, session_id, symbol, max("timestamp") AS last_time
FROM ticker WHERE source = 'websocket' GROUP BY ALL
UNION ALL
SELECT 'orderbook', session_id, symbol, max("timestamp")
FROM orderbook WHERE source = 'websocket' GROUP BY ALL;

-- name: ticker_pairs
-- Each REST ticker (struct `rest`) beside the exchange time of the WebSocket ticker in force
-- at its own exchange time (ws_time: the last one at or before it, same session and symbol;
-- NULL when none). matched: there is one, and the stream went on to at least the REST
-- ticker's time; after_stream: the REST ticker is newer than the stream's last state (see
-- ws_reach).
SELECT
    r.session_id,
    r.symbol,
    r.seq AS rest_seq,
    r.received_ns AS rest_received_ns,
    r."timestamp" AS rest_time,
    w."timestamp" AS ws_time,
    coalesce(r."timestamp" > e.last_time, false) AS after_stream,
    w."timestamp" IS NOT NULL AND NOT after_stream AS matched,
    r AS rest
FROM rest_ticker AS r
ASOF LEFT JOIN (
    SELECT session_id, symbol, "timestamp" FROM ticker WHERE source = 'websocket'
) AS w
    ON r.session_id = w.session_id AND r.symbol = w.symbol AND r."timestamp" >= w."timestamp"
LEFT JOIN ws_reach AS e
    ON e.channel = 'ticker' AND e.session_id = r.session_id AND e.symbol = r.symbol;

-- name: ticker_comparisons
-- One row per matched REST ticker and compared field, against the WebSocket ticker in force.
-- Several WebSocket tickers may carry that one exchange time (trades in the same
-- millisecond), and a REST answer may show any of them: the one agreeing on most fields is
-- taken (ws_seq; among equals, the last delivered).
SELECT * EXCLUDE (misses)
FROM (
    SELECT
        p.session_id, p.symbol, p.rest_seq, p.rest_received_ns, p.rest_time, p.ws_time,
        w.seq AS ws_seq, f.field, f.rest_value, f.ws_value,
        f.rest_value IS NOT DISTINCT FROM f.ws_value AS agrees,
        count(*) FILTER (WHERE NOT agrees) OVER (PARTITION BY p.session_id, p.rest_seq, w.seq)
            AS misses
    FROM ticker_pairs AS p
    JOIN ticker AS w
        ON w.source = 'websocket' AND w.session_id = p.session_id AND w.symbol = p.symbol
        AND w."timestamp" = p.ws_time,
    LATERAL (VALUES
    ('current_price', p.rest.current_price::VARCHAR, w.current_price::VARCHAR),
    ('change_rate', p.rest.change_rate::VARCHAR, w.change_rate::VARCHAR),
    ('change_amount', p.rest.change_amount::VARCHAR, w.change_amount::VARCHAR),
    ('volume_24h', p.rest.volume_24h::VARCHAR, w.volume_24h::VARCHAR),
    ('high_24h', p.rest.high_24h::VARCHAR, w.high_24h::VARCHAR),
    ('low_24h', p.rest.low_24h::VARCHAR, w.low_24h::VARCHAR),
    ('prev_closing_price', p.rest.prev_closing_price::VARCHAR, w.prev_closing_price::VARCHAR),
    ('opening_price', p.rest.opening_price::VARCHAR, w.opening_price::VARCHAR),
    ('change', p.rest.change, w.change),
    ('trade_volume', p.rest.trade_volume::VARCHAR, w.trade_volume::VARCHAR),
    ('trade_timestamp', p.rest.trade_timestamp::VARCHAR, w.trade_timestamp::VARCHAR),
    ('acc_trade_volume', p.rest.acc_trade_volume::VARCHAR, w.acc_trade_volume::VARCHAR),
    ('acc_trade_price', p.rest.acc_trade_price::VARCHAR, w.acc_trade_price::VARCHAR),
    ('acc_trade_price_24h', p.rest.acc_trade_price_24h::VARCHAR, w.acc_trade_price_24h::VARCHAR),
    ('highest_52_week_price', p.rest.highest_52_week_price::VARCHAR,
        w.highest_52_week_price::VARCHAR),
    ('lowest_52_week_price', p.rest.lowest_52_week_price::VARCHAR, w.lowest_52_week_price::VARCHAR)
    ) AS f(field, rest_value, ws_value)
    WHERE p.matched
)
QUALIFY ws_seq = first_value(ws_seq) OVER (
    PARTITION BY session_id, rest_seq ORDER BY misses, ws_seq DESC
);

-- name: ticker_checks
-- One row per REST ticker: whether it was compared (matched), and the fields on which it
-- disagrees with the WebSocket (empty: full agreement).
SELECT
    p.session_id, p.symbol, p.rest_seq, p.rest_received_ns, p.rest_time, p.ws_time,
    p.after_stream, p.matched,
    coalesce(list(c.field ORDER BY c.field) FILTER (WHERE NOT c.agrees), []) AS mismatched_fields
FROM ticker_pairs AS p
LEFT JOIN ticker_comparisons AS c USING (session_id, rest_seq)
GROUP BY ALL;

-- name: ticker_agreement_by_field
-- Per compared field: how many REST tickers were compared, agreed and disagreed.
SELECT
    field,
    count(*) AS compared,
    count(*) FILTER (WHERE agrees) AS agreed,
    count(*) FILTER (WHERE NOT agrees) AS mismatches
FROM ticker_comparisons
GROUP BY field;

-- name: orderbook_checks
-- Each REST orderbook against the WebSocket orderbook in force at its exchange time, level by
-- level over the depth both carry: `level_agrees[i]` is true when bid and ask price and size
-- of level i are equal. matched and after_stream as in ticker_pairs; among WebSocket
-- orderbooks of one exchange time, the one agreeing on most levels (ws_seq; among equals,
-- the last delivered).
SELECT
    p.session_id, p.symbol, p.rest_seq, p.rest_received_ns, p.rest_time, p.ws_time,
    p.after_stream, p.matched,
    w.seq AS ws_seq,
    least(len(p.bid_prices), len(p.ask_prices), len(w.bid_prices), len(w.ask_prices)) AS depth,
    list_transform(
        range(1, coalesce(depth, 0) + 1),
        lambda i: p.bid_prices[i] = w.bid_prices[i] AND p.bid_volumes[i] = w.bid_volumes[i]
            AND p.ask_prices[i] = w.ask_prices[i] AND p.ask_volumes[i] = w.ask_volumes[i]
    ) AS level_agrees,
    list_count(list_filter(level_agrees, lambda x: x)) AS levels_agreed,
    p.matched AND levels_agreed = depth AS agrees
FROM (
    SELECT
        r.session_id, r.symbol, r.seq AS rest_seq, r.received_ns AS rest_received_ns,
        r."timestamp" AS rest_time, w."timestamp" AS ws_time,
        coalesce(r."timestamp" > e.last_time, false) AS after_stream,
        w."timestamp" IS NOT NULL AND NOT after_stream AS matched,
        r.bid_prices, r.bid_volumes, r.ask_prices, r.ask_volumes
    FROM rest_orderbook AS r
    ASOF LEFT JOIN (
        SELECT session_id, symbol, "timestamp" FROM orderbook WHERE source = 'websocket'
    ) AS w
        ON r.session_id = w.session_id AND r.symbol = w.symbol
        AND r."timestamp" >= w."timestamp"
    LEFT JOIN ws_reach AS e
        ON e.channel = 'orderbook' AND e.session_id = r.session_id AND e.symbol = r.symbol
) AS p
LEFT JOIN orderbook AS w
    ON p.matched AND w.source = 'websocket' AND w.session_id = p.session_id
    AND w.symbol = p.symbol AND w."timestamp" = p.ws_time
QUALIFY row_number() OVER (
    PARTITION BY p.session_id, p.rest_seq ORDER BY levels_agreed DESC, ws_seq DESC
) = 1;

-- name: orderbook_agreement_by_level
-- Per level (1 = best): how many compared REST orderbooks agreed with the WebSocket there.
SELECT
    level_index,
    count(*) AS compared,
    count(*) FILTER (WHERE agrees) AS agreed
FROM (
    SELECT unnest(range(1, depth + 1)) AS level_index, unnest(level_agrees) AS agrees
    FROM orderbook_checks
    WHERE matched
)
GROUP BY level_index;

-- name: staleness
-- Each REST ticker and orderbook beside the newest WebSocket record of its channel received
-- before its request was sent: the REST answer is stale when that WebSocket state is newer on
-- the exchange clock (behind_ms: by how much).
SELECT
    r.channel, r.session_id, r.symbol, r.seq AS rest_seq, r.request_start_ns,
    r.received_ns AS rest_received_ns, r."timestamp" AS rest_time, w."timestamp" AS ws_time,
    epoch_ms(w."timestamp") - epoch_ms(r."timestamp") AS behind_ms,
    coalesce(w."timestamp" > r."timestamp", false) AS stale
FROM (
    SELECT 'ticker' AS channel, session_id, symbol, seq, request_start_ns, received_ns, "timestamp"
    FROM rest_ticker
    UNION ALL
    SELECT 'orderbook', session_id, symbol, seq, request_start_ns, received_ns, "timestamp"
    FROM rest_orderbook
) AS r
ASOF LEFT JOIN (
    SELECT 'ticker' AS channel, session_id, symbol, received_ns, "timestamp"
    FROM ticker WHERE source = 'websocket'
    UNION ALL
    SELECT 'orderbook', session_id, symbol, received_ns, "timestamp"
    FROM orderbook WHERE source = 'websocket'
) AS w
    ON r.channel = w.channel AND r.session_id = w.session_id AND r.symbol = w.symbol
    AND r.request_start_ns >= w.received_ns;

-- name: rest_trade_answers
-- One row per REST trades answer: the exchange-time interval its trades cover.
SELECT
    session_id, symbol, request_start_ns,
    max(received_ns) AS received_ns,
    count(*) AS trades,
    min(trade_timestamp) AS first_time,
    max(trade_timestamp) AS last_time
FROM rest_trade
GROUP BY session_id, symbol, request_start_ns;

-- name: trade_stream_spans
-- The exchange-time span the trade stream covered, per session and symbol: from its first to
-- its last trade delivered live (a WebSocket snapshot's trade predates the subscription).
SELECT session_id, symbol, min(trade_timestamp) AS first_time, max(trade_timestamp) AS last_time
FROM trade
WHERE stream_type IS DISTINCT FROM 'SNAPSHOT'
GROUP BY session_id, symbol;

-- name: trade_windows
-- Each REST answer's interval cut to the stream's span of its session. Trades are compared
-- strictly inside it: a boundary millisecond may hold trades that one side cut off.
SELECT
    a.session_id, a.symbol, a.request_start_ns,
    greatest(a.first_time, s.first_time) AS window_start,
    least(a.last_time, s.last_time) AS window_end
FROM rest_trade_answers AS a
JOIN trade_stream_spans AS s USING (session_id, symbol)
WHERE greatest(a.first_time, s.first_time) < least(a.last_time, s.last_time);

-- name: rest_trades_compared
-- Every REST trade strictly inside its answer's window: whether the trade stream holds the
-- same (symbol, sequential_id), and whether price, size, side and time agree.
SELECT
    r.session_id, r.symbol, r.sequential_id, r.request_start_ns,
    any_value(r.trade_timestamp) AS trade_timestamp,
    count(t.sequential_id) > 0 AS streamed,
    bool_and(
        t.trade_price = r.trade_price AND t.trade_volume = r.trade_volume
        AND t.trade_side = r.trade_side AND t.trade_timestamp = r.trade_timestamp
    ) AS agrees
FROM rest_trade AS r
JOIN trade_windows AS w USING (session_id, symbol, request_start_ns)
LEFT JOIN trade AS t ON t.symbol = r.symbol AND t.sequential_id = r.sequential_id
WHERE r.trade_timestamp > w.window_start AND r.trade_timestamp < w.window_end
GROUP BY r.session_id, r.symbol, r.sequential_id, r.request_start_ns;

-- name: rest_trade_keys
-- The distinct trades REST listed inside a window: streamed or not, agreeing or not.
SELECT
    symbol, sequential_id,
    min(trade_timestamp) AS trade_timestamp,
    bool_or(streamed) AS streamed,
    coalesce(bool_and(agrees), true) AS agrees
FROM rest_trades_compared
GROUP BY symbol, sequential_id;

-- name: trade_missing_runs
-- Runs of consecutive REST-listed trades (by exchange time) that the stream lacks: where and
-- how many trades went missing.
SELECT
    symbol,
    min(trade_timestamp) AS first_time,
    max(trade_timestamp) AS last_time,
    count(*) AS trades
FROM (
    SELECT
        *,
        row_number() OVER (PARTITION BY symbol ORDER BY trade_timestamp, sequential_id)
        - row_number() OVER (
            PARTITION BY symbol, streamed ORDER BY trade_timestamp, sequential_id
        ) AS run
    FROM rest_trade_keys
)
WHERE NOT streamed
GROUP BY symbol, run;

-- name: trade_covered
-- The union of the trade windows per session and symbol: disjoint open intervals of exchange
-- time that some REST answer and the stream both covered.
SELECT session_id, symbol, min(window_start) AS covered_start, max(window_end) AS covered_end
FROM (
    SELECT
        *,
        count(*) FILTER (WHERE window_start >= reach) OVER (
            PARTITION BY session_id, symbol ORDER BY window_start, window_end
            ROWS UNBOUNDED PRECEDING
        ) AS island
    FROM (
        SELECT
            *,
            coalesce(max(window_end) OVER (
                PARTITION BY session_id, symbol ORDER BY window_start, window_end
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
            ), window_start) AS reach
        FROM trade_windows
    )
)
GROUP BY session_id, symbol, island;

-- name: stream_trades_unlisted
-- Streamed trades strictly inside an interval REST covered (trade_covered) that no REST
-- answer listed. Trades meet intervals by equality on a time bucket (each interval listed
-- under every bucket it touches; buckets are 1 s, or 1/64 of the longest interval), then by
-- the bounds: no sort of the trades.
WITH bucket AS (
    SELECT greatest(
        1000, max(epoch_ms(covered_end) - epoch_ms(covered_start)) // 64
    )::BIGINT AS ms
    FROM trade_covered
),
buckets AS (
    SELECT
        c.session_id, c.symbol, c.covered_start, c.covered_end,
        unnest(range(
            epoch_ms(c.covered_start) // b.ms, epoch_ms(c.covered_end) // b.ms + 1
        )) AS bucket
    FROM trade_covered AS c, bucket AS b
)
SELECT t.symbol, t.sequential_id, t.trade_timestamp, t.source
FROM (
    SELECT
        t.session_id, t.symbol, t.sequential_id, t.trade_timestamp, t.source,
        epoch_ms(t.trade_timestamp) // b.ms AS bucket
    FROM trade AS t, bucket AS b
) AS t
JOIN buckets AS c
    ON c.session_id = t.session_id AND c.symbol = t.symbol AND c.bucket = t.bucket
    AND t.trade_timestamp > c.covered_start AND t.trade_timestamp < c.covered_end
ANTI JOIN rest_trade AS r ON r.sequential_id = t.sequential_id AND r.symbol = t.symbol;

-- name: candle_timeframes
-- The width of every candle timeframe that trades can rebuild (weeks and longer are skipped).
SELECT * FROM (VALUES
    ('1s', INTERVAL 1 SECOND), ('1m', INTERVAL 1 MINUTE), ('3m', INTERVAL 3 MINUTE),
    ('5m', INTERVAL 5 MINUTE), ('10m', INTERVAL 10 MINUTE), ('15m', INTERVAL 15 MINUTE),
    ('30m', INTERVAL 30 MINUTE), ('60m', INTERVAL 60 MINUTE), ('240m', INTERVAL 240 MINUTE),
    ('1d', INTERVAL 1 DAY)
) AS t(timeframe, width);

-- name: rest_candles_closed
-- REST candles known complete (the same answer lists a later candle, so a trade came after)
-- whose interval the trade stream covered, strictly inside its span; the last answer's copy.
SELECT c.*, f.width
FROM (
    SELECT *, max(open_time) OVER (
        PARTITION BY session_id, request_start_ns, symbol, timeframe
    ) AS newest_in_answer
    FROM rest_candle
) AS c
JOIN candle_timeframes AS f USING (timeframe)
JOIN trade_stream_spans AS s USING (session_id, symbol)
WHERE c.open_time < c.newest_in_answer
    AND c.open_time > s.first_time AND c.open_time + f.width < s.last_time
QUALIFY row_number() OVER (
    PARTITION BY c.symbol, c.timeframe, c.open_time ORDER BY c.received_ns DESC, c.seq DESC
) = 1;

-- name: candles_rebuilt
-- The candles of rest_candles_closed rebuilt from the recorded trades (each (symbol,
-- sequential_id) once): open and close by exchange time then id, quote volume in DOUBLE.
-- Each trade falls in the candle of each compared timeframe that opens at its time cut to
-- that width (Upbit's candles open at whole multiples of their width, days at 00:00 UTC),
-- so trades meet candles by equality, whatever the number of candles.
SELECT
    symbol, timeframe, open_time,
    count(*) AS trades,
    arg_min(price, {'t': ts, 'id': sequential_id}) AS open_price,
    max(price) AS high_price,
    min(price) AS low_price,
    arg_max(price, {'t': ts, 'id': sequential_id}) AS close_price,
    sum(volume) AS volume,
    sum(price::DOUBLE * volume::DOUBLE) AS quote_volume
FROM (
    SELECT
        t.symbol, f.timeframe, time_bucket(f.width, t.trade_timestamp) AS open_time,
        t.sequential_id,
        any_value(t.trade_price) AS price,
        any_value(t.trade_volume) AS volume,
        any_value(t.trade_timestamp) AS ts
    FROM trade AS t
    CROSS JOIN (SELECT DISTINCT timeframe, width FROM rest_candles_closed) AS f
    SEMI JOIN rest_candles_closed AS c
        ON c.symbol = t.symbol AND c.timeframe = f.timeframe
        AND c.open_time = time_bucket(f.width, t.trade_timestamp)
    GROUP BY ALL
)
GROUP BY symbol, timeframe, open_time;

-- name: candle_checks
-- Each closed, covered REST candle against the candle rebuilt from trades: the fields that
-- disagree (quote volume within the quote_volume_tolerance variable, relative).
SELECT
    c.session_id, c.symbol, c.timeframe, c.open_time, c.received_ns AS rest_received_ns,
    b.trades,
    b.symbol IS NOT NULL AS rebuilt,
    list_filter([
        CASE WHEN c.open_price IS DISTINCT FROM b.open_price THEN 'open_price' END,
        CASE WHEN c.high_price IS DISTINCT FROM b.high_price THEN 'high_price' END,
        CASE WHEN c.low_price IS DISTINCT FROM b.low_price THEN 'low_price' END,
        CASE WHEN c.close_price IS DISTINCT FROM b.close_price THEN 'close_price' END,
        CASE WHEN c.volume IS DISTINCT FROM b.volume THEN 'volume' END,
        CASE WHEN b.quote_volume IS NULL OR abs(c.quote_volume::DOUBLE - b.quote_volume)
            > getvariable('quote_volume_tolerance') * greatest(abs(b.quote_volume), 1e-12)
            THEN 'quote_volume' END
    ], lambda f: f IS NOT NULL) AS mismatched_fields
FROM rest_candles_closed AS c
LEFT JOIN candles_rebuilt AS b USING (symbol, timeframe, open_time);

-- name: ticker_summary
-- One row: REST tickers, those compared (a WebSocket ticker was in force), those agreeing on
-- every field, those with no WebSocket ticker in force, those newer than the stream's last
-- ticker, and the stale ones.
SELECT
    count(*) AS rest_snapshots,
    count(*) FILTER (WHERE matched) AS compared,
    count(*) FILTER (WHERE matched AND len(mismatched_fields) = 0) AS agreed,
    count(*) FILTER (WHERE NOT matched AND NOT after_stream) AS unmatched,
    count(*) FILTER (WHERE after_stream) AS after_stream,
    (SELECT count(*) FROM staleness WHERE channel = 'ticker' AND stale) AS stale,
    (SELECT max(behind_ms) FROM staleness WHERE channel = 'ticker' AND stale) AS max_stale_ms
FROM ticker_checks;

-- name: orderbook_summary
-- One row: REST orderbooks, those compared, those agreeing on every level, those with no
-- WebSocket orderbook in force, those newer than the stream's last orderbook, levels compared
-- and agreeing, and the stale ones.
SELECT
    count(*) AS rest_snapshots,
    count(*) FILTER (WHERE matched) AS compared,
    count(*) FILTER (WHERE agrees) AS agreed,
    count(*) FILTER (WHERE NOT matched AND NOT after_stream) AS unmatched,
    count(*) FILTER (WHERE after_stream) AS after_stream,
    coalesce(sum(depth) FILTER (WHERE matched), 0) AS levels_compared,
    coalesce(sum(levels_agreed) FILTER (WHERE matched), 0) AS levels_agreed,
    (SELECT count(*) FROM staleness WHERE channel = 'orderbook' AND stale) AS stale,
    (SELECT max(behind_ms) FROM staleness WHERE channel = 'orderbook' AND stale)
        AS max_stale_ms
FROM orderbook_checks;

-- name: trade_summary
-- One row: REST trades answers, those overlapping the stream, distinct trades compared, those
-- the stream lacks, those that disagree, and streamed trades no answer listed.
SELECT
    (SELECT count(*) FROM rest_trade_answers) AS rest_answers,
    (SELECT count(*) FROM trade_windows) AS compared_answers,
    count(*) AS compared,
    count(*) FILTER (WHERE NOT streamed) AS missing_from_stream,
    count(*) FILTER (WHERE streamed AND NOT agrees) AS mismatched,
    (SELECT count(*) FROM stream_trades_unlisted) AS missing_from_rest
FROM rest_trade_keys;

-- name: candle_summary
-- One row: REST candles compared with rebuilt ones, agreeing, and with no streamed trade.
SELECT
    count(*) AS compared,
    count(*) FILTER (WHERE rebuilt AND len(mismatched_fields) = 0) AS agreed,
    count(*) FILTER (WHERE NOT rebuilt) AS not_rebuilt
FROM candle_checks;

-- name: candle_mismatches_by_field
-- Per candle field: how many compared candles disagree on it.
SELECT field, count(*) AS mismatches
FROM (SELECT unnest(mismatched_fields) AS field FROM candle_checks)
GROUP BY field;
