"""The mock's instrument universes: deterministic, wire-spelt, skewed, well priced."""

from __future__ import annotations

import datetime as dt
import math
import re

import pytest

from massivekit.config import Market
from massivekit.sim.universe import (
    DEFAULT_AS_OF,
    DEFAULT_TAIL,
    REFERENCE_PRICES,
    Universe,
    occ_symbol,
    synthetic_stocks,
)

OCC = re.compile(r"^O:([A-Z]{1,6})(\d{6})([CP])(\d{8})$")
SYMBOL_SHAPES = {
    Market.STOCKS: re.compile(r"^[A-Z]{1,5}(\.[A-Z])?$"),
    Market.OPTIONS: OCC,
    Market.FOREX: re.compile(r"^[A-Z]{3}/[A-Z]{3}$"),
    Market.CRYPTO: re.compile(r"^[A-Z0-9]{2,6}-[A-Z]{3,4}$"),
    Market.INDICES: re.compile(r"^I:[A-Z0-9]{2,8}$"),
    Market.FUTURES: re.compile(r"^[A-Z0-9]{2,3}[FGHJKMNQUVXZ]\d$"),
}

# The levels the REST mock uses too: both mocks must tell the same story.
SHARED_LEVELS = {
    "AAPL": 190, "MSFT": 420, "SPY": 560, "QQQ": 480, "TSLA": 250, "NVDA": 120, "AMZN": 185,
    "BTC-USD": 65000, "ETH-USD": 3400, "EUR/USD": 1.08, "USD/JPY": 150, "GBP/USD": 1.27,
    "I:SPX": 5600, "I:NDX": 19500, "I:VIX": 15,
}  # fmt: skip


@pytest.fixture(scope="module", params=list(Market), ids=lambda m: m.value)
def universe(request: pytest.FixtureRequest) -> Universe:
    return Universe.for_market(request.param, seed=3)


def test_symbols_are_unique_and_wire_spelt(universe: Universe) -> None:
    symbols = universe.symbols
    assert len(set(symbols)) == len(symbols) == len(universe)
    shape = SYMBOL_SHAPES[universe.market.family]
    bad = [s for s in symbols if not shape.match(s)]
    assert not bad, bad[:5]


