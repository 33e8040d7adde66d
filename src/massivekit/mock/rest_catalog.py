"""The mock's reference universe: which tickers exist, per market, and option chains.

Lists are deterministic and sorted the way the service sorts them (by ticker),
so a paginated walk over ``/v3/reference/tickers`` or an options chain is
stable and has no duplicates. Sizes are modest (a few thousand names): enough
for real pagination, small enough to keep in memory.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import Final

from massivekit.mock.rest_instruments import (
    COMPANY_NAMES,
    REFERENCE_PRICES,
    WELL_KNOWN,
    AssetClass,
    OptionContract,
    mix64,
    reference_price,
    seed_of,
)


def _split(text: str) -> list[str]:
    """Words of ``text`` (keeps long word tables readable)."""
    return text.split()


STOCK_UNIVERSE_SIZE: Final = 3000
_LETTERS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CRYPTO_BASES: Final = _split(
    "BTC ETH SOL ADA DOGE XRP LTC DOT AVAX LINK UNI ATOM XLM BCH ETC FIL AAVE ALGO NEAR APE SHIB "
    "ICP MKR COMP SNX CRV GRT SAND MANA AXS"
)
CURRENCIES: Final = _split("USD EUR JPY GBP AUD CAD CHF CNH HKD NZD SEK NOK MXN SGD ZAR")
INDICES: Final = _split(
    "SPX NDX DJI VIX RUT OEX XAU SOX NYA XMI MID SML COMP VVIX VIX9D SPXEW NDXE RUI RUA"
)
OPTION_EXPIRIES: Final = 12  # weekly expirations listed in a chain
OPTION_STRIKES: Final = 41  # strikes per expiry and side, centred on the spot


@lru_cache(maxsize=8)
def universe(market: str) -> tuple[str, ...]:
    """Every ticker of a market (``stocks``, ``crypto``, ``fx``, ``indices``, ``otc``), sorted."""
    if market == "crypto":
        return tuple(sorted(f"X:{base}USD" for base in CRYPTO_BASES))
    if market == "fx":
        pairs = {f"C:{a}{b}" for a in CURRENCIES for b in CURRENCIES[:4] if a != b}
        return tuple(sorted(pairs))
    if market == "indices":
        return tuple(sorted(f"I:{name}" for name in INDICES))
    names: set[str] = set()
    if market == "stocks":
        names.update(WELL_KNOWN)
        names.update(t for t in REFERENCE_PRICES if ":" not in t)
    key = seed_of("universe", market)
    size = STOCK_UNIVERSE_SIZE if market == "stocks" else 400
    k = 0
    while len(names) < size:
        h = mix64(key + k)
        length = 1 + h % 4 if market == "stocks" else 5
        symbol = "".join(_LETTERS[(h >> (8 + 5 * j)) % 26] for j in range(length))
        names.add(symbol + ("F" if market == "otc" else ""))
        k += 1
    return tuple(sorted(names))


def market_of(cls: AssetClass) -> str:
    """The ``market`` value of reference data for an asset class."""
    return {AssetClass.FX: "fx", AssetClass.CRYPTO: "crypto", AssetClass.INDICES: "indices"}.get(
        cls, "stocks"
    )


def company_name(ticker: str) -> str:
    """A display name: the real one for well-known tickers, a stable invented one otherwise."""
    if ticker in COMPANY_NAMES:
        return COMPANY_NAMES[ticker]
    if ticker.startswith("X:"):
        return f"{ticker[2:-3]} - United States Dollar"
    if ticker.startswith("C:"):
        return f"{ticker[2:5]} - {ticker[5:]}"
    if ticker.startswith("I:"):
        return f"{ticker[2:]} Index"
    suffix = ("Holdings Inc.", "Corp", "Technologies Inc.", "Group Ltd", "Industries Inc.")
    return f"{ticker.title()} {suffix[mix64(seed_of('name', ticker)) % len(suffix)]}"


def _expirations(anchor: date) -> list[date]:
    friday = anchor + timedelta(days=(4 - anchor.weekday()) % 7)
    return [friday + timedelta(weeks=w) for w in range(OPTION_EXPIRIES)]


def _strike_step(spot: float) -> float:
    for limit, step in ((25, 0.5), (200, 1.0), (1000, 5.0), (5000, 10.0)):
        if spot < limit:
            return step
    return 50.0


def option_chain(underlying: str, anchor: date) -> tuple[OptionContract, ...]:
    """The listed contracts of an underlying as of ``anchor``, sorted by ticker."""
    return _option_chain(underlying, anchor.isoformat())


@lru_cache(maxsize=64)
def _option_chain(underlying: str, anchor: str) -> tuple[OptionContract, ...]:
    spot = reference_price(underlying)
    step = _strike_step(spot)
    centre = round(spot / step) * step
    strikes = [centre + (k - OPTION_STRIKES // 2) * step for k in range(OPTION_STRIKES)]
    contracts = [
        OptionContract(underlying, expiry, kind, strike)
        for expiry in _expirations(date.fromisoformat(anchor))
        for kind in ("call", "put")
        for strike in strikes
        if strike > 0
    ]
    return tuple(sorted(contracts, key=lambda c: c.ticker))


# --- static reference tables ------------------------------------------------------------------

_STOCK_VENUES: Final = (
    (1, "XASE", "NYSE American, LLC", "exchange"),
    (2, "XBOS", "Nasdaq OMX BX, Inc.", "exchange"),
    (4, "FINR", "FINRA Alternative Display Facility", "TRF"),
    (7, "EDGA", "Cboe EDGA", "exchange"),
    (8, "EDGX", "Cboe EDGX", "exchange"),
    (10, "XNYS", "New York Stock Exchange", "exchange"),
    (11, "ARCX", "NYSE Arca, Inc.", "exchange"),
    (12, "XNAS", "Nasdaq", "exchange"),
    (15, "IEXG", "Investors Exchange", "exchange"),
    (19, "BATS", "Cboe BZX", "exchange"),
    (21, "MEMX", "Members Exchange", "exchange"),
    (62, "OOTC", "OTC Equity Security", "SIP"),
)
_OTHER_VENUES: Final = (
    ("options", "us", 300, "AMXO", "NYSE American Options", "exchange"),
    ("options", "us", 301, "XBOX", "BOX Options Exchange", "exchange"),
    ("options", "us", 302, "XCBO", "Cboe Options Exchange", "exchange"),
    ("crypto", "global", 1, "COIN", "Coinbase", "exchange"),
    ("crypto", "global", 2, "BITF", "Bitfinex", "exchange"),
    ("crypto", "global", 6, "BSTP", "Bitstamp", "exchange"),
    ("fx", "global", 48, "FXCM", "Currency Banks 1", "exchange"),
)


def exchanges() -> list[dict[str, object]]:
    """The venues the mock's trades and quotes name (ids match ``exchange`` fields)."""
    rows: list[dict[str, object]] = [
        {
            "id": i,
            "type": kind,
            "asset_class": "stocks",
            "locale": "us",
            "name": name,
            "acronym": mic[:4],
            "mic": mic,
            "operating_mic": mic,
            "participant_id": chr(64 + i % 26),
            "url": f"https://www.{mic.lower()}.example",
        }
        for i, mic, name, kind in _STOCK_VENUES
    ]
    rows += [
        {
            "id": i,
            "type": kind,
            "asset_class": cls,
            "locale": locale,
            "name": name,
            "acronym": mic,
            "mic": mic,
            "operating_mic": mic,
        }
        for cls, locale, i, mic, name, kind in _OTHER_VENUES
    ]
    return rows


