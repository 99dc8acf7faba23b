-- Integrity: records that cannot be right whatever the other channel says.

-- name: book_checks
-- Every orderbook (streamed and REST) that is crossed (best bid at or above best ask),
-- unsorted (bids not strictly falling or asks not strictly rising), malformed (prices and
-- sizes of different lengths), whose totals differ from the sum of its levels' sizes, or
-- that holds a non-positive price or size.
SELECT *
FROM (
    SELECT
        dataset, session_id, seq, symbol, received_ns, "timestamp",
        coalesce(bid_prices[1] >= ask_prices[1], false) AS crossed,
        NOT (
            bid_prices = list_sort(bid_prices, 'DESC')
            AND len(list_distinct(bid_prices)) = len(bid_prices)
            AND ask_prices = list_sort(ask_prices, 'ASC')
            AND len(list_distinct(ask_prices)) = len(ask_prices)
        ) AS unsorted,
        len(bid_prices) <> len(bid_volumes) OR len(ask_prices) <> len(ask_volumes) AS malformed,
        total_bid_size IS DISTINCT FROM coalesce(list_sum(bid_volumes), 0)
            OR total_ask_size IS DISTINCT FROM coalesce(list_sum(ask_volumes), 0)
            AS total_mismatch,
        coalesce(
            least(list_min(bid_prices), list_min(bid_volumes),
                list_min(ask_prices), list_min(ask_volumes)) <= 0,
            false
        ) AS non_positive
    FROM (
        SELECT 'orderbook' AS dataset, * FROM orderbook
        UNION ALL BY NAME
        SELECT 'rest_orderbook' AS dataset, * FROM rest_orderbook
    )
)
WHERE crossed OR unsorted OR malformed OR total_mismatch OR non_positive;

-- name: trade_duplicates
-- Trade keys (symbol, sequential_id) the trade stream holds more than once; `conflicting`
-- when the copies disagree on price, size, side or time. Only the symbols whose ids do not
-- always rise in delivery order can hold one (stream_order_summary); their copies are found
-- by ordering those symbols' ids (cheaper than grouping every key), then only they are
-- compared.
WITH suspects AS (
    SELECT symbol FROM stream_order_summary WHERE dataset = 'trade' AND ids_not_rising > 0
)
SELECT
    symbol, sequential_id,
    count(*) AS copies,
    count(DISTINCT (trade_price, trade_volume, trade_side, trade_timestamp)) > 1 AS conflicting
FROM trade
SEMI JOIN suspects USING (symbol)
SEMI JOIN (
    SELECT symbol, sequential_id
    FROM (
        SELECT
            symbol, sequential_id,
            sequential_id = lag(sequential_id) OVER (PARTITION BY symbol ORDER BY sequential_id)
                AS again
        FROM trade
        SEMI JOIN suspects USING (symbol)
    )
    WHERE again
) AS d USING (symbol, sequential_id)
GROUP BY symbol, sequential_id;