def test_weights_are_zipf_hottest_first(universe: Universe) -> None:
    weights = [inst.weight for inst in universe]
    assert math.isclose(sum(weights), 1.0, rel_tol=1e-9)
    assert weights == sorted(weights, reverse=True)
    # A few names dominate: the top one outweighs the median one by orders of magnitude.
    assert weights[0] > 20 * weights[len(weights) // 2]


def test_prices_sit_on_the_tick_grid(universe: Universe) -> None:
    for inst in universe:
        assert inst.price > 0
        assert inst.tick > 0
        assert inst.spread >= 1
        assert inst.price_units % inst.tick == 0
        assert inst.price_units >= inst.tick
        assert abs(inst.price_units / 10**inst.decimals - inst.price) <= inst.tick_size


def test_default_tail_sizes() -> None:
    stocks = Universe.for_market(Market.STOCKS)
    assert len(stocks) >= DEFAULT_TAIL[Market.STOCKS] >= 2000
    assert (
        len(Universe.for_market(Market.STOCKS, tail=10))
        == len(stocks) - DEFAULT_TAIL[Market.STOCKS] + 10
    )
    assert len(Universe.for_market(Market.FUTURES, tail=0)) < len(
        Universe.for_market(Market.FUTURES, tail=40)
    )


def test_negative_tail_is_refused() -> None:
    with pytest.raises(ValueError, match="tail"):
        Universe.for_market(Market.STOCKS, tail=-1)


@pytest.mark.parametrize("market", list(Market), ids=lambda m: m.value)
def test_same_seed_same_universe(market: Market) -> None:
    a = Universe.for_market(market, seed=11, tail=60)
    b = Universe.for_market(market, seed=11, tail=60)
    assert a.instruments == b.instruments


def test_seed_changes_only_the_tail() -> None:
    a = Universe.for_market(Market.STOCKS, seed=1, tail=100)
    b = Universe.for_market(Market.STOCKS, seed=2, tail=100)
    assert a.symbols[:20] == b.symbols[:20]  # the well-known names do not move
    assert set(a.symbols) != set(b.symbols)


def test_shared_reference_levels() -> None:
    for symbol, level in SHARED_LEVELS.items():
        assert REFERENCE_PRICES[symbol] == pytest.approx(level, rel=1e-6), symbol
    stocks = Universe.for_market(Market.STOCKS, tail=0)
    assert stocks.reference_price("AAPL") == 190
    assert Universe.for_market(Market.FOREX, tail=0).reference_price("EUR/USD") == 1.08
    assert Universe.for_market(Market.INDICES, tail=0).reference_price("I:VIX") == 15


def test_lookup_by_symbol() -> None:
    u = Universe.for_market(Market.CRYPTO, tail=5)
    assert "BTC-USD" in u
    assert u["BTC-USD"].price == 65000
    assert u.get("NOPE-USD") is None
    with pytest.raises(KeyError):
        u["NOPE-USD"]
    with pytest.raises(KeyError):
        u.reference_price("NOPE-USD")
    assert u.instruments[0].symbol == "BTC-USD"  # the hottest pair leads


def test_occ_symbol_format() -> None:
    assert occ_symbol("SPY", dt.date(2024, 12, 20), "P", 720) == "O:SPY241220P00720000"
    assert occ_symbol("F", dt.date(2025, 1, 17), "C", 12.5) == "O:F250117C00012500"


def test_option_chain_is_realistic() -> None:
    u = Universe.for_market(Market.OPTIONS, seed=0, tail=40)
    spy = [inst for inst in u if inst.underlying == "SPY"]
    assert len(spy) > 500  # dailies, weeklies and monthlies, 51 strikes, calls and puts
    for inst in u:
        match = OCC.match(inst.symbol)
        assert match is not None
        root, expiry, kind, strike = match.groups()
        assert root == inst.underlying
        assert inst.expiration is not None
        assert inst.expiration >= DEFAULT_AS_OF
        assert expiry == f"{inst.expiration:%y%m%d}"
        assert inst.contract_type == ("call" if kind == "C" else "put")
        assert int(strike) == round((inst.strike or 0) * 1000)
    strikes = sorted({inst.strike or 0 for inst in spy})
    assert 530 <= strikes[len(strikes) // 2] <= 590  # centred on the underlying
    # The hottest contract is short-dated and near the money.
    hottest = u.instruments[0]
    assert hottest.underlying == "SPY"
    assert abs((hottest.strike or 0) - 560) <= 5


def test_option_premiums_make_sense() -> None:
    u = Universe.for_market(Market.OPTIONS, seed=0, tail=0)
    expiry = dt.date(2025, 11, 21)
    call = {inst.strike: inst.price for inst in u if inst.underlying == "AAPL"
            and inst.expiration == expiry and inst.contract_type == "call"}  # fmt: skip
    assert call[180.0] > call[190.0] > call[200.0] > 0  # calls cheapen as strikes rise
    assert call[180.0] >= 10  # at least intrinsic value


def test_option_tail_is_written_on_the_stock_tail() -> None:
    options = Universe.for_market(Market.OPTIONS, seed=9, tail=60)
    synthetic = {name for name, _ in synthetic_stocks(9, 10)}
    stocks = Universe.for_market(Market.STOCKS, seed=9, tail=10)
    roots = {inst.underlying for inst in options} - {"SPY", "QQQ", "TSLA", "NVDA", "AAPL",
             "AMZN", "IWM", "META", "MSFT", "AMD", "PLTR", "GOOGL"}  # fmt: skip
    assert roots
    assert roots <= synthetic
    assert roots <= set(stocks.symbols)


def test_futures_front_months_and_venues() -> None:
    everything = Universe.for_market(Market.FUTURES, tail=0)
    for symbol in ("ESZ5", "NQZ5", "CLF6", "GCZ5"):
        assert symbol in everything
    assert everything.instruments[0].symbol == "ESZ5"
    cme = Universe.for_market(Market.FUTURES_CME, tail=0)
    nymex = Universe.for_market(Market.FUTURES_NYMEX, tail=0)
    assert "ESZ5" in cme
    assert "CLF6" not in cme
    assert "CLF6" in nymex
    assert "ESZ5" not in nymex
    assert everything["ZNZ5"].tick_size == 1 / 64  # a 64th of a point


def test_futures_months_follow_as_of() -> None:
    u = Universe.for_market(Market.FUTURES, tail=0, as_of=dt.date(2026, 4, 1))
    assert "ESM6" in u
    assert "ESZ5" not in u
