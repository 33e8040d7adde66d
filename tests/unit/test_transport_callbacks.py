"""Which callbacks an event goes to: by class (and base class), by topic, wildcard, all."""

from __future__ import annotations

from typing import Any

import pytest

from massivekit.models import Aggregate, EquityQuote, EquityTrade, MinuteAggregate, SecondAggregate
from massivekit.stream.callbacks import CallbackRegistry


def make(name: str, log: list[str]) -> Any:
    return lambda event: log.append(name)


def test_matching_by_class_topic_and_wildcard() -> None:
    registry = CallbackRegistry()
    assert not registry
    log: list[str] = []
    trade_cb, agg_cb, aapl_cb, t_all, every = (
        make(n, log) for n in ("trade", "agg", "aapl", "t*", "all")
    )
    registry.add(EquityTrade, trade_cb)
    registry.add(Aggregate, agg_cb)
    registry.add("T.AAPL", aapl_cb)
    registry.add("T.*", t_all)
    registry.add("*", every)
    assert len(registry) == 5
    trade = EquityTrade(symbol="AAPL", price=1.0)
    assert registry.matching(trade) == [trade_cb, every, aapl_cb, t_all]
    assert registry.matching(EquityTrade(symbol="MSFT")) == [trade_cb, every, t_all]
    assert registry.matching(SecondAggregate(symbol="AAPL")) == [agg_cb, every]
    assert registry.matching(MinuteAggregate(symbol="X")) == [agg_cb, every], "subclasses match"
    assert registry.matching(EquityQuote(symbol="AAPL")) == [every]
    assert registry.remove("T.AAPL", aapl_cb)
    assert not registry.remove("T.AAPL", aapl_cb)
    assert registry.matching(trade) == [trade_cb, every, t_all]


def test_type_only_registrations_skip_the_topic_work() -> None:
    registry = CallbackRegistry()
    seen: list[Any] = []
    registry.add(EquityQuote, seen.append)
    assert registry.matching(EquityTrade()) == []
    assert registry.matching(EquityQuote()) == [seen.append]


def test_selectors_must_be_classes_or_strings() -> None:
    with pytest.raises(TypeError):
        CallbackRegistry().add(42, print)  # type: ignore[arg-type]