-- name: value_checks
-- Records holding a non-positive price or trade size, or a negative volume; `fields` names
-- the offending columns. One simple condition per column and dataset, so that the Parquet
-- statistics rule out whole row groups (usually all of them) without reading a value.
SELECT dataset, session_id, seq, symbol, received_ns, list(field ORDER BY field) AS fields
FROM (
    SELECT 'trade' AS dataset, session_id, seq, symbol, received_ns, 'trade_price' AS field
    FROM trade WHERE trade_price <= 0
    UNION ALL
    SELECT 'trade', session_id, seq, symbol, received_ns, 'trade_volume'
    FROM trade WHERE trade_volume <= 0
    UNION ALL
    SELECT 'rest_trade', session_id, seq, symbol, received_ns, 'trade_price'
    FROM rest_trade WHERE trade_price <= 0
    UNION ALL
    SELECT 'rest_trade', session_id, seq, symbol, received_ns, 'trade_volume'
    FROM rest_trade WHERE trade_volume <= 0
    UNION ALL
    SELECT 'ticker', session_id, seq, symbol, received_ns, 'current_price'
    FROM ticker WHERE current_price <= 0
    UNION ALL
    SELECT 'ticker', session_id, seq, symbol, received_ns, 'high_24h'
    FROM ticker WHERE high_24h <= 0
    UNION ALL
    SELECT 'ticker', session_id, seq, symbol, received_ns, 'low_24h'
    FROM ticker WHERE low_24h <= 0
    UNION ALL
    SELECT 'ticker', session_id, seq, symbol, received_ns, 'opening_price'
    FROM ticker WHERE opening_price <= 0
    UNION ALL
    SELECT 'ticker', session_id, seq, symbol, received_ns, 'prev_closing_price'
    FROM ticker WHERE prev_closing_price <= 0
    UNION ALL
    SELECT 'ticker', session_id, seq, symbol, received_ns, 'volume_24h'
    FROM ticker WHERE volume_24h < 0
    UNION ALL
    SELECT 'ticker', session_id, seq, symbol, received_ns, 'acc_trade_volume'
    FROM ticker WHERE acc_trade_volume < 0
    UNION ALL
    SELECT 'ticker', session_id, seq, symbol, received_ns, 'acc_trade_price'
    FROM ticker WHERE acc_trade_price < 0
    UNION ALL
    SELECT 'rest_ticker', session_id, seq, symbol, received_ns, 'current_price'
    FROM rest_ticker WHERE current_price <= 0
    UNION ALL
    SELECT 'rest_ticker', session_id, seq, symbol, received_ns, 'high_24h'
    FROM rest_ticker WHERE high_24h <= 0
    UNION ALL
    SELECT 'rest_ticker', session_id, seq, symbol, received_ns, 'low_24h'
    FROM rest_ticker WHERE low_24h <= 0
    UNION ALL
    SELECT 'rest_ticker', session_id, seq, symbol, received_ns, 'opening_price'
    FROM rest_ticker WHERE opening_price <= 0
    UNION ALL
    SELECT 'rest_ticker', session_id, seq, symbol, received_ns, 'prev_closing_price'
    FROM rest_ticker WHERE prev_closing_price <= 0
    UNION ALL
    SELECT 'rest_ticker', session_id, seq, symbol, received_ns, 'volume_24h'
    FROM rest_ticker WHERE volume_24h < 0
    UNION ALL
    SELECT 'rest_ticker', session_id, seq, symbol, received_ns, 'acc_trade_volume'
    FROM rest_ticker WHERE acc_trade_volume < 0
    UNION ALL
    SELECT 'rest_ticker', session_id, seq, symbol, received_ns, 'acc_trade_price'
    FROM rest_ticker WHERE acc_trade_price < 0
    UNION ALL
    SELECT 'candle', session_id, seq, symbol, received_ns, 'open_price'
    FROM candle WHERE open_price <= 0
    UNION ALL
    SELECT 'candle', session_id, seq, symbol, received_ns, 'high_price'
    FROM candle WHERE high_price <= 0
    UNION ALL
    SELECT 'candle', session_id, seq, symbol, received_ns, 'low_price'
    FROM candle WHERE low_price <= 0
    UNION ALL
    SELECT 'candle', session_id, seq, symbol, received_ns, 'close_price'
    FROM candle WHERE close_price <= 0
    UNION ALL
    SELECT 'candle', session_id, seq, symbol, received_ns, 'volume' FROM candle WHERE volume < 0
    UNION ALL
    SELECT 'candle', session_id, seq, symbol, received_ns, 'quote_volume'
    FROM candle WHERE quote_volume < 0
    UNION ALL
    SELECT 'rest_candle', session_id, seq, symbol, received_ns, 'open_price'
    FROM rest_candle WHERE open_price <= 0
    UNION ALL
    SELECT 'rest_candle', session_id, seq, symbol, received_ns, 'high_price'
    FROM rest_candle WHERE high_price <= 0
    UNION ALL
    SELECT 'rest_candle', session_id, seq, symbol, received_ns, 'low_price'
    FROM rest_candle WHERE low_price <= 0
    UNION ALL
    SELECT 'rest_candle', session_id, seq, symbol, received_ns, 'close_price'
    FROM rest_candle WHERE close_price <= 0
    UNION ALL
    SELECT 'rest_candle', session_id, seq, symbol, received_ns, 'volume'
    FROM rest_candle WHERE volume < 0
    UNION ALL
    SELECT 'rest_candle', session_id, seq, symbol, received_ns, 'quote_volume'
    FROM rest_candle WHERE quote_volume < 0
)
GROUP BY dataset, session_id, seq, symbol, received_ns;

