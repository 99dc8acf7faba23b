"""A local, protocol-faithful Upbit exchange: REST, WebSocket, faults and truth on one port.

Quick start::

    from simulator import Exchange, ManualClock

    async with Exchange(seed=0, markets=["KRW-BTC", "KRW-ETH"], clock=ManualClock(START_MS)) as ex:
        ex.rest_url    # "http://127.0.0.1:<port>/v1"             (Upbit's REST base)
        ex.ws_url      # "ws://127.0.0.1:<port>/websocket/v1"     (Upbit's public WebSocket)
        ex.admin_url   # "http://127.0.0.1:<port>/_sim"           (this simulator's admin API)
        ex.clock.advance(60_000)   # a manual clock moves only when told...
        await ex.settle()          # ...then everything due is emitted and on the sockets

From the command line: ``tape exchange [--seed N] [--markets A,B] [--speed X | --manual-clock
--start TIME] [--duration 10s] [--firehose trades|mixed]``; its first stdout line is the JSON
``{"rest_url", "ws_url", "admin_url"}``.

Python interface
----------------
``Exchange(seed=0, markets=None, port=0, host="127.0.0.1", clock=None, config=None)``
    An async context manager (``start()`` / ``close()`` also work; close is idempotent).
    ``markets=None`` lists ~300 Upbit-shaped markets (KRW, BTC, USDT; KRW-BTC, KRW-ETH,
    KRW-XRP and KRW-USDT busy, a long quiet tail); a list restricts to those codes, any
    ``QUOTE-BASE`` code works (unknown bases get generated names, prices and activity).
``ex.rest_url``, ``ex.ws_url``, ``ex.admin_url``, ``ex.clock``, ``ex.faults``, ``ex.config``,
``ex.markets`` (listed codes), ``ex.start_ms`` (exchange time at construction).
``await ex.settle(timeout_s=60)``
    Emit everything due at the clock's current time and wait until it has been written to the
    sockets. A request a client has sent but the exchange has not read yet is not covered:
    wait for its snapshot (or a ``LIST_SUBSCRIPTIONS`` reply) before advancing the clock.
``ex.truth_trades(market, from_ms=None, to_ms=None) -> list[TruthTrade]``
    Every trade the market published in ``[from_ms, to_ms)`` (default: since the exchange
    started, up to now), ascending by (trade_timestamp, sequential_id). ``TruthTrade`` has
    ``market, sequential_id, trade_price (Decimal), trade_volume (Decimal), ask_bid,
    trade_timestamp`` (ms).
``ex.list_market(code, korean_name=None, english_name=None)``, ``ex.delist_market(code)``
    List a market while running (it comes with a generated past) or delist one (REST answers
    404 for it, its WebSocket streams stop).
``ex.connections() -> list[dict]``, ``ex.frames_sent() -> dict[channel, int]``, ``ex.stats``
    What was sent: per connection ``frames_sent`` by channel (``trade``, ``ticker``,
    ``orderbook``, ``candle``, plus ``status``, ``list``, ``error``, ``malformed``),
    ``frames_total``, ``bytes_sent``, ``frames_withheld`` (stall), ``close_reason``.

Clocks (all speak integer epoch milliseconds, ``now_ms()``):
``RealClock()`` (default), ``ScaledClock(speed, start_ms=None)`` (exchange time runs ``speed``
times faster than real time from ``start_ms``, default now), ``ManualClock(start_ms)`` with
``advance(ms)`` and ``set_ms(ms)`` (forward only; call from the event loop's thread).

``ExchangeConfig`` (frozen; defaults shown by ``ExchangeConfig()``): ``idle_timeout_s=120``,
``rest_limit_per_s=10`` per group, ``rest_429s_before_block=10`` (429s within 10 s before a
418 block of ``rest_block_s=5`` seconds, doubling per block up to ``rest_block_max_s=60``),
``ws_connect_limit_per_s=5``, ``ws_message_limit_per_s=5``, ``ws_message_limit_per_min=100``,
``ws_violations_before_close=10``, ``activity_scale=1.0`` (multiplies every market's trade
rate), ``orderbook_depth=30``, ``history_days=400``, ``ws_queue_frames=65536``,
``firehose=None``. Rate windows count on real monotonic time; ``None`` disables a limit.

The market
----------
Seeded and deterministic: the same seed, config, start time and clock give byte-identical REST
bodies and WebSocket frames in any process on any machine (integer arithmetic and stable
hashes only). The past is generated lazily: trades exist from 00:00 UTC seven days before the
start day (what ``days_ago`` reaches) onwards; before that, ``history_days`` of sparser trades
give older candles. Candles are exactly the OHLCV of the trades in their interval (absent
where there were none); tickers are exactly the sums since 00:00 UTC and over the last 24 h,
with 52-week fields; orderbooks have 30 units, asks ascending, bids descending, totals equal
to the sums of the units sent; every trade prints at the touch. ``sequential_id`` is
``trade_timestamp * 10000 + n``: unique within a market, not contiguous. Every number on the
wire is the exact decimal of an integer (prices and sizes in 1e-8 units), written like the
real wire: REST shortest (``148601000``), WebSocket trades and candles ``109847000.0``,
WebSocket tickers padded (``31883000.00000000``).

What costs time: the first ticker (REST or snapshot) of a market generates its last 24 hours
of trades, about 50,000 for KRW-BTC (a few tenths of a second); a first ``ticker/all`` over the
~300 default markets takes seconds. Generated history is cached per process (bounded LRU), so
later requests and later exchanges with the same seed are fast. Tests on a few markets never
notice; ``activity_scale`` multiplies this cost along with the trade rates.

Each trade is published ``lag_ms`` (8-47 ms per market) after it executes; at that moment the
exchange emits, for that market and in (time, sequential_id) order: the trade, the ticker it
produced and the orderbook after it (a REST request at any later time sees that same state,
with the same ``timestamp``). ``candle.<unit>`` messages are pushed at whole seconds of
exchange time, at most once a second, when a candle changed.

REST (``/v1``)
--------------
``market/all`` (``is_details`` / ``isDetails``), ``ticker`` (``markets``), ``ticker/all``
(``quote_currencies``), ``trades/ticks`` (``market``, ``count`` <= 500, ``to`` HHmmss or
HH:mm:ss, ``cursor``, ``days_ago`` 1-7; one UTC day, newest first), ``orderbook``
(``markets``, ``level``, ``count`` <= 30), ``orderbook/instruments``, ``candles/seconds``
(last 3 months), ``candles/minutes/{1,3,5,10,15,30,60,240}``, ``candles/days``
(``converting_price_unit``), ``candles/weeks``, ``candles/months``, ``candles/years``
(``market``, ``to`` exclusive, ISO-8601, UTC without zone; ``count`` clamped to 200).
Errors are Upbit's ``{"error": {"name": <status>, "message": ...}}``: 404 ``Code not found``,
400 missing parameter / invalid parameter / type mismatch / ``specified unit is not valid.``
Every response carries ``Remaining-Req: group=<market|ticker|crix-trades|orderbook|candles>;
min=1800; sec=<n>``. Over the per-group limit in a sliding second: 429; after repeated 429s:
418 for every group, with the block time in the message.

WebSocket (``/websocket/v1``)
-----------------------------
The subscription array (ticket, type objects with ``codes``, ``is_only_snapshot`` /
``is_only_realtime`` in both spellings, orderbook ``level`` and ``CODE.N`` depth 1/5/15/30,
the format object anywhere: DEFAULT, SIMPLE, JSON_LIST, SIMPLE_LIST); a new request replaces
the connection's subscriptions; ``LIST_SUBSCRIPTIONS``; text ``PING`` -> ``{"status":"UP"}``;
ping frames -> pongs. Every server frame is binary UTF-8 JSON. Errors are frames
``{"error": {"name": NO_TICKET | NO_TYPE | NO_CODES | WRONG_FORMAT | INVALID_PARAM |
Too Many Requests | I'm a teapot, "message": ...}}``; the socket stays open (except after the
teapot). Unknown codes are ignored silently. A socket with no frame either way for
``idle_timeout_s`` of exchange time is closed (code 1000). Overflow policy: one sender loop per
connection drains a bounded queue; a connection with more than ``ws_queue_frames`` waiting is
a slow consumer and is closed (code 1008); nothing is dropped silently.

Admin API (``/_sim``, no rate limit)
------------------------------------
``GET /_sim`` info; ``POST /_sim/faults`` ``{"kind": ..., ...}`` -> ``{"id", "kind",
"start_ms", "end_ms"}``; ``GET /_sim/faults``; ``DELETE /_sim/faults``;
``GET /_sim/truth/trades?market=&from=&to=`` (JSON list of ``sequential_id, trade_price,
trade_volume, ask_bid, trade_timestamp``); ``GET|POST /_sim/clock`` (``{"advance_ms": n}`` or
``{"set_ms": t}``, manual clock only, answers after settling); ``POST /_sim/settle``;
``GET|POST /_sim/markets`` (``{"market", "korean_name"?, "english_name"?}``),
``DELETE /_sim/markets/{code}``; ``GET /_sim/connections``; ``GET /_sim/stats`` (totals,
``frames_sent`` by channel, the firehose's counts).

Faults
------
``ex.faults.apply(kind, **params) -> {"id", "kind", "start_ms", "end_ms"}``, ``ex.faults.list()``
(every fault since the last clear, with ``active``, ``params`` and ``effects``),
``ex.faults.clear()``. ``seconds`` run on the exchange clock; channels are ``ticker``,
``trade``, ``orderbook``, ``candle``; a message is affected when its event time falls in
``[start_ms, end_ms)``. Kinds and what their ``effects`` count:

- ``disconnect``: abort every WebSocket once -> ``connections_closed``, ``connection_ids``.
- ``stall`` (``seconds``): sockets open now send nothing, pongs included; new ones are served ->
  ``connections_stalled``, ``frames_withheld[market][channel]``, ``pongs_withheld``. Frames are
  withheld, not queued: a stalled socket that stays open resumes with later data.
- ``refuse_ws`` (``seconds``): new sockets get HTTP 503 -> ``connections_refused``.
- ``drop_ws`` (``channel``, ``fraction``, ``seconds``): realtime messages dropped, chosen by a
  hash of (seed, fault id, market, message), the same for every connection ->
  ``messages_dropped[market][channel]``, ``frames_dropped[market][channel]`` and, for trades,
  ``dropped_trades`` ``[[market, sequential_id], ...]``. REST and the truth still have them.
- ``delay_ws`` (``ms``, ``seconds``, optional ``channel``): frames leave ``ms`` late (order kept,
  later frames wait behind them) -> ``messages_delayed``, ``frames_delayed``.
- ``malformed_ws`` (``count``): ``count`` broken frames (truncated JSON, invalid UTF-8) to each
  subscribed socket, or to the next one to subscribe -> ``frames_malformed``, ``by_connection``.
- ``rest_error`` (``status``, ``seconds``): REST answers ``status`` ->
  ``requests_failed[path]``, ``requests_failed_by_market[market]``.
- ``rest_stale`` (``seconds``): REST answers as of the fault's start ->
  ``requests_stale[path]``, ``requests_stale_by_market[market]``.
- ``clock_skew`` (``ms``, ``seconds``): ``ms`` added to exchange timestamps in WebSocket
  messages and REST bodies -> ``messages_skewed``, ``frames_skewed``, ``rest_responses_skewed``.

Firehose
--------
``ExchangeConfig(firehose=FirehoseConfig(mix="trades" | "mixed", frames=N, chunk_frames=512))``
or ``tape exchange --firehose mixed --firehose-frames N``: every subscribing connection gets
``frames`` pre-encoded frames in its format as fast as its socket takes them (``mixed``: half
trades, a quarter tickers, a quarter 30-unit orderbooks, among the types and codes it
subscribed to), instead of the market's stream. Every firehose trade has a unique
(code, sequential_id); counts are in ``GET /_sim/stats`` (``firehose.frames_sent``,
``firehose.trades_by_code``) and per connection in ``GET /_sim/connections``.
"""

from simulator.clock import Clock, ManualClock, RealClock, ScaledClock
from simulator.config import ExchangeConfig, FirehoseConfig
from simulator.exchange import Exchange, TruthTrade
from simulator.faults import CHANNELS, KINDS, FaultError, Faults

__all__ = [
    "CHANNELS",
    "KINDS",
    "Clock",
    "Exchange",
    "ExchangeConfig",
    "FaultError",
    "Faults",
    "FirehoseConfig",
    "ManualClock",
    "RealClock",
    "ScaledClock",
    "TruthTrade",
]
