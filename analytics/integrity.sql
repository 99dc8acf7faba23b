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
-- when the copies disagree on price, size, side or time.
SELECT
    d.symbol, d.sequential_id, d.copies,
    count(DISTINCT (t.trade_price, t.trade_volume, t.trade_side, t.trade_timestamp)) > 1
        AS conflicting
FROM (
    SELECT symbol, sequential_id, count(*) AS copies
    FROM trade
    GROUP BY sequential_id, symbol
    HAVING count(*) > 1
) AS d
JOIN trade AS t USING (symbol, sequential_id)
GROUP BY d.symbol, d.sequential_id, d.copies;

-- name: value_checks
-- Records holding a non-positive price or trade size, or a negative volume; `fields` names
-- the offending columns.
SELECT dataset, session_id, seq, symbol, received_ns, list_filter(fields, lambda f: f IS NOT NULL) AS fields
FROM (
    SELECT dataset, session_id, seq, symbol, received_ns, [
        CASE WHEN trade_price <= 0 THEN 'trade_price' END,
        CASE WHEN trade_volume <= 0 THEN 'trade_volume' END
    ] AS fields
    FROM (
        SELECT 'trade' AS dataset, session_id, seq, symbol, received_ns, trade_price, trade_volume
        FROM trade
        UNION ALL
        SELECT 'rest_trade', session_id, seq, symbol, received_ns, trade_price, trade_volume
        FROM rest_trade
    )
    WHERE trade_price <= 0 OR trade_volume <= 0
    UNION ALL
    SELECT dataset, session_id, seq, symbol, received_ns, [
        CASE WHEN current_price <= 0 THEN 'current_price' END,
        CASE WHEN high_24h <= 0 THEN 'high_24h' END,
        CASE WHEN low_24h <= 0 THEN 'low_24h' END,
        CASE WHEN opening_price <= 0 THEN 'opening_price' END,
        CASE WHEN prev_closing_price <= 0 THEN 'prev_closing_price' END,
        CASE WHEN volume_24h < 0 THEN 'volume_24h' END,
        CASE WHEN acc_trade_volume < 0 THEN 'acc_trade_volume' END,
        CASE WHEN acc_trade_price < 0 THEN 'acc_trade_price' END
    ]
    FROM (
        SELECT 'ticker' AS dataset, * FROM ticker
        UNION ALL BY NAME
        SELECT 'rest_ticker' AS dataset, * FROM rest_ticker
    )
    WHERE current_price <= 0 OR high_24h <= 0 OR low_24h <= 0 OR opening_price <= 0
        OR prev_closing_price <= 0 OR volume_24h < 0 OR acc_trade_volume < 0
        OR acc_trade_price < 0
    UNION ALL
    SELECT dataset, session_id, seq, symbol, received_ns, [
        CASE WHEN open_price <= 0 THEN 'open_price' END,
        CASE WHEN high_price <= 0 THEN 'high_price' END,
        CASE WHEN low_price <= 0 THEN 'low_price' END,
        CASE WHEN close_price <= 0 THEN 'close_price' END,
        CASE WHEN volume < 0 THEN 'volume' END,
        CASE WHEN quote_volume < 0 THEN 'quote_volume' END
    ]
    FROM (
        SELECT 'candle' AS dataset, * FROM candle
        UNION ALL BY NAME
        SELECT 'rest_candle' AS dataset, * FROM rest_candle
    )
    WHERE open_price <= 0 OR high_price <= 0 OR low_price <= 0 OR close_price <= 0
        OR volume < 0 OR quote_volume < 0
);

-- name: out_of_order
-- WebSocket records whose exchange time is earlier than that of the previous WebSocket record
-- of the same dataset, session and symbol in delivery (seq) order.
SELECT *
FROM (
    SELECT
        dataset, session_id, symbol, seq, received_ns, exchange_time,
        lag(exchange_time) OVER (PARTITION BY dataset, session_id, symbol ORDER BY seq)
            AS previous_time
    FROM (
        SELECT 'ticker' AS dataset, session_id, symbol, seq, received_ns,
            "timestamp" AS exchange_time
        FROM ticker WHERE source = 'websocket'
        UNION ALL
        SELECT 'trade', session_id, symbol, seq, received_ns, trade_timestamp
        FROM trade WHERE source = 'websocket'
        UNION ALL
        SELECT 'orderbook', session_id, symbol, seq, received_ns, "timestamp"
        FROM orderbook WHERE source = 'websocket'
    )
)
WHERE exchange_time < previous_time;

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
    (SELECT count(*) AS numbers FROM seq_duplicates) AS s;
