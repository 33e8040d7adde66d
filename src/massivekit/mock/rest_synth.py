"""Synthesize JSON that is valid for a (resolved) response schema and looks like market data.

The schema says what shape and type a value must have; the field name says
what it means. ``c`` is a close price in a bar but a list of condition codes in
a trade, so hints are looked up by name and then checked against the type.
Values come from a seeded :class:`random.Random` and from the instrument model
(:mod:`massivekit.mock.rest_instruments`), so a given request always gets the
same answer, and prices agree with the mock's trades and bars.

Public entry point: :func:`synthesize`.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, Final

from massivekit.mock.rest_catalog import company_name, market_of
from massivekit.mock.rest_instruments import (
    NS_PER_MS,
    NS_PER_S,
    AssetClass,
    asset_class,
    iso_ns,
    parse_option,
    price_at,
    price_decimals,
    utc_date,
)

Schema = Mapping[str, Any]
OMIT: Final = object()
"""Returned by a hint to leave an optional field out."""


def _split(text: str) -> list[str]:
    """Words of ``text`` (keeps long word tables readable)."""
    return text.split()


@dataclass(frozen=True, slots=True)
class Context:
    """What the synthesizer knows about the request it answers.

    Args:
        ticker: the instrument the answer is about.
        now_ns: the instant the data describes (Unix ns); timestamps sit just before it.
        request_id: echoed in ``request_id`` fields.
        indicator: ``sma``/``ema``/``rsi``/``macd`` for indicator endpoints.
        overrides: field name → value, taken verbatim (e.g. path parameters).
        index: position of the row in a list (varies ids and dates).
    """

    ticker: str = "AAPL"
    now_ns: int = 1_704_214_800 * NS_PER_S
    request_id: str = ""
    indicator: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    index: int = 0

    @property
    def cls(self) -> AssetClass:
        """The ticker's asset class."""
        return asset_class(self.ticker)

    @property
    def day(self) -> date:
        """The UTC date of :attr:`now_ns`."""
        return utc_date(self.now_ns)

    def price(self, rng: random.Random, spread: float = 0.002) -> float:
        """The ticker's price near :attr:`now_ns`, jittered by up to ``spread``."""
        value = price_at(self.ticker, self.now_ns) * (1 + rng.uniform(-spread, spread))
        return round(value, price_decimals(self.ticker))

    def with_ticker(self, ticker: str) -> Context:
        """A copy about another instrument."""
        return replace(self, ticker=ticker)


def synthesize(schema: Schema, ctx: Context, rng: random.Random, name: str = "") -> Any:
    """Return a value valid for ``schema``; ``name`` is the field it will be stored under.

    Args:
        schema: a resolved schema from the generated endpoint table.
        ctx: the request's context.
        rng: source of variation (seed it per request for determinism).
        name: the property name, which selects domain-aware values.
    """
    if name in ctx.overrides:
        return ctx.overrides[name]
    enum = schema.get("enum")
    if enum and name in ("type", "market", "asset_class") and ctx.cls.value in enum:
        return ctx.cls.value
    if "oneOf" in schema and "type" not in schema:
        return synthesize(schema["oneOf"][0], ctx, rng, name)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return _object(schema, ctx, rng, name)
    if kind == "array":
        return _array(schema, ctx, rng, name)
    value = _hinted(name, schema, ctx, rng)
    return _coerce(value, schema, rng)


# --- containers -----------------------------------------------------------------------------

_SKIP_OPTIONAL: Final = frozenset({"next_url", "error", "message", "delisted_utc"})
_WILDCARD_KEYS: Final = {
    "balance_sheet": ("assets", "liabilities", "equity"),
    "income_statement": ("revenues", "net_income_loss", "operating_expenses"),
    "cash_flow_statement": ("net_cash_flow", "net_cash_flow_from_operating_activities"),
    "comprehensive_income": ("comprehensive_income_loss",),
}


def _object(schema: Schema, ctx: Context, rng: random.Random, name: str) -> dict[str, Any]:
    props: Mapping[str, Schema] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    out: dict[str, Any] = {}
    for key, sub in props.items():
        if key == "*":
            for wild in _WILDCARD_KEYS.get(name, ("item",)):
                out[wild] = synthesize(sub, ctx, rng, wild)
            continue
        if key in _SKIP_OPTIONAL and key not in required:
            continue
        value = synthesize(sub, ctx, rng, key)
        if value is not OMIT:
            out[key] = value
    for key in required - out.keys():
        out[key] = str(ctx.overrides.get(key, key))  # required but untyped in the spec
    return _make_consistent(out)


