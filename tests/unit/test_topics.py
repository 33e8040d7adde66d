"""Topics: ``EV.TICKER`` parsing, prefixes, wildcards and per-cluster checks."""

from __future__ import annotations

import pytest

from massivekit.config import Market
from massivekit.protocol.topics import (
    MAX_OPTION_CONTRACTS,
    PREFIXES,
    WILDCARD,
    TopicError,
    TopicProblem,
    accepts_prefix,
    check_topic,
    covers,
    explicit_only,
    is_wildcard,
    join_params,
    parse_topic,
    prefix_of,
    split_params,
    wildcard_of,
)


def test_constants() -> None:
    assert WILDCARD == "*"
    assert MAX_OPTION_CONTRACTS == 1_000


@pytest.mark.parametrize(
    ("params", "topics"),
    [
        ("T.AAPL,Q.*,AM.MSFT", ["T.AAPL", "Q.*", "AM.MSFT"]),
        # PROTOCOL.md: spaces after commas are trimmed.
        ("T.AAPL, Q.*,  AM.MSFT", ["T.AAPL", "Q.*", "AM.MSFT"]),
        ("  T.AAPL  ", ["T.AAPL"]),
        ("T.AAPL,,Q.*,", ["T.AAPL", "Q.*"]),
        ("T.AAPL, ,Q.*", ["T.AAPL", "Q.*"]),
        ("", []),
        (" , ,", []),
        ("T.AAPL,T.AAPL", ["T.AAPL", "T.AAPL"]),
    ],
)
def test_split_params(params: str, topics: list[str]) -> None:
    assert split_params(params) == topics


@pytest.mark.parametrize(
    ("topics", "params"),
    [
        (["T.AAPL", "Q.*", "AM.MSFT"], "T.AAPL,Q.*,AM.MSFT"),
        (("T.AAPL",), "T.AAPL"),
        ([], ""),
        (iter(["A.X", "A.Y"]), "A.X,A.Y"),
    ],
)
def test_join_params(topics: list[str], params: str) -> None:
    assert join_params(topics) == params


def test_split_inverts_join() -> None:
    topics = ["T.AAPL", "C.EUR/USD", "Q.O:SPY241220P00720000", "XT.BTC-USD"]
    assert split_params(join_params(topics)) == topics


@pytest.mark.parametrize(
    ("topic", "parts"),
    [
        ("T.AAPL", ("T", "AAPL")),
        ("T.*", ("T", "*")),
        # The prefix is everything before the *first* dot.
        ("T.BRK.A", ("T", "BRK.A")),
        ("Q.O:SPY241220P00720000", ("Q", "O:SPY241220P00720000")),
        ("C.EUR/USD", ("C", "EUR/USD")),
        ("XT.BTC-USD", ("XT", "BTC-USD")),
        ("V.I:SPX", ("V", "I:SPX")),
        ("AM.AAPL", ("AM", "AAPL")),
    ],
)
def test_parse_topic(topic: str, parts: tuple[str, str]) -> None:
    assert parse_topic(topic) == parts
    assert prefix_of(topic) == parts[0]


@pytest.mark.parametrize("topic", ["TAAPL", "", ".", ".AAPL", "T.", "*"])
def test_parse_topic_rejects_malformed(topic: str) -> None:
    with pytest.raises(TopicError, match=r"EV\.TICKER"):
        parse_topic(topic)


def test_topic_error_is_a_value_error() -> None:
    assert issubclass(TopicError, ValueError)


@pytest.mark.parametrize(
    ("topic", "prefix"),
    [("T.AAPL", "T"), ("AM.*", "AM"), ("T.BRK.A", "T"), ("TAAPL", "TAAPL"), ("", "")],
)
def test_prefix_of(topic: str, prefix: str) -> None:
    assert prefix_of(topic) == prefix


@pytest.mark.parametrize(
    ("topic", "wildcard"),
    [
        ("T.*", True),
        ("AM.*", True),
        ("T.AAPL", False),
        ("T.A*", False),
        ("T.**", False),
        ("*", False),
        ("T", False),
    ],
)
def test_is_wildcard(topic: str, wildcard: bool) -> None:
    assert is_wildcard(topic) is wildcard


@pytest.mark.parametrize(
    ("topic", "wildcard"),
    [("T.AAPL", "T.*"), ("AM.AAPL", "AM.*"), ("T.BRK.A", "T.*"), ("Q.*", "Q.*")],
)
def test_wildcard_of(topic: str, wildcard: str) -> None:
    assert wildcard_of(topic) == wildcard


