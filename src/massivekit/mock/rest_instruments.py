"""Instruments, trading calendar and a deterministic price path for the mock REST server.

Everything here is a pure function of its arguments (and a seed): the same
ticker at the same instant always has the same price, so trades, quotes,
aggregates and snapshots served by different endpoints agree with each other,
and a test can recompute what the mock must have answered.

Prices are centred on :data:`REFERENCE_PRICES` and wander by at most a few per
cent (slow sine components for weeks and months, a piecewise-linear intraday
walk, a little per-minute noise). Exchange-listed instruments trade in New York
sessions (stocks 04:00-20:00 ET with extended hours, options and indices
09:30-16:00 ET, weekdays); crypto trades around the clock, forex on weekdays.
"""

from __future__ import annotations

import enum
import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Final

NS_PER_S: Final = 1_000_000_000
NS_PER_MS: Final = 1_000_000
NS_PER_DAY: Final = 86_400 * NS_PER_S
_MASK64: Final = (1 << 64) - 1
EPOCH: Final = date(1970, 1, 1)

REFERENCE_PRICES: Final[dict[str, float]] = {
    "AAPL": 190.0,
    "MSFT": 420.0,
    "SPY": 560.0,
    "QQQ": 480.0,
    "TSLA": 250.0,
    "NVDA": 120.0,
    "AMZN": 185.0,
    "GOOGL": 170.0,
    "META": 500.0,
    "IWM": 210.0,
    "X:BTCUSD": 65000.0,
    "X:ETHUSD": 3400.0,
    "X:SOLUSD": 150.0,
    "C:EURUSD": 1.08,
    "C:GBPUSD": 1.27,
    "C:USDJPY": 150.0,
    "I:SPX": 5600.0,
    "I:NDX": 19500.0,
    "I:DJI": 40000.0,
    "I:VIX": 15.0,
}
"""Typical price per instrument, in REST ticker form (``X:BTCUSD``, ``C:EURUSD``).

The stream simulator aligns with these; :func:`reference_price` also accepts
stream forms (``BTC-USD``, ``EUR/USD``) and invents a stable level for others.
"""

WELL_KNOWN: Final = ("AAPL", "MSFT", "SPY", "QQQ", "TSLA", "NVDA", "AMZN", "GOOGL", "META")
COMPANY_NAMES: Final[dict[str, str]] = {
    "AAPL": "Apple Inc.",
    "MSFT": "Microsoft Corp",
    "SPY": "SPDR S&P 500 ETF Trust",
    "QQQ": "Invesco QQQ Trust, Series 1",
    "TSLA": "Tesla, Inc. Common Stock",
    "NVDA": "Nvidia Corp",
    "AMZN": "Amazon.com, Inc.",
    "GOOGL": "Alphabet Inc. Class A",
    "META": "Meta Platforms, Inc.",
    "IWM": "iShares Russell 2000 ETF",
}
_HOT: Final = frozenset({"AAPL", "MSFT", "SPY", "QQQ", "TSLA", "NVDA", "AMZN"})
HOT_TRADES_PER_DAY: Final = 1_000_000
"""Trades in one session of a hot symbol (AAPL, SPY, ...): big enough to make paging real."""


class AssetClass(enum.StrEnum):
    """What a ticker is, read from its prefix (``O:``, ``X:``, ``C:``, ``I:``, none)."""

    STOCKS = "stocks"
    OPTIONS = "options"
    CRYPTO = "crypto"
    FX = "fx"
    INDICES = "indices"


_PREFIXES: Final = {
    "O:": AssetClass.OPTIONS,
    "X:": AssetClass.CRYPTO,
    "C:": AssetClass.FX,
    "I:": AssetClass.INDICES,
}


def asset_class(ticker: str) -> AssetClass:
    """The asset class of a REST ticker (``O:SPY241220P00720000`` is an option)."""
    return _PREFIXES.get(ticker[:2].upper(), AssetClass.STOCKS)


def canonical_ticker(symbol: str) -> str:
    """Map stream spellings to REST: ``BTC-USD`` to ``X:BTCUSD``, ``EUR/USD`` to ``C:EURUSD``."""
    prefix = symbol[:2].upper()
    body = symbol[2:] if prefix in ("X:", "C:") else symbol
    if "-" in body and prefix != "C:":
        return "X:" + body.replace("-", "").upper()
    if "/" in body:
        return "C:" + body.replace("/", "").upper()
    return symbol