def _array(schema: Schema, ctx: Context, rng: random.Random, name: str) -> list[Any]:
    items: Schema = schema.get("items", {})
    if name in ("c", "conditions") and items.get("type") == "integer":
        if ctx.cls is AssetClass.CRYPTO:
            return [rng.choice((1, 2))]
        return list(rng.choice(((12, 37), (37,), (14, 41), (1,))))
    if name == "i" and items.get("type") == "integer":
        return [rng.choice((1, 2, 604, 608))]
    if name == "tickers" and items.get("type") == "string":
        return [ctx.ticker]
    count = {"values": 5, "aggregates": 5, "results": 3}.get(name, rng.randint(1, 3))
    out = []
    for k in range(count):
        value = synthesize(items, replace(ctx, index=ctx.index * 16 + k), rng, _singular(name))
        out.append(value)
    return out


def _singular(name: str) -> str:
    return {"tickers": "ticker", "keywords": "keyword", "data_types": "data_type"}.get(name, "")


def _make_consistent(obj: dict[str, Any]) -> dict[str, Any]:
    """Make prices in one object agree: ``l <= o, c <= h`` and ``bid <= ask``."""
    for o, h, low, c in (("o", "h", "l", "c"), ("open", "high", "low", "close")):
        if all(isinstance(obj.get(k), int | float) for k in (o, h, low, c)):
            obj[h] = max(obj[o], obj[h], obj[low], obj[c])
            obj[low] = min(obj[o], obj[h], obj[low], obj[c])
            for vw in ("vw", "vwap"):
                if isinstance(obj.get(vw), float):
                    obj[vw] = min(max(obj[vw], obj[low]), obj[h])
    for bid, ask in (("bid", "ask"), ("bid_price", "ask_price"), ("b", "a"), ("p", "P")):
        both = all(isinstance(obj.get(k), float) for k in (bid, ask))
        if both and obj[bid] > obj[ask]:
            obj[bid], obj[ask] = obj[ask], obj[bid]
        if both and isinstance(obj.get("midpoint"), float):
            obj["midpoint"] = round((obj[bid] + obj[ask]) / 2, 6)
    _order_book(obj)
    _day_change(obj)
    return obj


def _order_book(obj: dict[str, Any]) -> None:
    """Uncross a synthesized book: bids below asks, best first, ``spread`` between them."""
    bids, asks = obj.get("bids"), obj.get("asks")
    if not (isinstance(bids, list) and isinstance(asks, list) and bids and asks):
        return
    mid = (bids[0]["p"] + asks[0]["p"]) / 2
    for k, level in enumerate(bids):
        level["p"] = round(mid * (1 - 0.0001 * (k + 1)), 2)
    for k, level in enumerate(asks):
        level["p"] = round(mid * (1 + 0.0001 * (k + 1)), 2)
    if isinstance(obj.get("spread"), float):
        obj["spread"] = round(asks[0]["p"] - bids[0]["p"], 2)


def _day_change(obj: dict[str, Any]) -> None:
    """``todaysChange`` is today's close minus yesterday's, as a snapshot states it."""
    day, prev = obj.get("day"), obj.get("prevDay")
    if not (isinstance(day, dict) and isinstance(prev, dict)) or "todaysChange" not in obj:
        return
    if isinstance(day.get("c"), float) and isinstance(prev.get("c"), float) and prev["c"]:
        obj["todaysChange"] = round(day["c"] - prev["c"], 4)
        obj["todaysChangePerc"] = round(obj["todaysChange"] / prev["c"] * 100, 4)


# --- scalars --------------------------------------------------------------------------------


def _coerce(value: Any, schema: Schema, rng: random.Random) -> Any:
    """Force a hinted value into the schema's type and enum."""
    if value is OMIT:
        return value
    enum = schema.get("enum")
    if enum:
        return value if value in enum else rng.choice(list(enum))
    kind = schema.get("type")
    if kind == "integer":
        return round(value) if isinstance(value, int | float) else rng.randint(1, 1000)
    if kind == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else 1.0
    if kind == "boolean":
        return value if isinstance(value, bool) else rng.random() < 0.5
    if kind == "string":
        return value if isinstance(value, str) else _text(schema, rng)
    return value if value is not None else "open"