@pytest.mark.parametrize(
    ("holder", "topic", "expected"),
    [
        ("T.AAPL", "T.AAPL", True),
        ("T.*", "T.AAPL", True),
        ("T.*", "T.*", True),
        ("T.*", "T.BRK.A", True),
        ("T.AAPL", "T.MSFT", False),
        ("T.AAPL", "T.*", False),
        ("T.*", "Q.AAPL", False),
        # PROTOCOL.md: a prefix is everything before the first dot, so A.* is not AM.*.
        ("A.*", "AM.AAPL", False),
        ("A.*", "AM.*", False),
        ("AM.*", "A.AAPL", False),
        ("A.*", "A.AAPL", True),
        ("AM.*", "AM.AAPL", True),
        ("X.*", "XT.BTC-USD", False),
    ],
)
def test_covers(holder: str, topic: str, expected: bool) -> None:
    assert covers(holder, topic) is expected


def test_every_market_has_a_prefix_set() -> None:
    assert {m.family for m in Market} == set(PREFIXES)


@pytest.mark.parametrize(
    ("market", "prefix", "accepted"),
    [
        (Market.STOCKS, "T", True),
        (Market.STOCKS, "LULD", True),
        (Market.STOCKS, "NOI", True),
        (Market.STOCKS, "XT", False),
        (Market.STOCKS, "C", False),
        (Market.STOCKS, "V", False),
        (Market.OPTIONS, "Q", True),
        (Market.OPTIONS, "LULD", False),
        (Market.FOREX, "C", True),
        (Market.FOREX, "CAS", True),
        (Market.FOREX, "T", False),
        (Market.CRYPTO, "XT", True),
        (Market.CRYPTO, "XL2", True),
        (Market.CRYPTO, "T", False),
        (Market.INDICES, "V", True),
        (Market.INDICES, "T", False),
        (Market.FUTURES, "Q", True),
        (Market.FUTURES, "LULD", False),
        # Every futures venue carries the futures events.
        (Market.FUTURES_CME, "T", True),
        (Market.FUTURES_CBOT, "AM", True),
        (Market.FUTURES_NYMEX, "Q", True),
        (Market.FUTURES_COMEX, "XT", False),
        (Market.STOCKS, "t", False),
        (Market.STOCKS, "", False),
    ],
)
def test_accepts_prefix(market: Market, prefix: str, accepted: bool) -> None:
    assert accepts_prefix(market, prefix) is accepted


@pytest.mark.parametrize(
    ("market", "prefix", "expected"),
    [
        (Market.OPTIONS, "Q", True),
        (Market.OPTIONS, "FMV", True),
        (Market.OPTIONS, "T", False),
        (Market.OPTIONS, "AM", False),
        (Market.STOCKS, "Q", False),
        (Market.STOCKS, "FMV", False),
        (Market.FUTURES_CME, "Q", False),
    ],
)
def test_explicit_only(market: Market, prefix: str, expected: bool) -> None:
    assert explicit_only(market, prefix) is expected


@pytest.mark.parametrize(
    ("problem", "silent"),
    [
        (TopicProblem.MALFORMED, True),
        (TopicProblem.UNKNOWN_PREFIX, True),
        (TopicProblem.WILDCARD_NOT_ALLOWED, False),
    ],
)
def test_problem_silence(problem: TopicProblem, silent: bool) -> None:
    assert problem.silent is silent


@pytest.mark.parametrize(
    ("market", "topic", "problem"),
    [
        (Market.STOCKS, "T.AAPL", None),
        (Market.STOCKS, "T.*", None),
        (Market.STOCKS, "Q.*", None),
        (Market.STOCKS, "T.BRK.A", None),
        (Market.STOCKS, "TAAPL", TopicProblem.MALFORMED),
        (Market.STOCKS, "T.", TopicProblem.MALFORMED),
        (Market.STOCKS, ".AAPL", TopicProblem.MALFORMED),
        (Market.STOCKS, "", TopicProblem.MALFORMED),
        (Market.STOCKS, "XT.BTC-USD", TopicProblem.UNKNOWN_PREFIX),
        (Market.STOCKS, "BOGUS.AAPL", TopicProblem.UNKNOWN_PREFIX),
        (Market.OPTIONS, "Q.O:SPY241220P00720000", None),
        (Market.OPTIONS, "FMV.O:SPY241220P00720000", None),
        (Market.OPTIONS, "T.*", None),
        (Market.OPTIONS, "AM.*", None),
        # PROTOCOL.md: options Q and FMV take explicit contracts only.
        (Market.OPTIONS, "Q.*", TopicProblem.WILDCARD_NOT_ALLOWED),
        (Market.OPTIONS, "FMV.*", TopicProblem.WILDCARD_NOT_ALLOWED),
        (Market.OPTIONS, "LULD.*", TopicProblem.UNKNOWN_PREFIX),
        (Market.FOREX, "C.EUR/USD", None),
        (Market.CRYPTO, "XT.BTC-USD", None),
        (Market.INDICES, "V.I:SPX", None),
        (Market.FUTURES_CME, "T.ESZ4", None),
        (Market.FUTURES_CME, "V.I:SPX", TopicProblem.UNKNOWN_PREFIX),
    ],
)
def test_check_topic(market: Market, topic: str, problem: TopicProblem | None) -> None:
    assert check_topic(market, topic) is problem
