"""The market list: codes, names, tick-size rules and each market's character.

Prices and sizes are integers in units of 1e-8 (``SCALE``) everywhere in the simulator, so every
value is exact and prints without float noise.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from simulator._rng import hash_ints, text_key, unit_float

SCALE = 100_000_000
"""Prices and volumes are integers counting 1e-8 units."""

CODE_RE = re.compile(r"^([A-Z]{2,6})-([A-Z0-9]{1,20})$")

CAUTION_KEYS = (
    "PRICE_FLUCTUATIONS",
    "TRADING_VOLUME_SOARING",
    "DEPOSIT_AMOUNT_SOARING",
    "GLOBAL_PRICE_DIFFERENCES",
    "CONCENTRATION_OF_SMALL_ACCOUNTS",
)

# KRW tick table in force since 2025-07-31: (lower bound, tick), both in 1e-8 units, descending.
_KRW_TICKS = (
    (1_000_000 * SCALE, 1000 * SCALE),
    (500_000 * SCALE, 500 * SCALE),
    (100_000 * SCALE, 100 * SCALE),
    (50_000 * SCALE, 50 * SCALE),
    (10_000 * SCALE, 10 * SCALE),
    (5_000 * SCALE, 5 * SCALE),
    (100 * SCALE, 1 * SCALE),
    (10 * SCALE, SCALE // 10),
    (1 * SCALE, SCALE // 100),
    (SCALE // 10, SCALE // 1000),
    (SCALE // 100, SCALE // 10_000),
    (SCALE // 1000, SCALE // 100_000),
    (SCALE // 10_000, SCALE // 1_000_000),
    (0, 10),
)
_USDT_TICKS = (
    (10 * SCALE, SCALE // 100),
    (1 * SCALE, SCALE // 1000),
    (SCALE // 10, SCALE // 10_000),
    (SCALE // 100, SCALE // 100_000),
    (SCALE // 1000, SCALE // 1_000_000),
    (SCALE // 10_000, SCALE // 10_000_000),
    (0, 1),
)
_BTC_TICKS = ((0, 1),)


def tick_table(quote: str) -> tuple[tuple[int, int], ...]:
    """Return the (lower bound, tick) rows of a quote currency, highest first."""
    if quote == "KRW":
        return _KRW_TICKS
    if quote == "BTC":
        return _BTC_TICKS
    return _USDT_TICKS


_BANDS: dict[int, tuple[list[int], list[int]]] = {}


def tick_at(table: tuple[tuple[int, int], ...], price: int) -> int:
    """Return the tick of the price band that ``price`` falls in."""
    bands = _BANDS.get(id(table))
    if bands is None:
        bands = _BANDS[id(table)] = (
            [low for low, _ in reversed(table)],
            [t for _, t in reversed(table)],
        )
    return bands[1][max(0, bisect_right(bands[0], price) - 1)]


def price_up(table: tuple[tuple[int, int], ...], price: int, steps: int) -> int:
    """Return the valid price ``steps`` ticks above the valid ``price``."""
    for _ in range(steps):
        price += tick_at(table, price)
    return price


def price_down(table: tuple[tuple[int, int], ...], price: int, steps: int) -> int:
    """Return the valid price ``steps`` ticks below ``price`` (0 when not positive)."""
    for _ in range(steps):
        price -= tick_at(table, price - 1)
        if price <= 0:
            return 0
    return price


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """What one market is: its names and the character of its simulated trading."""

    code: str
    quote: str
    base: str
    korean_name: str
    english_name: str
    key: int
    base_price: int
    trades_per_hour: float
    daily_vol_ppb: int
    spread_ticks: int
    lag_ms: int
    notional: int
    warning: bool
    caution: tuple[bool, ...]


# (base, korean name, english name, KRW price, KRW trades per hour); the busy head of the list.
_KNOWN: tuple[tuple[str, str, str, int, int], ...] = (
    ("BTC", "비트코인", "Bitcoin", 148_000_000, 2200),
    ("ETH", "이더리움", "Ethereum", 5_200_000, 1500),
    ("XRP", "엑스알피(리플)", "XRP", 3_100, 1800),
    ("USDT", "테더", "Tether", 1_420, 1100),
    ("SOL", "솔라나", "Solana", 280_000, 400),
    ("DOGE", "도지코인", "Dogecoin", 330, 350),
    ("ADA", "에이다", "Cardano", 1_100, 250),
    ("TRX", "트론", "TRON", 420, 120),
    ("LINK", "체인링크", "Chainlink", 30_000, 120),
    ("AVAX", "아발란체", "Avalanche", 40_000, 110),
    ("DOT", "폴카닷", "Polkadot", 7_000, 90),
    ("BCH", "비트코인캐시", "Bitcoin Cash", 700_000, 90),
    ("ETC", "이더리움클래식", "Ethereum Classic", 30_000, 80),
    ("SUI", "수이", "Sui", 5_000, 160),
    ("XLM", "스텔라루멘", "Stellar Lumens", 500, 100),
    ("HBAR", "헤데라", "Hedera", 300, 90),
    ("SHIB", "시바이누", "Shiba Inu", 0, 80),
    ("NEAR", "니어프로토콜", "NEAR Protocol", 4_000, 70),
    ("APT", "앱토스", "Aptos", 8_000, 60),
    ("SAND", "샌드박스", "The Sandbox", 400, 50),
    ("ATOM", "코스모스", "Cosmos", 6_000, 50),
    ("ARB", "아비트럼", "Arbitrum", 600, 60),
    ("SEI", "세이", "Sei", 400, 50),
    ("AAVE", "에이브", "Aave", 400_000, 40),
    ("UNI", "유니스왑", "Uniswap", 14_000, 40),
    ("ONDO", "온도파이낸스", "Ondo Finance", 1_300, 70),
    ("STX", "스택스", "Stacks", 1_000, 30),
    ("ALGO", "알고랜드", "Algorand", 300, 30),
    ("EOS", "이오스", "EOS", 1_000, 30),
    ("PEPE", "페페", "Pepe", 0, 90),
)
# SHIB and PEPE trade below one won.
_SUB_WON = {"SHIB": SCALE // 50, "PEPE": SCALE // 60}

# Further real base symbols for the quiet tail (names generated from the symbol).
_TAIL = (  # noqa: SIM905
    "IMX GRT MANA AXS THETA FLOW CHZ ENJ BAT ZIL QTUM NEO ICX ONT WAVES IOST KAVA CRO HIVE "
    "STEEM STORJ SNT MTL ARK LSK SC ANKR CVC GLM POWR LOOM KNC ZRX OMG SXP MED MBL BORA "
    "META AERGO ORBS CELO MINA JST TFUEL T1 GAS FCT2 HUNT STPT TT MLK SSX PUNDIX QKC AHT "
    "CBK SBD GRS XEC BTT DKA HPO ELF XTZ IQ ASTR BLUR EGLD CTC GMT ID MASK MOC MVL PYTH "
    "TAIKO ZETA OM JUP W ENS STRK ZRO BIGTIME AUCTION CKB G POLYX SOLVE IOTA GAME2 BOUNTY "
    "XEM ATH UXLINK VANA MEW BONK ANIME LAYER"
).split()

_HANGUL = {
    "A": "에이", "B": "비", "C": "씨", "D": "디", "E": "이", "F": "에프", "G": "지",
    "H": "에이치", "I": "아이", "J": "제이", "K": "케이", "L": "엘", "M": "엠", "N": "엔",
    "O": "오", "P": "피", "Q": "큐", "R": "알", "S": "에스", "T": "티", "U": "유", "V": "브이",
    "W": "더블유", "X": "엑스", "Y": "와이", "Z": "지",
}  # fmt: skip


def _generated_names(base: str) -> tuple[str, str]:
    korean = "".join(_HANGUL.get(ch, ch) for ch in base)
    english = base[0] + base[1:].lower() + (" Network" if text_key(base) % 3 == 0 else "")
    return korean, english


def _tail_price_krw(base: str) -> int:
    # A log-uniform price between 2 and 100,000 won, from integer steps of 10**(1/8).
    steps = text_key("price:" + base) % 38
    price = 2 * SCALE
    for _ in range(steps):
        price = price * 133_352 // 100_000
    return price


def build_spec(
    code: str,
    *,
    korean_name: str | None = None,
    english_name: str | None = None,
    krw_btc_price: int = 148_000_000 * SCALE,
    krw_usdt_price: int = 1_420 * SCALE,
) -> MarketSpec:
    """Return the spec of ``code``; unknown bases get generated names, prices and activity.

    Raises:
        ValueError: ``code`` is not ``QUOTE-BASE`` in upper case.
    """
    match = CODE_RE.match(code)
    if match is None:
        raise ValueError(
            f"{code!r} is not a market code: write QUOTE-BASE in upper case, e.g. KRW-BTC"
        )
    quote, base = match.group(1), match.group(2)
    key = text_key(code)
    known = {row[0]: row for row in _KNOWN}
    if base in known:
        _, kor, eng, won, krw_rate = known[base]
        krw_price = _SUB_WON.get(base, won * SCALE)
        rank = [row[0] for row in _KNOWN].index(base)
    else:
        kor, eng = _generated_names(base)
        krw_price = _tail_price_krw(base)
        krw_rate = 3 + text_key("rate:" + base) % 28
        rank = 100
    if quote == "KRW":
        price = krw_price
        rate = float(krw_rate)
        notional = 60_000 * SCALE
    elif quote == "BTC":
        price = max(1, krw_price * SCALE // krw_btc_price)
        rate = max(0.5, krw_rate / 40.0)
        notional = 40_000 * SCALE * SCALE // krw_btc_price
    else:
        price = max(1, krw_price * SCALE // krw_usdt_price)
        rate = max(0.5, krw_rate / 25.0)
        notional = 40 * SCALE
    if code == "USDT-BTC":
        rate = 60.0
    vol_ppb = (
        25_000_000 if rank < 4 else 45_000_000 + int(unit_float(hash_ints(key, 7)) * 30_000_000)
    )
    spread = 1 if rank < 8 or quote == "BTC" else 1 + hash_ints(key, 11) % 3
    caution = tuple(hash_ints(key, 20 + i) % 41 == 0 for i in range(len(CAUTION_KEYS)))
    return MarketSpec(
        code=code,
        quote=quote,
        base=base,
        korean_name=korean_name if korean_name is not None else kor,
        english_name=english_name if english_name is not None else eng,
        key=key,
        base_price=price,
        trades_per_hour=rate,
        daily_vol_ppb=vol_ppb,
        spread_ticks=spread,
        lag_ms=8 + hash_ints(key, 3) % 40,
        notional=notional,
        warning=hash_ints(key, 5) % 29 == 0 and rank >= 4,
        caution=caution,
    )


def default_codes() -> list[str]:
    """Return the default market list: about 300 codes across KRW, BTC and USDT, busiest first."""
    bases = [row[0] for row in _KNOWN] + list(_TAIL)
    krw = [f"KRW-{b}" for b in bases]
    btc = [f"BTC-{b}" for b in bases if b not in ("BTC", "USDT")]
    usdt = [f"USDT-{b}" for b in bases[:40] if b != "USDT"]
    return krw + btc + usdt