_CONDITIONS: Final = (
    (1, "Regular Sale", "stocks", "sale_condition", ("trade",), "@", "@"),
    (12, "Form T", "stocks", "sale_condition", ("trade",), "T", "T"),
    (14, "Intermarket Sweep", "stocks", "sale_condition", ("trade",), "F", "F"),
    (17, "Market Center Official Open", "stocks", "sale_condition", ("trade",), "", "O"),
    (37, "Odd Lot Trade", "stocks", "sale_condition", ("trade",), "I", "I"),
    (41, "Trade Thru Exempt", "stocks", "trade_thru_exempt", ("trade",), "X", "X"),
    (2, "Regular Quote", "stocks", "quote_condition", ("bbo", "nbbo"), "R", "R"),
    (209, "Automatic Execution", "options", "sale_condition", ("trade",), "", ""),
    (219, "Intermarket Sweep", "options", "sale_condition", ("trade",), "", ""),
    (227, "Multi Leg Auto Electronic Trade", "options", "sale_condition", ("trade",), "", ""),
)


def conditions() -> list[dict[str, object]]:
    """Condition codes the mock's trades and quotes use, described like the service does."""
    rows: list[dict[str, object]] = []
    for cid, name, cls, kind, data_types, cta, utp in _CONDITIONS:
        sip = (
            {"OPRA": name[:1]}
            if cls == "options"
            else {k: v for k, v in (("CTA", cta), ("UTP", utp)) if v}
        )
        rules = {
            "updates_high_low": kind == "sale_condition",
            "updates_open_close": cid != 37,
            "updates_volume": True,
        }
        rows.append(
            {
                "id": cid,
                "name": name,
                "asset_class": cls,
                "type": kind,
                "data_types": list(data_types),
                "sip_mapping": sip,
                "legacy": False,
                "update_rules": {"consolidated": dict(rules), "market_center": dict(rules)},
            }
        )
    return rows


_TICKER_TYPES: Final = (
    ("CS", "Common Stock", "stocks", "us"),
    ("ETF", "Exchange Traded Fund", "stocks", "us"),
    ("ADRC", "American Depository Receipt Common", "stocks", "us"),
    ("PFD", "Preferred Stock", "stocks", "us"),
    ("WARRANT", "Warrant", "stocks", "us"),
    ("INDEX", "Index", "indices", "us"),
)


def ticker_types() -> list[dict[str, object]]:
    """The ``type`` codes of ``/v3/reference/tickers``."""
    return [
        {"code": code, "description": text, "asset_class": cls, "locale": locale}
        for code, text, cls, locale in _TICKER_TYPES
    ]
