"""The instruments a mock cluster trades: well-known names plus a long synthetic tail.

A :class:`Universe` is a pure, deterministic value: the same ``(market, seed, tail,
as_of)`` always yields the same instruments, in the same order, with the same
reference prices. Order is by activity, hottest first, and every instrument carries
a Zipf weight so a simulator can skew traffic the way a real feed is skewed (a few
names make most of the prints, thousands make a few each).

Symbols are spelt as the wire spells them: ``AAPL``, ``O:SPY251107C00560000``
(OCC), ``EUR/USD`` (forex ``C`` events), ``BTC-USD`` (crypto), ``I:SPX``, ``ESZ5``.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from massivekit.config import Market

__all__ = [
    "DEFAULT_AS_OF",
    "DEFAULT_TAIL",
    "REFERENCE_PRICES",
    "Instrument",
    "Universe",
    "occ_symbol",
    "synthetic_stocks",
]

# Futures codes such as ESZ5 and CLF6 are front months seen from here; a fixed date
# keeps option chains and futures months reproducible whatever day the tests run.
DEFAULT_AS_OF = dt.date(2025, 11, 3)

DEFAULT_TAIL: Mapping[Market, int] = MappingProxyType(
    {
        Market.STOCKS: 3000,
        Market.OPTIONS: 2000,
        Market.FOREX: 150,
        Market.CRYPTO: 300,
        Market.INDICES: 200,
        Market.FUTURES: 120,
    }
)

# --- the well-known instruments, most active first ------------------------------------

# (ticker, reference price, SIP tape: 1 NYSE, 2 Arca/American, 3 Nasdaq)
_STOCKS: tuple[tuple[str, float, int], ...] = (
    ("SPY", 560.0, 2), ("AAPL", 190.0, 3), ("TSLA", 250.0, 3), ("NVDA", 120.0, 3),
    ("QQQ", 480.0, 3), ("MSFT", 420.0, 3), ("AMZN", 185.0, 3), ("META", 560.0, 3),
    ("AMD", 150.0, 3), ("GOOGL", 165.0, 3), ("IWM", 220.0, 2), ("PLTR", 40.0, 3),
    ("GOOG", 166.0, 3), ("NFLX", 700.0, 3), ("AVGO", 170.0, 3), ("SOFI", 10.0, 3),
    ("INTC", 22.0, 3), ("BAC", 42.0, 1), ("F", 11.0, 1), ("JPM", 220.0, 1),
    ("TQQQ", 70.0, 3), ("SQQQ", 8.0, 3), ("XLF", 47.0, 2), ("SMCI", 40.0, 3),
    ("COIN", 230.0, 3), ("MARA", 20.0, 3), ("NIO", 5.0, 1), ("AAL", 14.0, 3),
    ("XOM", 115.0, 1), ("UBER", 72.0, 1), ("DIS", 95.0, 1), ("BA", 160.0, 1),
    ("WMT", 80.0, 1), ("KO", 62.0, 1), ("PFE", 27.0, 1), ("T", 22.0, 1),
    ("V", 290.0, 1), ("MA", 510.0, 1), ("UNH", 560.0, 1), ("COST", 900.0, 3),
    ("HD", 400.0, 1), ("CRM", 300.0, 1), ("ORCL", 170.0, 1), ("CSCO", 57.0, 3),
    ("GME", 25.0, 1), ("AMC", 4.5, 1), ("TLT", 95.0, 3), ("GLD", 240.0, 2),
    ("HYG", 80.0, 2), ("EEM", 44.0, 2), ("DIA", 420.0, 2), ("VOO", 515.0, 2),
    ("BRK.B", 460.0, 1),
)  # fmt: skip

# (root, spot, implied vol, strike step, strikes either side, lists dailies)
_OPTION_ROOTS: tuple[tuple[str, float, float, float, int, bool], ...] = (
    ("SPY", 560.0, 0.15, 1.0, 25, True), ("QQQ", 480.0, 0.18, 1.0, 25, True),
    ("TSLA", 250.0, 0.55, 2.5, 16, False), ("NVDA", 120.0, 0.50, 1.0, 16, False),
    ("AAPL", 190.0, 0.25, 2.5, 12, False), ("AMZN", 185.0, 0.30, 2.5, 12, False),
    ("IWM", 220.0, 0.20, 1.0, 12, False), ("META", 560.0, 0.30, 5.0, 10, False),
    ("MSFT", 420.0, 0.22, 5.0, 10, False), ("AMD", 150.0, 0.45, 2.5, 10, False),
    ("PLTR", 40.0, 0.60, 1.0, 10, False), ("GOOGL", 165.0, 0.28, 2.5, 10, False),
)  # fmt: skip

# Units of each currency per US dollar; a pair A/B is priced rate[B] / rate[A].
_USD_RATES: Mapping[str, float] = MappingProxyType(
    {
        "USD": 1.0, "EUR": 1 / 1.08, "JPY": 150.0, "GBP": 1 / 1.27, "CHF": 0.88,
        "AUD": 1 / 0.66, "CAD": 1.36, "NZD": 1 / 0.6, "CNH": 7.25, "MXN": 19.5,
        "SGD": 1.34, "HKD": 7.8, "ZAR": 18.2, "TRY": 34.2, "SEK": 10.6, "NOK": 10.8,
        "DKK": 6.9, "PLN": 4.0, "CZK": 23.3, "HUF": 365.0, "ILS": 3.7, "INR": 84.0,
        "KRW": 1380.0, "BRL": 5.6, "THB": 34.0, "TWD": 32.0, "PHP": 58.0, "SAR": 3.75,
        "AED": 3.6725, "CLP": 940.0, "COP": 4100.0, "IDR": 15800.0,
    }
)  # fmt: skip

_FOREX_MAJORS: tuple[tuple[str, str], ...] = (
    ("EUR", "USD"), ("USD", "JPY"), ("GBP", "USD"), ("USD", "CHF"), ("AUD", "USD"),
    ("USD", "CAD"), ("NZD", "USD"), ("EUR", "GBP"), ("EUR", "JPY"), ("GBP", "JPY"),
    ("USD", "CNH"), ("USD", "MXN"), ("EUR", "CHF"), ("AUD", "JPY"), ("USD", "SGD"),
    ("USD", "HKD"), ("USD", "ZAR"), ("USD", "TRY"), ("USD", "SEK"), ("USD", "NOK"),
)  # fmt: skip

# (pair, reference price, typical trade size, typical spread in price units)
_CRYPTO: tuple[tuple[str, float, float, int], ...] = (
    ("BTC-USD", 65000.0, 0.02, 50), ("ETH-USD", 3400.0, 0.5, 10),
    ("SOL-USD", 150.0, 5.0, 20), ("BTC-USDT", 65010.0, 0.02, 60),
    ("XRP-USD", 0.55, 1000.0, 20), ("DOGE-USD", 0.12, 5000.0, 20),
    ("ETH-BTC", 0.0523, 0.5, 10), ("BTC-EUR", 60200.0, 0.01, 200),
    ("ETH-USDT", 3401.0, 0.5, 20), ("ADA-USD", 0.45, 1000.0, 30),
    ("AVAX-USD", 30.0, 10.0, 50), ("LINK-USD", 14.0, 20.0, 30),
    ("LTC-USD", 75.0, 3.0, 20), ("DOT-USD", 5.5, 50.0, 30),
    ("SHIB-USD", 0.0000245, 5_000_000.0, 10), ("UNI-USD", 9.0, 30.0, 40),
)  # fmt: skip

_INDICES: tuple[tuple[str, float], ...] = (
    ("I:SPX", 5600.0), ("I:NDX", 19500.0), ("I:VIX", 15.0), ("I:DJI", 41500.0),
    ("I:RUT", 2200.0), ("I:COMP", 17800.0), ("I:XSP", 560.0), ("I:VIX9D", 14.0),
    ("I:VVIX", 90.0), ("I:VIX3M", 17.0), ("I:OEX", 2550.0), ("I:SOX", 5000.0),
    ("I:NYA", 19000.0), ("I:MID", 3000.0), ("I:SML", 1400.0), ("I:XAU", 150.0),
)  # fmt: skip

# (root, price, decimals, tick in 10**-decimals, listed months, venue, months to roll)
_FUTURES_ROOTS: tuple[tuple[str, float, int, int, str, str, int], ...] = (
    ("ES", 5630.0, 2, 25, "HMUZ", "cme", 1), ("NQ", 19600.0, 2, 25, "HMUZ", "cme", 1),
    ("CL", 70.0, 2, 1, "FGHJKMNQUVXZ", "nymex", 2), ("GC", 2650.0, 1, 1, "GJMQVZ", "comex", 1),
    ("RTY", 2210.0, 1, 1, "HMUZ", "cme", 1), ("ZN", 110.5, 6, 15625, "HMUZ", "cbot", 1),
    ("YM", 41600.0, 0, 1, "HMUZ", "cbot", 1), ("NG", 3.0, 3, 1, "FGHJKMNQUVXZ", "nymex", 2),
    ("6E", 1.08, 5, 5, "HMUZ", "cme", 1), ("ZB", 117.0, 5, 3125, "HMUZ", "cbot", 1),
    ("SI", 31.0, 3, 5, "HKNUZ", "comex", 1), ("ZC", 430.0, 2, 25, "HKNUZ", "cbot", 1),
    ("ZS", 1000.0, 2, 25, "FHKNQUX", "cbot", 1), ("HG", 4.2, 4, 5, "HKNUZ", "comex", 1),
    ("ZW", 560.0, 2, 25, "HKNUZ", "cbot", 1), ("RB", 2.1, 4, 1, "FGHJKMNQUVXZ", "nymex", 2),
    ("HO", 2.3, 4, 1, "FGHJKMNQUVXZ", "nymex", 2),
)  # fmt: skip

# Massive's exchange ids: stocks (4 is the FINRA TRF, which prints but never quotes),
# OPRA venues 300-325, crypto venues (1 Coinbase, 2 Bitfinex, 6 Bitstamp, 23 Kraken).
_STOCK_EXCHANGES = (4, 12, 11, 10, 19, 8, 21, 15, 17, 18, 7, 1, 2, 9, 3)
_OPTION_EXCHANGES = (302, 308, 312, 313, 316, 322, 323, 300, 301, 303, 307, 309, 315, 319, 325)
_CRYPTO_EXCHANGES = (1, 2, 6, 23)
# Trade conditions: 37 odd lot, 14/41 intermarket sweep, 12 Form T (extended hours).
_STOCK_CONDITIONS = (37, 14, 41, 12)
_OPTION_CONDITIONS = (209, 219, 227, 229, 233)

REFERENCE_PRICES: Mapping[str, float] = MappingProxyType(
    {
        **{sym: px for sym, px, _ in _STOCKS},
        **{pair: px for pair, px, _, _ in _CRYPTO},
        **dict(_INDICES),
        **{f"{a}/{b}": round(_USD_RATES[b] / _USD_RATES[a], 5) for a, b in _FOREX_MAJORS},
        **{f"{r}": px for r, px, *_ in _FUTURES_ROOTS},
    }
)
"""Reference levels of the well-known instruments (futures by root), agreeing with the
REST mock's levels (AAPL 190, SPY 560, BTC-USD 65000, EUR/USD 1.08, I:SPX 5600, ...)."""