def _text(schema: Schema, rng: random.Random) -> str:
    fmt = schema.get("format")
    if fmt == "date":
        return (date(2024, 1, 2) + timedelta(days=rng.randint(0, 300))).isoformat()
    if fmt == "date-time":
        return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T14:30:00Z"
    if fmt == "uri":
        return f"https://api.massive.com/files/{rng.getrandbits(32):08x}"
    if schema.get("pattern") == "^[0-9]{8}$":
        return f"2024{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3))).capitalize()


_WORDS: Final = _split(
    "market data quarterly revenue growth guidance outlook shares dividend earnings volume rally "
    "session analyst upgrade demand supply"
)


def _hinted(name: str, schema: Schema, ctx: Context, rng: random.Random) -> Any:
    """Pick a realistic value for a scalar by its field name (``None`` when none applies)."""
    kind = schema.get("type")
    unit_name = schema.get("x-unit")
    if unit_name and kind in ("integer", "number"):
        return _timestamp(unit_name, ctx, rng)
    if kind in ("integer", "number"):
        hint = _NUMERIC.get(name)
        return hint(ctx, rng) if hint else _fallback_number(kind, rng)
    if kind == "string":
        if "pattern" in schema:
            return None  # _text knows the one pattern the spec uses
        if schema.get("format") == "date":
            return (ctx.day - timedelta(days=ctx.index)).isoformat()
        if schema.get("format") == "date-time":
            return iso_ns(ctx.now_ns - ctx.index * 86_400 * NS_PER_S)
        hint_s = _STRINGS.get(name)
        if hint_s:
            return hint_s(ctx, rng)
        if name.endswith("_url"):
            return f"https://api.massive.com/v1/reference/{name[:-4]}/{ctx.ticker}"
        if name.endswith("_date"):
            return (ctx.day - timedelta(days=7 * ctx.index + rng.randint(0, 6))).isoformat()
        return None
    if kind == "boolean":
        return _BOOLEANS.get(name)
    return None


