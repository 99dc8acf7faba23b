"""What the simulator sends: Upbit's JSON bodies and WebSocket messages, built as exact text.

Numbers are written from integers (1e-8 units) the way the real wire writes them: REST bodies in
the shortest form (``148601000``, ``0.00016823``), WebSocket trades and candles with a ``.0`` on
whole prices (``109847000.0``), WebSocket tickers with eight decimals on the fields the official
example pads (``31883000.00000000``). Every number is the exact decimal of an integer, so a
client that parses the text as ``Decimal`` gets the value the model holds.
"""

from __future__ import annotations

import time
from functools import lru_cache

from simulator.markets import CAUTION_KEYS, SCALE, MarketSpec
from simulator.model import Book, Candle, TickerState, Trade

KST_MS = 9 * 3_600_000
SCALE2 = SCALE * SCALE

# -- numbers ------------------------------------------------------------------------------


def num(v: int) -> str:
    """Shortest exact decimal of ``v`` 1e-8 units: ``148601000``, ``0.00016823``."""
    if v < 0:
        return "-" + num(-v)
    q, r = divmod(v, SCALE)
    if not r:
        return str(q)
    return f"{q}.{r:08d}".rstrip("0")


def num_f(v: int) -> str:
    """Like :func:`num` but whole values keep one decimal: ``109847000.0``."""
    if v % SCALE:
        return num(v)
    return f"{v // SCALE}.0"


def num_pad(v: int) -> str:
    """Eight decimals always: ``31883000.00000000``."""
    if v < 0:
        return "-" + num_pad(-v)
    q, r = divmod(v, SCALE)
    return f"{q}.{r:08d}"


def num2(v: int) -> str:
    """Shortest exact decimal of ``v`` 1e-16 units (price times volume)."""
    q, r = divmod(v, SCALE2)
    if not r:
        return str(q)
    return f"{q}.{r:016d}".rstrip("0")


def num2_pad(v: int) -> str:
    """At least eight decimals of ``v`` 1e-16 units: ``78039261076.51241000``."""
    q, r = divmod(v, SCALE2)
    frac = f"{r:016d}".rstrip("0")
    return f"{q}.{frac.ljust(8, '0')}"


def ratio(numerator: int, denominator: int) -> str:
    """Signed ratio rounded half away from zero at ten decimals; ``0`` when zero."""
    if not numerator or not denominator:
        return "0"
    sign = "-" if (numerator < 0) != (denominator < 0) else ""
    n, d = abs(numerator) * 10**10, abs(denominator)
    q, r = divmod(n, d)
    if 2 * r >= d:
        q += 1
    whole, frac = divmod(q, 10**10)
    text = f"{whole}.{frac:010d}".rstrip("0").rstrip(".")
    return sign + text if text != "0" else "0"


# -- times --------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _second(sec: int) -> tuple[str, str, str, str, str]:
    tm = time.gmtime(sec)
    y, mo, d, h, mi, s = tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
    return (
        f"{y:04d}-{mo:02d}-{d:02d}",
        f"{y:04d}{mo:02d}{d:02d}",
        f"{h:02d}:{mi:02d}:{s:02d}",
        f"{h:02d}{mi:02d}{s:02d}",
        f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}",
    )