# --- hashing ------------------------------------------------------------------------------


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a cheap, well-spread hash of a 64-bit integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def seed_of(*parts: object) -> int:
    """A stable 64-bit seed from any printable parts (unlike ``hash()``, not salted per run)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def unit(h: int) -> float:
    """Map a 64-bit hash to a float in [0, 1)."""
    return (h >> 11) * (1.0 / (1 << 53))


# --- options --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptionContract:
    """The parts of an OCC option ticker such as ``O:SPY241220P00720000``."""

    underlying: str
    expiration: date
    contract_type: str  # "call" or "put"
    strike: float

    @property
    def ticker(self) -> str:
        """The REST ticker of this contract."""
        right = "C" if self.contract_type == "call" else "P"
        strike = round(self.strike * 1000)
        return f"O:{self.underlying}{self.expiration:%y%m%d}{right}{strike:08d}"


def parse_option(ticker: str) -> OptionContract | None:
    """Split an option ticker into its parts; ``None`` when it is not one."""
    body = ticker[2:] if ticker.upper().startswith("O:") else ticker
    if len(body) < 16 or body[-9] not in "CP" or not body[-8:].isdigit():
        return None
    try:
        expiration = datetime.strptime(body[-15:-9], "%y%m%d").date()
    except ValueError:
        return None
    return OptionContract(
        underlying=body[:-15],
        expiration=expiration,
        contract_type="call" if body[-9] == "C" else "put",
        strike=int(body[-8:]) / 1000,
    )


# --- calendar -----------------------------------------------------------------------------


def _nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))


def et_offset_s(day: date) -> int:
    """UTC offset of New York on ``day`` (US rules since 2007: second Sunday of March
    to first Sunday of November is daylight time)."""
    dst = _nth_sunday(day.year, 3, 2) <= day < _nth_sunday(day.year, 11, 1)
    return -4 * 3600 if dst else -5 * 3600


def day_start_ns(day: date, cls: AssetClass) -> int:
    """Midnight of ``day`` in the instrument's home time zone (New York, or UTC for
    crypto and forex), in Unix nanoseconds. Date filters resolve through this."""
    utc_midnight = (day - EPOCH).days * NS_PER_DAY
    if cls in (AssetClass.CRYPTO, AssetClass.FX):
        return utc_midnight
    return utc_midnight - et_offset_s(day) * NS_PER_S


def trades_on(day: date, cls: AssetClass) -> bool:
    """Whether the instrument trades at all on ``day`` (no holiday calendar: weekends only)."""
    return cls is AssetClass.CRYPTO or day.weekday() < 5


_SESSIONS_S: Final = {
    AssetClass.STOCKS: (4 * 3600, 20 * 3600),
    AssetClass.OPTIONS: (9 * 3600 + 1800, 16 * 3600),
    AssetClass.INDICES: (9 * 3600 + 1800, 16 * 3600),
    AssetClass.CRYPTO: (0, 24 * 3600),
    AssetClass.FX: (0, 24 * 3600),
}
REGULAR_S: Final = (9 * 3600 + 1800, 16 * 3600)


def session_ns(day: date, cls: AssetClass) -> tuple[int, int] | None:
    """``[start, end)`` of the day's trading session in Unix ns, or ``None`` on a day off."""
    if not trades_on(day, cls):
        return None
    base = day_start_ns(day, cls)
    start, end = _SESSIONS_S[cls]
    return base + start * NS_PER_S, base + end * NS_PER_S