_ZIPF_S = 1.05  # a little steeper than 1: the top names take a real market's share


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable instrument and the figures a simulator needs to make it move.

    A simulator keeps prices as integers of ``10**-decimals``, so the tick is given
    in those units; :attr:`tick_size` and :attr:`price_units` convert.
    """

    symbol: str
    market: Market
    price: float
    """Reference price: the level the simulator starts from and stays near."""
    decimals: int
    tick: int
    """Minimum price increment, in units of ``10**-decimals``."""
    spread: int
    """Typical quoted spread, in ticks (at least 1)."""
    size: float
    """Typical trade size (shares, contracts, coins)."""
    weight: float
    """Relative activity; the weights of a universe sum to 1."""
    exchanges: tuple[int, ...]
    conditions: tuple[int, ...]
    tape: int = 0
    """SIP tape for stocks (1 NYSE, 2 Arca/American, 3 Nasdaq), 0 elsewhere."""
    underlying: str | None = None
    """The option's underlying ticker, or the futures root."""
    expiration: dt.date | None = None
    strike: float | None = None
    contract_type: str | None = None
    """``"call"`` or ``"put"`` for options, else ``None``."""

    @property
    def tick_size(self) -> float:
        """The minimum price increment as a price."""
        return self.tick / 10.0**self.decimals

    @property
    def price_units(self) -> int:
        """The reference price in units of ``10**-decimals``, on the tick grid, >= 1 tick."""
        return max(1, round(self.price * 10.0**self.decimals / self.tick)) * self.tick