def date_dash(ms: int) -> str:
    return _second(ms // 1000)[0]


def date_compact(ms: int) -> str:
    return _second(ms // 1000)[1]


def time_colon(ms: int) -> str:
    return _second(ms // 1000)[2]


def time_compact(ms: int) -> str:
    return _second(ms // 1000)[3]


def iso_utc(ms: int) -> str:
    return _second(ms // 1000)[4]


def iso_kst(ms: int) -> str:
    return _second((ms + KST_MS) // 1000)[4]


def _q(text: str) -> str:
    return '"' + text + '"'


# -- objects ------------------------------------------------------------------------------

TRADE_KEYS = (
    ("type", "ty"), ("code", "cd"), ("timestamp", "tms"), ("trade_date", "td"),
    ("trade_time", "ttm"), ("trade_timestamp", "ttms"), ("trade_price", "tp"),
    ("trade_volume", "tv"), ("ask_bid", "ab"), ("prev_closing_price", "pcp"), ("change", "c"),
    ("change_price", "cp"), ("sequential_id", "sid"), ("best_ask_price", "bap"),
    ("best_ask_size", "bas"), ("best_bid_price", "bbp"), ("best_bid_size", "bbs"),
    ("stream_type", "st"),
)  # fmt: skip
TICKER_KEYS = (
    ("type", "ty"), ("code", "cd"), ("opening_price", "op"), ("high_price", "hp"),
    ("low_price", "lp"), ("trade_price", "tp"), ("prev_closing_price", "pcp"),
    ("acc_trade_price", "atp"), ("change", "c"), ("change_price", "cp"),
    ("signed_change_price", "scp"), ("change_rate", "cr"), ("signed_change_rate", "scr"),
    ("ask_bid", "ab"), ("trade_volume", "tv"), ("acc_trade_volume", "atv"),
    ("trade_date", "tdt"), ("trade_time", "ttm"), ("trade_timestamp", "ttms"),
    ("acc_ask_volume", "aav"), ("acc_bid_volume", "abv"), ("highest_52_week_price", "h52wp"),
    ("highest_52_week_date", "h52wdt"), ("lowest_52_week_price", "l52wp"),
    ("lowest_52_week_date", "l52wdt"), ("market_state", "ms"), ("is_trading_suspended", "its"),
    ("delisting_date", "dd"), ("market_warning", "mw"), ("timestamp", "tms"),
    ("acc_trade_price_24h", "atp24h"), ("acc_trade_volume_24h", "atv24h"), ("stream_type", "st"),
)  # fmt: skip
ORDERBOOK_KEYS = (
    ("type", "ty"), ("code", "cd"), ("timestamp", "tms"), ("total_ask_size", "tas"),
    ("total_bid_size", "tbs"), ("orderbook_units", "obu"), ("stream_type", "st"), ("level", "lv"),
)  # fmt: skip
UNIT_KEYS = (("ask_price", "ap"), ("bid_price", "bp"), ("ask_size", "as"), ("bid_size", "bs"))
CANDLE_KEYS = (
    ("type", "ty"), ("code", "cd"), ("candle_date_time_utc", "cdttmu"),
    ("candle_date_time_kst", "cdttmk"), ("opening_price", "op"), ("high_price", "hp"),
    ("low_price", "lp"), ("trade_price", "tp"), ("candle_acc_trade_volume", "catv"),
    ("candle_acc_trade_price", "catp"), ("timestamp", "tms"), ("stream_type", "st"),
)  # fmt: skip
LIST_KEYS = (("method", "mthd"), ("result", "rslt"), ("ticket", "tckt"))
LIST_ITEM_KEYS = (("type", "ty"), ("codes", "cds"), ("level", "lv"))


def render(keys: tuple[tuple[str, str], ...], values: list[str], simple: bool) -> str:
    """Join JSON value texts under DEFAULT (long) or SIMPLE (short) keys, in order."""
    idx = 1 if simple else 0
    return "{" + ",".join(f'"{k[idx]}":{v}' for k, v in zip(keys, values, strict=True)) + "}"


def _change(price: int, prev: int) -> str:
    return "RISE" if price > prev else ("FALL" if price < prev else "EVEN")


def _side(side: int) -> str:
    return "BID" if side else "ASK"


def ws_trade(
    code: str,
    trade: Trade,
    prev_close: int,
    book: Book,
    stream_type: str,
    skew_ms: int,
    simple: bool,
) -> str:
    ts = trade.ts + skew_ms
    top = book.units[0]
    values = [
        '"trade"', _q(code), str(book.timestamp + skew_ms), _q(date_dash(ts)), _q(time_colon(ts)),
        str(ts), num_f(trade.price), num(trade.volume), _q(_side(trade.side)), num_f(prev_close),
        _q(_change(trade.price, prev_close)), num_f(abs(trade.price - prev_close)),
        str(trade.sid), num(top[0]), num(top[2]), num(top[1]), num(top[3]), _q(stream_type),
    ]  # fmt: skip
    return render(TRADE_KEYS, values, simple)


def _market_warning(spec: MarketSpec) -> str:
    return '"CAUTION"' if spec.warning else '"NONE"'


def ws_ticker(
    spec: MarketSpec, state: TickerState, stream_type: str, skew_ms: int, simple: bool
) -> str:
    t = state.trade
    ts = t.ts + skew_ms
    signed = t.price - state.prev_close
    values = [
        '"ticker"', _q(spec.code), num(state.opening), num(state.high), num(state.low),
        num(t.price), num_pad(state.prev_close), num2_pad(state.acc_turnover),
        _q(_change(t.price, state.prev_close)), num_pad(abs(signed)), num_pad(signed),
        ratio(abs(signed), state.prev_close), ratio(signed, state.prev_close), _q(_side(t.side)),
        num(t.volume), num(state.acc_volume), _q(date_compact(ts)), _q(time_compact(ts)),
        str(ts), num(state.acc_ask_volume), num(state.acc_bid_volume), num_pad(state.high_52w),
        _q(date_dash(state.high_52w_day)), num_pad(state.low_52w), _q(date_dash(state.low_52w_day)),
        '"ACTIVE"', "false", "null", _market_warning(spec), str(state.timestamp + skew_ms),
        num2_pad(state.turnover_24h), num_pad(state.volume_24h), _q(stream_type),
    ]  # fmt: skip
    return render(TICKER_KEYS, values, simple)


def _units(units: tuple[tuple[int, int, int, int], ...], simple: bool) -> str:
    idx = 1 if simple else 0
    ap, bp, asz, bsz = (k[idx] for k in UNIT_KEYS)
    return "[" + ",".join(
        f'{{"{ap}":{num(u[0])},"{bp}":{num(u[1])},"{asz}":{num(u[2])},"{bsz}":{num(u[3])}}}'
        for u in units
    ) + "]"  # fmt: skip


def ws_orderbook(
    code: str, book: Book, depth: int, stream_type: str, skew_ms: int, simple: bool
) -> str:
    units = book.units[:depth]
    values = [
        '"orderbook"', _q(code), str(book.timestamp + skew_ms), num(sum(u[2] for u in units)),
        num(sum(u[3] for u in units)), _units(units, simple), _q(stream_type), num(book.level),
    ]  # fmt: skip
    return render(ORDERBOOK_KEYS, values, simple)


def ws_candle(
    kind: str, code: str, candle: Candle, stream_type: str, skew_ms: int, simple: bool
) -> str:
    a = candle.agg
    values = [
        _q(kind), _q(code), _q(iso_utc(candle.start)), _q(iso_kst(candle.start)), num_f(a.open),
        num_f(a.high), num_f(a.low), num_f(a.close), num(a.volume), num2(a.turnover),
        str(a.last_ts + skew_ms), _q(stream_type),
    ]  # fmt: skip
    return render(CANDLE_KEYS, values, simple)


def ws_list_subscriptions(
    ticket: str, items: list[tuple[str, list[str], int | None]], simple: bool
) -> str:
    rendered = []
    for kind, codes, level in items:
        values = [_q(kind), "[" + ",".join(_q(c) for c in codes) + "]"]
        keys: tuple[tuple[str, str], ...] = LIST_ITEM_KEYS[:2]
        if level is not None:
            values.append(num(level))
            keys = LIST_ITEM_KEYS
        rendered.append(render(keys, values, simple))
    return render(
        LIST_KEYS,
        ['"LIST_SUBSCRIPTIONS"', "[" + ",".join(rendered) + "]", json_str(ticket)],
        simple,
    )


def json_str(text: str) -> str:
    """Return ``text`` as a JSON string literal."""
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    if any(ord(ch) < 0x20 for ch in out):
        out = "".join(f"\\u{ord(ch):04x}" if ord(ch) < 0x20 else ch for ch in out)
    return '"' + out + '"'


def ws_error(name: str, message: str) -> str:
    return '{"error":{"name":' + json_str(name) + ',"message":' + json_str(message) + "}}"


# -- REST ---------------------------------------------------------------------------------


def rest_error(status: int, message: str) -> str:
    return '{"error":{"name":' + str(status) + ',"message":' + json_str(message) + "}}"


def rest_market(spec: MarketSpec, details: bool) -> str:
    parts = [
        f'"market":{_q(spec.code)}',
        f'"korean_name":{json_str(spec.korean_name)}',
        f'"english_name":{json_str(spec.english_name)}',
    ]
    if details:
        caution = ",".join(
            f'"{k}":{"true" if v else "false"}'
            for k, v in zip(CAUTION_KEYS, spec.caution, strict=True)
        )
        warning = "true" if spec.warning else "false"
        parts.append(f'"market_event":{{"warning":{warning},"caution":{{{caution}}}}}')
    return "{" + ",".join(parts) + "}"


def rest_ticker(code: str, state: TickerState, skew_ms: int) -> str:
    t = state.trade
    ts = t.ts + skew_ms
    signed = t.price - state.prev_close
    return (
        f'{{"market":{_q(code)},"trade_date":{_q(date_compact(ts))},"trade_time":{_q(time_compact(ts))},'
        f'"trade_date_kst":{_q(date_compact(ts + KST_MS))},'
        f'"trade_time_kst":{_q(time_compact(ts + KST_MS))},'
        f'"trade_timestamp":{ts},"opening_price":{num(state.opening)},"high_price":{num(state.high)},'
        f'"low_price":{num(state.low)},"trade_price":{num(t.price)},'
        f'"prev_closing_price":{num(state.prev_close)},'
        f'"change":{_q(_change(t.price, state.prev_close))},'
        f'"change_price":{num(abs(signed))},"change_rate":{ratio(abs(signed), state.prev_close)},'
        f'"signed_change_price":{num(signed)},'
        f'"signed_change_rate":{ratio(signed, state.prev_close)},'
        f'"trade_volume":{num(t.volume)},"acc_trade_price":{num2(state.acc_turnover)},'
        f'"acc_trade_price_24h":{num2(state.turnover_24h)},"acc_trade_volume":{num(state.acc_volume)},'
        f'"acc_trade_volume_24h":{num(state.volume_24h)},"highest_52_week_price":{num(state.high_52w)},'
        f'"highest_52_week_date":{_q(date_dash(state.high_52w_day))},'
        f'"lowest_52_week_price":{num(state.low_52w)},"lowest_52_week_date":{_q(date_dash(state.low_52w_day))},'
        f'"timestamp":{state.timestamp + skew_ms}}}'
    )


def rest_trade(code: str, trade: Trade, prev_close: int, skew_ms: int) -> str:
    ts = trade.ts + skew_ms
    return (
        f'{{"market":{_q(code)},"trade_date_utc":{_q(date_dash(ts))},"trade_time_utc":{_q(time_colon(ts))},'
        f'"timestamp":{ts},"trade_price":{num(trade.price)},"trade_volume":{num(trade.volume)},'
        f'"prev_closing_price":{num(prev_close)},"change_price":{num(trade.price - prev_close)},'
        f'"ask_bid":{_q(_side(trade.side))},"sequential_id":{trade.sid}}}'
    )


def rest_orderbook(code: str, book: Book, count: int, skew_ms: int) -> str:
    units = book.units[:count]
    return (
        f'{{"market":{_q(code)},"timestamp":{book.timestamp + skew_ms},'
        f'"total_ask_size":{num(sum(u[2] for u in units))},'
        f'"total_bid_size":{num(sum(u[3] for u in units))},'
        f'"orderbook_units":{_units(units, False)},"level":{num(book.level)}}}'
    )


def rest_instrument(code: str, quote: str, tick: int, levels: list[int]) -> str:
    return (
        f'{{"market":{_q(code)},"quote_currency":{_q(quote)},"tick_size":{_q(num(tick))},'
        f'"supported_levels":[{",".join(_q(num(v)) for v in levels)}]}}'
    )


def rest_candle(
    code: str,
    kind: str,
    candle: Candle,
    skew_ms: int,
    *,
    minutes: int = 0,
    converted: int | None = None,
) -> str:
    a = candle.agg
    parts = [
        f'"market":{_q(code)}',
        f'"candle_date_time_utc":{_q(iso_utc(candle.start))}',
        f'"candle_date_time_kst":{_q(iso_kst(candle.start))}',
        f'"opening_price":{num(a.open)}',
        f'"high_price":{num(a.high)}',
        f'"low_price":{num(a.low)}',
        f'"trade_price":{num(a.close)}',
        f'"timestamp":{a.last_ts + skew_ms}',
        f'"candle_acc_trade_price":{num2(a.turnover)}',
        f'"candle_acc_trade_volume":{num(a.volume)}',
    ]
    if kind == "minutes":
        parts.append(f'"unit":{minutes}')
    elif kind == "days":
        signed = a.close - candle.prev_close
        parts.append(f'"prev_closing_price":{num(candle.prev_close)}')
        parts.append(f'"change_price":{num(signed)}')
        parts.append(f'"change_rate":{ratio(signed, candle.prev_close)}')
        if converted is not None:
            parts.append(f'"converted_trade_price":{num(converted)}')
    elif kind in ("weeks", "months", "years"):
        parts.append(f'"first_day_of_period":{_q(date_dash(candle.start))}')
    return "{" + ",".join(parts) + "}"


def truth_trade(trade: Trade) -> str:
    return (
        f'{{"sequential_id":{trade.sid},"trade_price":{num(trade.price)},'
        f'"trade_volume":{num(trade.volume)},"ask_bid":{_q(_side(trade.side))},'
        f'"trade_timestamp":{trade.ts}}}'
    )