def utc_date(t_ns: int) -> date:
    """The UTC calendar date of a Unix nanosecond timestamp."""
    return EPOCH + timedelta(days=t_ns // NS_PER_DAY)


def iso_ns(t_ns: int) -> str:
    """RFC 3339 UTC text of a Unix nanosecond timestamp, as the service writes it."""
    return datetime.fromtimestamp(t_ns // NS_PER_S, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def previous_trading_day(day: date, cls: AssetClass) -> date:
    """The last day before ``day`` on which the instrument traded."""
    day -= timedelta(days=1)
    while not trades_on(day, cls):
        day -= timedelta(days=1)
    return day


# --- prices -------------------------------------------------------------------------------


def price_decimals(ticker: str) -> int:
    """Decimal places of the instrument's tick: 5 for forex (3 for yen pairs), else 2."""
    cls = asset_class(ticker)
    if cls is AssetClass.FX:
        return 3 if "JPY" in ticker.upper() else 5
    return 4 if reference_price(ticker) < 1 else 2


@lru_cache(maxsize=4096)
def reference_price(symbol: str) -> float:
    """The level an instrument's price wanders around.

    Known tickers use :data:`REFERENCE_PRICES`; options derive from their
    underlying and strike; anything else gets a stable, plausible level.
    """
    ticker = canonical_ticker(symbol)
    if ticker in REFERENCE_PRICES:
        return REFERENCE_PRICES[ticker]
    option = parse_option(ticker)
    if option is not None:
        return _option_value(option, reference_price(option.underlying), option.expiration, 30)
    u = unit(seed_of("reference", ticker))
    low, high = _RANGES[asset_class(ticker)]
    return round(math.exp(math.log(low) + u * (math.log(high) - math.log(low))), 2)


_RANGES: Final = {
    AssetClass.STOCKS: (8.0, 400.0),
    AssetClass.OPTIONS: (0.5, 20.0),
    AssetClass.CRYPTO: (0.2, 300.0),
    AssetClass.FX: (0.6, 1.6),
    AssetClass.INDICES: (800.0, 12000.0),
}


def _option_value(option: OptionContract, spot: float, on: date, days_floor: int = 0) -> float:
    """A rough option value: intrinsic plus a Gaussian-shaped time value (sigma 25%)."""
    days = max((option.expiration - on).days, days_floor)
    years = max(days, 0) / 365.0
    intrinsic = spot - option.strike if option.contract_type == "call" else option.strike - spot
    width = 0.25 * math.sqrt(years)
    time_value = 0.0
    if width > 0:
        moneyness = math.log(spot / option.strike) / width
        time_value = 0.4 * spot * width * math.exp(-0.5 * moneyness * moneyness)
    return max(intrinsic, 0.0) + max(time_value, 0.01)


_SLOW: Final = ((365.25, 0.05), (91.0, 0.025), (29.5, 0.015), (7.0, 0.008))
_KNOT_NS: Final = 15 * 60 * NS_PER_S
_KNOT_AMPLITUDE: Final = 0.004
_NOISE_NS: Final = 60 * NS_PER_S
_NOISE_AMPLITUDE: Final = 0.0006


@lru_cache(maxsize=65536)
def _slow_factor(ticker: str, day_index: int) -> float:
    # Computed once per ticker and day: month- and year-scale drift.
    phases = seed_of("phase", ticker)
    total = 0.0
    for k, (period_days, amplitude) in enumerate(_SLOW):
        phase = unit(mix64(phases + k)) * 2 * math.pi
        total += amplitude * math.sin(2 * math.pi * day_index / period_days + phase)
    return math.exp(total)


def _knot(key: int, index: int) -> float:
    return (unit(mix64(key ^ (index * 0x9E3779B97F4A7C15 & _MASK64))) - 0.5) * 2 * _KNOT_AMPLITUDE


@lru_cache(maxsize=1024)
def _ticker_key(ticker: str) -> int:
    return seed_of("walk", ticker)


def price_at(ticker: str, t_ns: int) -> float:
    """The instrument's price at Unix nanosecond ``t_ns``, unrounded.

    Continuous within a minute (a 15-minute piecewise-linear walk plus a
    per-minute step of noise), so bars built from it have sane o/h/l/c.
    """
    option = parse_option(ticker)
    if option is not None:
        spot = price_at(option.underlying, t_ns)
        return _option_value(option, spot, utc_date(t_ns))
    key = _ticker_key(ticker)
    knot, offset = divmod(t_ns, _KNOT_NS)
    frac = offset / _KNOT_NS
    walk = _knot(key, knot) * (1 - frac) + _knot(key, knot + 1) * frac
    noise = (unit(mix64(key + t_ns // _NOISE_NS)) - 0.5) * 2 * _NOISE_AMPLITUDE
    slow = _slow_factor(ticker, t_ns // NS_PER_DAY)
    return reference_price(ticker) * slow * (1 + walk + noise)


def rounded_price(ticker: str, t_ns: int) -> float:
    """:func:`price_at` rounded to the instrument's tick (never below one tick)."""
    decimals = price_decimals(ticker)
    return max(round(price_at(ticker, t_ns), decimals), 10.0**-decimals)


def trades_per_day(ticker: str) -> int:
    """How many trades one session of ``ticker`` holds (1,000,000 for hot symbols)."""
    if ticker in _HOT:
        return HOT_TRADES_PER_DAY
    cls = asset_class(ticker)
    u = unit(seed_of("activity", ticker))
    if cls is AssetClass.OPTIONS:
        return 200 + int(u * 4800)
    if ticker == "X:BTCUSD":
        return 400_000
    return 20_000 + int(u * 280_000)


def daily_volume(ticker: str) -> int:
    """Shares (or coins, or contracts) traded in one session."""
    cls = asset_class(ticker)
    if cls is AssetClass.CRYPTO:
        return max(1, int(trades_per_day(ticker) * 0.05 * 65000 / reference_price(ticker)))
    if cls is AssetClass.OPTIONS:
        return trades_per_day(ticker) * 7
    return trades_per_day(ticker) * 57