class Universe:
    """The ordered, hottest-first instruments of one cluster."""

    __slots__ = ("_by_symbol", "as_of", "instruments", "market", "seed")

    def __init__(
        self, market: Market, instruments: list[Instrument], seed: int, as_of: dt.date
    ) -> None:
        """Wrap instruments already built; :meth:`for_market` is the usual way in.

        Raises:
            ValueError: the list is empty, or two instruments share a symbol.
        """
        if not instruments:
            raise ValueError("a universe needs at least one instrument")
        self.market = market
        self.seed = seed
        self.as_of = as_of
        self.instruments: tuple[Instrument, ...] = tuple(instruments)
        self._by_symbol = {inst.symbol: inst for inst in instruments}
        if len(self._by_symbol) != len(instruments):
            raise ValueError("duplicate symbols in universe")

    @classmethod
    def for_market(
        cls,
        market: Market,
        *,
        seed: int = 0,
        tail: int | None = None,
        as_of: dt.date = DEFAULT_AS_OF,
    ) -> Universe:
        """Build the universe of one cluster.

        Args:
            market: the cluster; a futures venue (``futures/cme``) keeps its own products.
            seed: drives the synthetic tail (names, levels) and nothing else.
            tail: how many synthetic instruments follow the well-known ones (default
                :data:`DEFAULT_TAIL` of the cluster's family).
            as_of: the trading day; option expiries and futures months follow from it.

        Returns:
            The universe, hottest instrument first, Zipf weights summing to 1.

        Raises:
            ValueError: ``tail`` is negative.
        """
        family = market.family
        n_tail = DEFAULT_TAIL[family] if tail is None else tail
        if n_tail < 0:
            raise ValueError("tail must be >= 0")
        rng = random.Random(f"massivekit-universe:{market.value}:{seed}")
        rows = _BUILDERS[family](market, rng, n_tail, seed, as_of)
        return cls(market, _zipf_weighted(rows), seed, as_of)

    def __len__(self) -> int:
        return len(self.instruments)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self.instruments)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol

    def __getitem__(self, symbol: str) -> Instrument:
        """The instrument named ``symbol``.

        Raises:
            KeyError: no such instrument here.
        """
        return self._by_symbol[symbol]

    def get(self, symbol: str) -> Instrument | None:
        """The instrument named ``symbol``, or ``None``."""
        return self._by_symbol.get(symbol)

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every symbol, hottest first."""
        return tuple(inst.symbol for inst in self.instruments)

    def reference_price(self, symbol: str) -> float:
        """The level ``symbol`` starts from.

        Raises:
            KeyError: no such instrument here.
        """
        return self._by_symbol[symbol].price

    def __repr__(self) -> str:
        return f"Universe({self.market.value!r}, seed={self.seed}, n={len(self)})"


# --- helpers shared with the REST side --------------------------------------------------


def occ_symbol(root: str, expiry: dt.date, kind: str, strike: float) -> str:
    """The OCC contract symbol as Massive spells it, e.g. ``O:SPY241220P00720000``.

    Args:
        root: the underlying's ticker (1 to 6 letters).
        expiry: the expiration date (written ``YYMMDD``).
        kind: ``"C"`` or ``"P"``.
        strike: the strike; OCC writes it in thousandths on 8 digits.
    """
    return f"O:{root}{expiry:%y%m%d}{kind}{round(strike * 1000):08d}"


def synthetic_stocks(seed: int, n: int) -> list[tuple[str, float]]:
    """The synthetic stock tail of ``seed``: ``n`` (ticker, reference price) pairs.

    The options tail writes contracts on the first of these, so the stocks and the
    options clusters of one seed agree on the made-up names and their levels.
    """
    rng = random.Random(f"massivekit-tail-stocks:{seed}")
    taken = {sym for sym, _, _ in _STOCKS}
    names = _synthetic_names(rng, n, taken, 2, 5)
    # Log-uniform between $2 and $400: most listed names are cheap, a few are dear.
    return [(name, round(_log_uniform(rng, 2.0, 400.0), 2)) for name in names]


# --- building -------------------------------------------------------------------------

_Builder = Callable[[Market, random.Random, int, int, dt.date], list[Instrument]]


def _zipf_weighted(rows: list[Instrument]) -> list[Instrument]:
    """Give rank r the weight 1/(r+1)^s, normalised to sum to 1."""
    raw = [1.0 / (rank + 1) ** _ZIPF_S for rank in range(len(rows))]
    total = math.fsum(raw)
    return [replace(inst, weight=w / total) for inst, w in zip(rows, raw, strict=True)]


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _decimals_for(price: float, significant: int = 6) -> int:
    """Enough decimals to show ``significant`` digits, as crypto venues quote."""
    whole = math.floor(math.log10(price)) + 1
    return max(2, min(10, significant - whole))


def _synthetic_names(rng: random.Random, n: int, taken: set[str], lo: int, hi: int) -> list[str]:
    """``n`` unique made-up upper-case tickers of ``lo``..``hi`` letters, none in ``taken``."""
    names: list[str] = []
    seen = set(taken)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    while len(names) < n:
        name = "".join(rng.choices(letters, k=rng.randint(lo, hi)))
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _stock(sym: str, px: float, tape: int, spread: int, size: float) -> Instrument:
    return Instrument(
        sym, Market.STOCKS, px, 2, 1, spread, size, 0.0, _STOCK_EXCHANGES,
        _STOCK_CONDITIONS, tape,
    )  # fmt: skip


def _build_stocks(
    market: Market, rng: random.Random, tail: int, seed: int, as_of: dt.date
) -> list[Instrument]:
    rows = [_stock(sym, px, tape, 1, 100.0) for sym, px, tape in _STOCKS]
    for name, px in synthetic_stocks(seed, tail):
        # Thin names quote wider and print smaller.
        rows.append(_stock(name, px, rng.choice((1, 2, 3)), rng.randint(1, 6), 60.0))
    return rows


def _build_options(
    market: Market, rng: random.Random, tail: int, seed: int, as_of: dt.date
) -> list[Instrument]:
    scored: list[tuple[float, Instrument]] = []
    for rank, (root, spot, vol, step, width, daily) in enumerate(_OPTION_ROOTS):
        popularity = 1.0 / (rank + 1)
        chain = _chain(root, spot, vol, step, width, _expiries(as_of, daily, 4, 2), as_of)
        scored += [(score * popularity, inst) for score, inst in chain]
    # The tail: small chains (5 strikes, calls and puts, 2 expiries) on synthetic stocks.
    tail_rows: list[tuple[float, Instrument]] = []
    for name, spot in synthetic_stocks(seed, (tail + 19) // 20):
        vol = rng.uniform(0.3, 0.9)
        chain = _chain(name, spot, vol, _strike_step(spot), 2, _expiries(as_of, False, 1, 1), as_of)
        tail_rows += [(score * 0.01, inst) for score, inst in chain]
    scored += tail_rows[:tail]
    scored.sort(key=lambda pair: (-pair[0], pair[1].symbol))
    return [inst for _, inst in scored]


def _strike_step(px: float) -> float:
    """The usual listed strike interval for an underlying at ``px``."""
    if px < 25:
        return 0.5
    if px < 100:
        return 1.0
    return 2.5 if px < 250 else 5.0


def _expiries(as_of: dt.date, daily: bool, weeklies: int, monthlies: int) -> list[dt.date]:
    """Listed expiries from ``as_of``: dailies (SPY, QQQ), Friday weeklies, monthlies."""
    out: set[dt.date] = set()
    day = as_of
    while daily and len(out) < 5:
        if day.weekday() < 5:
            out.add(day)
        day += dt.timedelta(days=1)
    friday = as_of + dt.timedelta(days=(4 - as_of.weekday()) % 7)
    out.update(friday + dt.timedelta(weeks=w) for w in range(weeklies))
    year, month, found = as_of.year, as_of.month, 0
    while found < monthlies:
        first = dt.date(year, month, 1)
        third_friday = first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)
        if third_friday >= as_of:
            out.add(third_friday)
            found += 1
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return sorted(out)


def _chain(
    root: str,
    spot: float,
    vol: float,
    step: float,
    width: int,
    expiries: list[dt.date],
    as_of: dt.date,
) -> list[tuple[float, Instrument]]:
    """Calls and puts on ``width`` strikes either side of spot, each with an activity score."""
    atm = round(spot / step) * step
    rows: list[tuple[float, Instrument]] = []
    for expiry in expiries:
        days = (expiry - as_of).days + 0.5
        years = days / 365.0
        sd = vol * math.sqrt(years)
        for j in range(-width, width + 1):
            strike = round(atm + j * step, 3)
            if strike <= 0:
                continue
            # Near the money and near expiry is where options volume lives.
            score = math.exp(-abs(math.log(strike / spot)) / (sd + 0.01)) / (1 + days / 7)
            for kind in ("C", "P"):
                px = max(0.01, round(_black_scholes(spot, strike, sd, kind == "C"), 2))
                rows.append((score, _option(root, expiry, kind, strike, px)))
    return rows


def _option(root: str, expiry: dt.date, kind: str, strike: float, px: float) -> Instrument:
    spread = 1 if px < 1 else min(20, 1 + int(px / 2))  # dearer premiums quote wider
    return Instrument(
        occ_symbol(root, expiry, kind, strike), Market.OPTIONS, px, 2, 1, spread, 5.0, 0.0,
        _OPTION_EXCHANGES, _OPTION_CONDITIONS, 0, root, expiry, strike,
        "call" if kind == "C" else "put",
    )  # fmt: skip


def _black_scholes(spot: float, strike: float, sd: float, call: bool) -> float:
    """Black-Scholes premium at zero rates, ``sd`` = vol * sqrt(years): believable levels."""
    d1 = (math.log(spot / strike) + sd * sd / 2) / sd
    d2 = d1 - sd
    if call:
        return spot * _cdf(d1) - strike * _cdf(d2)
    return strike * _cdf(-d2) - spot * _cdf(-d1)


def _cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _forex(pair: str, px: float, spread: int) -> Instrument:
    decimals = 5 if px < 20 else 3 if px < 2000 else 2  # JPY-style pairs quote 3 places
    return Instrument(pair, Market.FOREX, px, decimals, 1, spread, 1.0, 0.0, (48,), ())


def _build_forex(
    market: Market, rng: random.Random, tail: int, seed: int, as_of: dt.date
) -> list[Instrument]:
    rates = _USD_RATES
    rows = [
        _forex(f"{a}/{b}", round(rates[b] / rates[a], 5), 2 + i // 4)
        for i, (a, b) in enumerate(_FOREX_MAJORS)
    ]
    majors = set(_FOREX_MAJORS)
    crosses = [(a, b) for a in rates for b in rates if a != b and (a, b) not in majors]
    rng.shuffle(crosses)
    for a, b in crosses[:tail]:
        px = rates[b] / rates[a]
        rows.append(_forex(f"{a}/{b}", float(f"{px:.6g}"), rng.randint(3, 30)))
    return rows


def _crypto(pair: str, px: float, size: float, spread: int) -> Instrument:
    decimals = _decimals_for(px)
    return Instrument(
        pair, Market.CRYPTO, px, decimals, 1, spread, size, 0.0, _CRYPTO_EXCHANGES, (1, 2)
    )


def _build_crypto(
    market: Market, rng: random.Random, tail: int, seed: int, as_of: dt.date
) -> list[Instrument]:
    rows = [_crypto(pair, px, size, spread) for pair, px, size, spread in _CRYPTO]
    taken = {pair.split("-")[0] for pair, _, _, _ in _CRYPTO}
    for coin in _synthetic_names(rng, tail, taken, 3, 5):
        px = _log_uniform(rng, 0.001, 200.0)
        px = round(px, _decimals_for(px))
        quote = rng.choice(("USD", "USD", "USDT", "EUR"))
        size = float(f"{100 / px:.3g}")  # about $100 a print
        rows.append(_crypto(f"{coin}-{quote}", px, size, rng.randint(2, 40)))
    return rows


def _index(sym: str, px: float) -> Instrument:
    return Instrument(sym, Market.INDICES, px, 2, 1, 1, 0.0, 0.0, (), ())


def _build_indices(
    market: Market, rng: random.Random, tail: int, seed: int, as_of: dt.date
) -> list[Instrument]:
    rows = [_index(sym, px) for sym, px in _INDICES]
    taken = {sym.removeprefix("I:") for sym, _ in _INDICES}
    for name in _synthetic_names(rng, tail, taken, 3, 6):
        rows.append(_index(f"I:{name}", round(_log_uniform(rng, 50.0, 5000.0), 2)))
    return rows


_MONTH_CODES = "FGHJKMNQUVXZ"


def _contract_months(as_of: dt.date, months: str, roll: int, n: int) -> list[tuple[str, int]]:
    """The next ``n`` listed (month code, year) at least ``roll`` months after ``as_of``."""
    out: list[tuple[str, int]] = []
    index = as_of.year * 12 + as_of.month - 1 + roll
    while len(out) < n:
        year, month = divmod(index, 12)
        if _MONTH_CODES[month] in months:
            out.append((_MONTH_CODES[month], year))
        index += 1
    return out


def _future(sym: str, root: str, px: float, decimals: int, tick: int) -> Instrument:
    return Instrument(sym, Market.FUTURES, px, decimals, tick, 1, 2.0, 0.0, (), (), 0, root)


def _build_futures(
    market: Market, rng: random.Random, tail: int, seed: int, as_of: dt.date
) -> list[Instrument]:
    venue = market.value.partition("/")[2] or None
    fronts: list[Instrument] = []
    backs: list[Instrument] = []
    for root, px, decimals, tick, months, exch, roll in _FUTURES_ROOTS:
        if venue is not None and exch != venue:
            continue
        for i, (code, year) in enumerate(_contract_months(as_of, months, roll, 3)):
            inst = _future(f"{root}{code}{year % 10}", root, px, decimals, tick)
            # The front month carries nearly all the volume; back months trail.
            (fronts if i == 0 else backs).append(inst)
    synthetic: list[Instrument] = []
    taken = {root for root, *_ in _FUTURES_ROOTS}
    for root in _synthetic_names(rng, (tail + 1) // 2, taken, 2, 3):
        px = round(_log_uniform(rng, 1.0, 5000.0), 2)
        for code, year in _contract_months(as_of, "HMUZ", 1, 2):
            synthetic.append(_future(f"{root}{code}{year % 10}", root, px, 2, 1))
    return fronts + backs + synthetic[:tail]


_BUILDERS: Mapping[Market, _Builder] = MappingProxyType(
    {
        Market.STOCKS: _build_stocks,
        Market.OPTIONS: _build_options,
        Market.FOREX: _build_forex,
        Market.CRYPTO: _build_crypto,
        Market.INDICES: _build_indices,
        Market.FUTURES: _build_futures,
    }
)
