-- The series the HTML report draws. Time buckets are `bucket_ns` nanoseconds of receive time
-- (a variable the report sets from the recording's span).

-- name: stream_span
-- One row: the first and last receive time of any stream record, and how many there are.
SELECT min(received_ns) AS first_ns, max(received_ns) AS last_ns, count(*) AS rows
FROM stream_latency;

-- name: message_rate
-- Stream records per channel and time bucket (bucket: start of the bucket, ns).
SELECT
    channel,
    received_ns // getvariable('bucket_ns') * getvariable('bucket_ns') AS bucket,
    count(*) AS rows
FROM stream_latency
GROUP BY channel, bucket;

-- name: latency_over_time
-- WebSocket latency per channel and time bucket: median and maximum.
SELECT
    channel,
    received_ns // getvariable('bucket_ns') * getvariable('bucket_ns') AS bucket,
    quantile_disc(latency_ms, 0.5) AS p50_ms,
    max(latency_ms) AS max_ms
FROM stream_latency
WHERE source = 'websocket'
GROUP BY channel, bucket;

-- name: latency_histogram
-- WebSocket latencies per channel in power-of-two bins: bin -1 holds latencies <= 0 ms, bin 0
-- those up to 1 ms, bin b those in (2^(b-1), 2^b] ms.
SELECT
    channel,
    CASE WHEN latency_ms <= 0 THEN -1 ELSE greatest(0, ceil(log2(latency_ms)))::INTEGER END AS bin,
    count(*) AS rows
FROM stream_latency
WHERE source = 'websocket'
GROUP BY channel, bin;

-- name: consistency_over_time
-- Per channel and time bucket of the REST answers: references compared and agreeing.
SELECT
    'ticker' AS channel,
    rest_received_ns // getvariable('bucket_ns') * getvariable('bucket_ns') AS bucket,
    count(*) FILTER (WHERE matched) AS compared,
    count(*) FILTER (WHERE matched AND len(mismatched_fields) = 0) AS agreed
FROM ticker_checks
GROUP BY bucket
UNION ALL
SELECT
    'orderbook',
    rest_received_ns // getvariable('bucket_ns') * getvariable('bucket_ns'),
    count(*) FILTER (WHERE matched),
    count(*) FILTER (WHERE agrees)
FROM orderbook_checks
GROUP BY ALL
UNION ALL
SELECT
    'trade',
    request_start_ns // getvariable('bucket_ns') * getvariable('bucket_ns'),
    count(*),
    count(*) FILTER (WHERE streamed AND agrees)
FROM rest_trades_compared
GROUP BY ALL
UNION ALL
SELECT
    'candle',
    rest_received_ns // getvariable('bucket_ns') * getvariable('bucket_ns'),
    count(*),
    count(*) FILTER (WHERE rebuilt AND len(mismatched_fields) = 0)
FROM candle_checks
GROUP BY ALL;