def _timestamp(unit_name: str, ctx: Context, rng: random.Random) -> int:
    t_ns = ctx.now_ns - rng.randint(1, 60 * NS_PER_S) - ctx.index * 60 * NS_PER_S
    return {"ns": t_ns, "ms": t_ns // NS_PER_MS, "s": t_ns // NS_PER_S}[unit_name]


def _fallback_number(kind: object, rng: random.Random) -> float:
    return rng.randint(1, 1000) if kind == "integer" else round(rng.uniform(0.5, 500), 4)


Hint = Callable[[Context, random.Random], Any]


def _size(ctx: Context, rng: random.Random) -> float:
    if ctx.cls is AssetClass.CRYPTO:
        return round(rng.uniform(0.0001, 2), 8)
    return rng.choice((100, 100, 200, 1, 50, 300, 500))


def _volume(ctx: Context, rng: random.Random) -> float:
    return (
        rng.randint(50_000, 90_000_000) if ctx.cls is AssetClass.STOCKS else rng.randint(1, 50_000)
    )


def _strike(ctx: Context, rng: random.Random) -> float:
    option = parse_option(ctx.ticker)
    return option.strike if option else round(ctx.price(rng), 0)


def _greek(low: float, high: float) -> Hint:
    return lambda ctx, rng: round(rng.uniform(low, high), 6)


def _delta(ctx: Context, rng: random.Random) -> float:
    option = parse_option(ctx.ticker)
    value = rng.uniform(0.05, 0.95)
    return round(-value if option and option.contract_type == "put" else value, 6)


def _indicator_value(ctx: Context, rng: random.Random) -> float:
    if ctx.indicator == "rsi":
        return round(rng.uniform(30, 70), 6)
    if ctx.indicator == "macd":
        return round(rng.uniform(-2, 2), 6)
    return ctx.price(rng, 0.01)


def _price(spread: float = 0.002) -> Hint:
    return lambda ctx, rng: ctx.price(rng, spread)


def _exchange(ctx: Context, rng: random.Random) -> int:
    return rng.choice(_EXCHANGES.get(ctx.cls, (4, 10, 11, 12, 8, 15)))


_EXCHANGES: Final = {
    AssetClass.CRYPTO: (1, 2, 6, 23),
    AssetClass.FX: (48,),
    AssetClass.OPTIONS: (300, 301, 302, 303, 304, 307, 308, 309, 312, 313, 316, 322, 325),
}

_NUMERIC: Final[dict[str, Hint]] = {
    **dict.fromkeys(
        _split(
            "o h l c vw p P a b open high low close vwap price ask bid ask_price bid_price fmv "
            "previous_close midpoint afterHours preMarket break_even_price"
        ),
        _price(),
    ),
    "value": _indicator_value,
    "strike_price": _strike,
    **dict.fromkeys(["v", "volume", "av"], _volume),
    **dict.fromkeys(["s", "S", "size", "bid_size", "ask_size"], _size),
    "n": lambda ctx, rng: rng.randint(1, 400_000),
    **dict.fromkeys(_split("x X exchange ask_exchange bid_exchange"), lambda c, r: _exchange(c, r)),
    **dict.fromkeys(["z", "tape"], lambda ctx, rng: rng.randint(1, 3)),
    **dict.fromkeys(["q", "sequence_number", "sequence"], lambda c, r: r.randint(1_000, 9_000_000)),
    **dict.fromkeys(["e", "correction"], lambda ctx, rng: 0),
    **dict.fromkeys(["r", "trf_id"], lambda ctx, rng: rng.choice((201, 202))),
    **dict.fromkeys(["updated", "last_updated"], lambda c, r: c.now_ns - r.randint(1, 10**9)),
    **dict.fromkeys(
        _split(
            "change todaysChange regular_trading_change early_trading_change late_trading_change"
        ),
        lambda ctx, rng: round(ctx.price(rng) * rng.uniform(-0.02, 0.02), 4),
    ),
    **dict.fromkeys(
        _split(
            "change_percent todaysChangePerc regular_trading_change_percent "
            "early_trading_change_percent late_trading_change_percent change_to_break_even"
        ),
        lambda ctx, rng: round(rng.uniform(-2.5, 2.5), 4),
    ),
    "delta": _delta,
    "gamma": _greek(0.001, 0.08),
    "theta": _greek(-0.9, -0.01),
    "vega": _greek(0.01, 0.9),
    "implied_volatility": _greek(0.1, 0.8),
    "open_interest": lambda ctx, rng: rng.randint(10, 80_000),
    "shares_per_contract": lambda ctx, rng: 100,
    "amount": lambda ctx, rng: 100,
    "cash_amount": lambda ctx, rng: round(rng.uniform(0.05, 2.5), 2),
    "split_from": lambda ctx, rng: 1,
    "split_to": lambda ctx, rng: rng.choice((2, 3, 4, 10)),
    "frequency": lambda ctx, rng: 4,
    "market_cap": lambda ctx, rng: round(ctx.price(rng) * rng.randint(10**8, 10**10), 2),
    **dict.fromkeys(
        ["share_class_shares_outstanding", "weighted_shares_outstanding", "shares_outstanding"],
        lambda ctx, rng: rng.randint(10**7, 10**10),
    ),
    "total_employees": lambda ctx, rng: rng.randint(50, 200_000),
    "round_lot": lambda ctx, rng: 100,
    **dict.fromkeys(["msLatency", "db_latency"], lambda ctx, rng: rng.randint(1, 40)),
    "initialAmount": lambda ctx, rng: 1,
    "count": lambda ctx, rng: 1,
    "converted": _price(0.0),
}

_STREETS: Final = ("Main Street", "Market Street", "Park Avenue", "Infinite Loop", "Elm Street")
_BLURBS: Final = (
    "designs, manufactures and sells products and services worldwide.",
    "provides technology, software and services to businesses and consumers.",
    "operates a diversified portfolio of businesses across several segments.",
)
_SIC: Final = (
    "ELECTRONIC COMPUTERS",
    "SERVICES-PREPACKAGED SOFTWARE",
    "MOTOR VEHICLES & PASSENGER CAR BODIES",
)

_EXPIRY: Final[Hint] = lambda ctx, rng: (  # noqa: E731 - a table entry
    o.expiration.isoformat()
    if (o := parse_option(ctx.ticker))
    else (ctx.day + timedelta(days=7 * (1 + ctx.index))).isoformat()
)

_STRINGS: Final[dict[str, Hint]] = {
    **dict.fromkeys(["ticker", "T", "symbol", "sym"], lambda ctx, rng: ctx.ticker),
    **dict.fromkeys(
        ["underlying_ticker", "underlying"],
        lambda ctx, rng: o.underlying if (o := parse_option(ctx.ticker)) else ctx.ticker,
    ),
    "name": lambda ctx, rng: company_name(ctx.ticker),
    "status": lambda ctx, rng: "OK",
    "request_id": lambda ctx, rng: ctx.request_id,
    **dict.fromkeys(["id", "i"], lambda ctx, rng: str(rng.getrandbits(44))),
    "timeframe": lambda ctx, rng: "REAL-TIME",
    "market_status": lambda ctx, rng: "open",
    "market": lambda ctx, rng: market_of(ctx.cls),
    "locale": lambda ctx, rng: (
        "us" if ctx.cls in (AssetClass.STOCKS, AssetClass.OPTIONS) else "global"
    ),
    "type": lambda ctx, rng: {AssetClass.STOCKS: "CS"}.get(ctx.cls, ctx.cls.value),
    "primary_exchange": lambda ctx, rng: rng.choice(("XNAS", "XNYS", "ARCX")),
    "currency_name": lambda ctx, rng: "usd",
    "currency_code": lambda ctx, rng: "USD",
    "cik": lambda ctx, rng: f"{rng.randint(1, 1_999_999):010d}",
    **dict.fromkeys(
        ["composite_figi", "share_class_figi"],
        lambda ctx, rng: "BBG" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=9)),
    ),
    "contract_type": lambda ctx, rng: (
        o.contract_type if (o := parse_option(ctx.ticker)) else "call"
    ),
    "exercise_style": lambda ctx, rng: "american",
    "expiration_date": _EXPIRY,
    "sic_code": lambda ctx, rng: "3571",
    "phone_number": lambda ctx, rng: f"(408) 555-{rng.randint(1000, 9999)}",
    "pair": lambda ctx, rng: ctx.ticker.split(":")[-1],
    "author": lambda ctx, rng: rng.choice(("Staff Writer", "Market Desk", "J. Doe")),
    "title": lambda ctx, rng: f"{company_name(ctx.ticker)} shares move on {rng.choice(_WORDS)}",
    "sentiment": lambda ctx, rng: rng.choice(("positive", "neutral", "negative")),
    "currency": lambda ctx, rng: "USD",
    "ticker_root": lambda ctx, rng: ctx.ticker.split(":")[-1],
    "ticker_suffix": lambda ctx, rng: OMIT,
    "address1": lambda ctx, rng: f"{rng.randint(1, 9999)} {rng.choice(_STREETS)}",
    "address2": lambda ctx, rng: OMIT,
    "city": lambda ctx, rng: rng.choice(("Cupertino", "Redmond", "New York", "Austin", "Chicago")),
    "state": lambda ctx, rng: rng.choice(("CA", "WA", "NY", "TX", "IL")),
    "postal_code": lambda ctx, rng: f"{rng.randint(10000, 99999)}",
    "description": lambda ctx, rng: f"{company_name(ctx.ticker)} {rng.choice(_BLURBS)}",
    "sic_description": lambda ctx, rng: rng.choice(_SIC),
    "list_date": lambda ctx, rng: f"{rng.randint(1980, 2015)}-{rng.randint(1, 12):02d}-15",
    "homepage_url": lambda ctx, rng: f"https://www.{ctx.ticker.split(':')[-1].lower()}.com",
    "serverTime": lambda ctx, rng: iso_ns(ctx.now_ns),
    **dict.fromkeys(
        _split(
            "nasdaq nyse otc crypto fx cccy cgi dow_jones ftse_russell msci mstar mstarc s_and_p "
            "societe_generale"
        ),
        lambda ctx, rng: "open",
    ),
}

_BOOLEANS: Final[dict[str, bool]] = {
    "active": True,
    "otc": False,
    "adjusted": True,
    "success": True,
    "isUTC": True,
    "afterHours": False,
    "earlyHours": False,
    "expired": False,
}