-- name: out_of_order
-- WebSocket records whose exchange time is earlier than that of the WebSocket record of the
-- same dataset, session and symbol received just before (in delivery order: see
-- stream_order, whose summary lists them).
SELECT
    o.dataset, o.session_id, o.symbol, o.seq, o.received_ns, o.exchange_time, o.previous_time
FROM stream_order_summary, unnest(out_of_order) AS u(o);

-- name: seq_duplicates
-- (session, seq) numbers held by more than one row across the datasets (raw frames aside):
-- the recorder numbers each delivered record once. One row per extra copy.
SELECT session_id, seq
FROM (
    SELECT session_id, seq, lag(seq) OVER (PARTITION BY session_id ORDER BY seq) AS previous
    FROM (
        SELECT session_id, seq FROM ticker
        UNION ALL SELECT session_id, seq FROM trade
        UNION ALL SELECT session_id, seq FROM orderbook
        UNION ALL SELECT session_id, seq FROM candle
        UNION ALL SELECT session_id, seq FROM rest_ticker
        UNION ALL SELECT session_id, seq FROM rest_trade
        UNION ALL SELECT session_id, seq FROM rest_orderbook
        UNION ALL SELECT session_id, seq FROM rest_candle
        UNION ALL SELECT session_id, seq FROM events
    )
)
WHERE seq = previous;

-- name: seq_duplicate_count
-- One row: how many rows hold a (session, seq) number an earlier row holds (as many as
-- seq_duplicates lists), counted with one bitmap per session and block of 2^20 numbers
-- instead of sorting every row.
SELECT coalesce(sum(rows - bit_count(numbers)), 0)::BIGINT AS extra
FROM (
    SELECT count(*) AS rows, bitstring_agg(seq & 1048575, 0, 1048575) AS numbers
    FROM (
        SELECT session_id, seq FROM ticker
        UNION ALL SELECT session_id, seq FROM trade
        UNION ALL SELECT session_id, seq FROM orderbook
        UNION ALL SELECT session_id, seq FROM candle
        UNION ALL SELECT session_id, seq FROM rest_ticker
        UNION ALL SELECT session_id, seq FROM rest_trade
        UNION ALL SELECT session_id, seq FROM rest_orderbook
        UNION ALL SELECT session_id, seq FROM rest_candle
        UNION ALL SELECT session_id, seq FROM events
    )
    GROUP BY session_id, seq >> 20
);

-- name: integrity_summary
-- One row: how many records each integrity check flags (duplicate_trades counts the extra
-- copies; non_positive adds flagged orderbooks and flagged records of other datasets).
SELECT
    b.crossed_books, b.unsorted_books, b.malformed_books, b.book_total_mismatches,
    b.non_positive_books + v.records AS non_positive,
    d.duplicate_trades, d.conflicting_duplicates,
    o.records AS out_of_order,
    s.numbers AS seq_duplicates
FROM
    (
        SELECT
            count(*) FILTER (WHERE crossed) AS crossed_books,
            count(*) FILTER (WHERE unsorted) AS unsorted_books,
            count(*) FILTER (WHERE malformed) AS malformed_books,
            count(*) FILTER (WHERE total_mismatch) AS book_total_mismatches,
            count(*) FILTER (WHERE non_positive) AS non_positive_books
        FROM book_checks
    ) AS b,
    (SELECT count(*) AS records FROM value_checks) AS v,
    (
        SELECT
            coalesce(sum(copies - 1), 0) AS duplicate_trades,
            count(*) FILTER (WHERE conflicting) AS conflicting_duplicates
        FROM trade_duplicates
    ) AS d,
    (SELECT count(*) AS records FROM out_of_order) AS o,
    (SELECT extra AS numbers FROM seq_duplicate_count) AS s;
