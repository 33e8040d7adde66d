"""What the mock answers on each REST endpoint, independent of HTTP.

A handler takes a :class:`Call` (endpoint, parameters, seed, clock) and
returns a :class:`Reply`: the JSON body without ``next_url``, plus the state
to resume from when more pages remain. The HTTP layer (:mod:`.rest`) turns
that state into a ``cursor=`` URL; this module never sees a socket, so it is
tested without an event loop.

Endpoints holding huge time series (trades, quotes, aggregates) page through
index arithmetic; reference lists page through a deterministic universe
(:mod:`.rest_lists`); everything else is synthesized from the response schema
(:mod:`.rest_synth`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from massivekit.mock._rest_endpoints import EndpointSpec
from massivekit.mock.rest_bars import aggregate_page, day_bar, indicator_values
from massivekit.mock.rest_catalog import exchanges, ticker_types, universe
from massivekit.mock.rest_instruments import (
    NS_PER_MS,
    AssetClass,
    asset_class,
    day_start_ns,
    previous_trading_day,
    seed_of,
    session_ns,
    utc_date,
)
from massivekit.mock.rest_query import (
    BadRequest,
    parse_bool,
    parse_date,
    parse_int,
    parse_limit,
    parse_order,
    time_bounds,
)
from massivekit.mock.rest_series import tick_series
from massivekit.mock.rest_synth import Context, synthesize


class NotFound(Exception):
    """The service has no data for this request (answered 404 ``NOT_FOUND``)."""


@dataclass(frozen=True, slots=True)
class Call:
    """One request, parsed: what a handler needs and nothing about HTTP.

    Args:
        endpoint: the table row being served.
        path: path parameters by their spec names.
        query: query parameters (the original ones when resuming from a cursor).
        state: the decoded cursor, or ``None`` on a first page.
        seed: the mock's seed.
        now_ns: the mock's clock (nothing after it exists).
        request_id: this request's id.
    """

    endpoint: EndpointSpec
    path: Mapping[str, str]
    query: Mapping[str, str]
    state: Mapping[str, Any] | None
    seed: int
    now_ns: int
    request_id: str

    @property
    def ticker(self) -> str:
        """The instrument the request is about (``AAPL`` when it names none)."""
        for name, value in self.path.items():
            if name.lower().endswith("ticker") or name in ("optionContract", "id"):
                return value
            if name == "underlyingAsset" and "optionContract" not in self.path:
                return value
        if "from" in self.path and "to" in self.path:
            prefix = "X:" if "crypto" in self.endpoint.path else "C:"
            return f"{prefix}{self.path['from']}{self.path['to']}".upper()
        return self.query.get("ticker", "AAPL")

    def rng(self, *extra: object) -> random.Random:
        """A generator seeded by the seed, path and parameters: same request, same answer."""
        params = sorted({**self.path, **self.query}.items())
        return random.Random(seed_of(self.seed, self.endpoint.path, params, *extra))

    def limit(self, default: int = 1000) -> int:
        """The page size, checked against the endpoint's maximum."""
        pag = self.endpoint.paginate
        maximum = (pag.limit_max if pag else None) or 50_000
        return parse_limit(
            self.query.get("limit"), (pag.limit_default if pag else None) or default, maximum
        )


@dataclass(slots=True)
class Reply:
    """A handler's answer: the body (no ``next_url``) and the cursor state, if more remain."""

    body: Any
    resume: dict[str, Any] | None = None


Handler = Callable[[Call], Reply]


def envelope(call: Call, **fields: Any) -> dict[str, Any]:
    """The common ``{"status": "OK", "request_id": ...}`` envelope plus ``fields``."""
    return {"status": "OK", "request_id": call.request_id, **fields}


def context(call: Call, ticker: str | None = None, **overrides: Any) -> Context:
    """A synthesis context for ``call`` (about ``ticker`` if given)."""
    return Context(
        ticker=ticker or call.ticker,
        now_ns=call.now_ns,
        request_id=call.request_id,
        overrides={"request_id": call.request_id, "status": "OK", **overrides},
    )


# --- time series ----------------------------------------------------------------------------


def ticks(kind: str) -> Handler:
    """``/v3/trades/{ticker}`` or ``/v3/quotes/{ticker}``: real pagination over huge days."""

    def handle(call: Call) -> Reply:
        series = tick_series(call.ticker, "trades" if kind == "trades" else "quotes", call.seed)
        limit = call.limit()
        desc = parse_order(call.query.get("order"), "desc")
        if call.state is not None:
            lo, hi = int(call.state["lo"]), int(call.state["hi"])
        else:
            lo, hi = time_bounds(call.query, "timestamp", series.cls, call.now_ns)
        rows, resume = series.page(lo, hi, limit, desc)
        reply = Reply(envelope(call, results=rows))
        if resume is not None:
            reply.resume = {"lo": lo, "hi": resume} if desc else {"lo": resume, "hi": hi}
        return reply

    return handle


def _range_ms(call: Call, cls: AssetClass) -> tuple[int, int]:
    """``[from, to]`` of an aggregates URL as ``[lo, hi)`` Unix ms (dates are whole days)."""
    lo = _edge_ms(call.path["from"], cls, start=True)
    hi = _edge_ms(call.path["to"], cls, start=False)
    return lo, min(hi, call.now_ns // NS_PER_MS + 1)


def _edge_ms(raw: str, cls: AssetClass, *, start: bool) -> int:
    if raw.isdigit():
        return int(raw) + (0 if start else 1)
    day = parse_date("from" if start else "to", raw)
    return day_start_ns(day if start else day + timedelta(days=1), cls) // NS_PER_MS


def aggregates(call: Call) -> Reply:
    """``/v2/aggs/ticker/{t}/range/{m}/{span}/{from}/{to}``: bars, paginated by ``next_url``."""
    ticker = call.ticker
    multiplier = parse_int("multiplier", call.path["multiplier"])
    if multiplier < 1:
        raise BadRequest("invalid multiplier: must be >= 1")
    timespan = call.path["timespan"]
    desc = parse_order(call.query.get("sort"), "asc")
    if call.state is not None:
        lo, hi = int(call.state["lo"]), int(call.state["hi"])
    else:
        lo, hi = _range_ms(call, asset_class(ticker))
    limit = parse_limit(call.query.get("limit"), 5000, 50_000)
    bars, resume = aggregate_page(ticker, multiplier, timespan, (lo, hi), limit, desc, call.seed)
    adjusted = parse_bool("adjusted", call.query.get("adjusted", "true"))
    body = envelope(
        call,
        ticker=ticker,
        queryCount=len(bars),
        resultsCount=len(bars),
        adjusted=adjusted,
        results=bars,
    )
    reply = Reply(body)
    if resume is not None:
        reply.resume = {"lo": lo, "hi": resume} if desc else {"lo": resume, "hi": hi}
    return reply


def _bar_dict(bar: Any, ticker: str | None = None) -> dict[str, Any]:
    out = {"T": ticker} if ticker else {}
    out.update(v=bar.v, vw=bar.vw, o=bar.o, c=bar.c, h=bar.h, l=bar.l, t=bar.t, n=bar.n)
    return out


def previous_close(call: Call) -> Reply:
    """``/v2/aggs/ticker/{t}/prev``: the last complete session's bar."""
    ticker = call.ticker
    cls = asset_class(ticker)
    day = previous_trading_day(utc_date(call.now_ns) + timedelta(days=1), cls)
    session = session_ns(day, cls)
    if session is not None and session[1] > call.now_ns:
        day = previous_trading_day(day, cls)
    bar = day_bar(ticker, day, call.seed)
    results = [_bar_dict(bar, ticker)] if bar else []
    body = envelope(
        call, ticker=ticker, queryCount=len(results), resultsCount=len(results), adjusted=True
    )
    body["results"] = results
    return Reply(body)


def grouped_daily(call: Call) -> Reply:
    """``/v2/aggs/grouped/.../{date}``: one daily bar per instrument of the market."""
    day = parse_date("date", call.path["date"])
    market = (
        "crypto"
        if "crypto" in call.endpoint.path
        else "fx"
        if "/fx/" in call.endpoint.path
        else "stocks"
    )
    results = []
    for ticker in universe(market):
        bar = day_bar(ticker, day, call.seed)
        if bar is not None:
            results.append(_bar_dict(bar, ticker))
    body = envelope(call, adjusted=True, queryCount=len(results), resultsCount=len(results))
    body["results"] = results
    return Reply(body)


def open_close(call: Call) -> Reply:
    """``/v1/open-close/{t}/{date}``: the session's open, close, high, low and volume."""
    ticker = call.ticker
    day = parse_date("date", call.path["date"])
    bar = day_bar(ticker, day, call.seed)
    if bar is None or day_start_ns(day, asset_class(ticker)) > call.now_ns:
        raise NotFound("Data not found.")
    if "crypto" in call.endpoint.path:
        return _crypto_open_close(call, bar, day)
    body: dict[str, Any] = {
        "status": "OK",
        "from": day.isoformat(),
        "symbol": ticker,
        "open": bar.o,
        "high": bar.h,
        "low": bar.l,
        "close": bar.c,
        "afterHours": round(bar.c * 1.001, 2),
        "preMarket": round(bar.o),  # the spec types preMarket as an integer
        "request_id": call.request_id,
    }
    if asset_class(ticker) is not AssetClass.INDICES:
        body["volume"] = bar.v
    return Reply(body)


def _crypto_open_close(call: Call, bar: Any, day: date) -> Reply:
    ctx = context(call, day=day.isoformat(), symbol=f"{call.path['from']}-{call.path['to']}")
    body = synthesize(call.endpoint.response, ctx, call.rng())
    body.update({"open": bar.o, "close": bar.c, "isUTC": True, "request_id": call.request_id})
    return Reply(body)


# --- indicators -----------------------------------------------------------------------------

_INDICATOR_WINDOWS: Final = {"sma": 50, "ema": 50, "rsi": 14, "macd": 26}
_SPAN_MS: Final = {
    "minute": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "week": 7 * 86_400_000,
    "month": 31 * 86_400_000,
    "quarter": 92 * 86_400_000,
    "year": 366 * 86_400_000,
}


def indicator(call: Call) -> Reply:
    """``/v1/indicators/{sma,ema,rsi,macd}/{t}``: values computed from the mock's own bars."""
    name = call.endpoint.path.split("/")[3]
    ticker = call.ticker
    timespan = call.query.get("timespan", "day")
    window = parse_int("window", call.query.get("window", str(_INDICATOR_WINDOWS[name])))
    macd = tuple(
        parse_int(k, call.query.get(k, str(d)))
        for k, d in (("short_window", 12), ("long_window", 26), ("signal_window", 9))
    )
    limit = parse_limit(call.query.get("limit"), 10, 5000)
    desc = parse_order(call.query.get("order"), "desc")
    if window < 1 or min(macd) < 1:
        raise BadRequest("invalid window: must be >= 1")
    lo, hi = time_bounds(call.query, "timestamp", asset_class(ticker), call.now_ns)
    warmup = max(window, macd[1] + macd[2]) if name == "macd" else window
    # Only the last limit+warmup bars before `hi` matter: don't enumerate decades of days.
    span_ms = _SPAN_MS.get(timespan, 86_400_000) * (limit + warmup) * 3 + 10 * 86_400_000
    bounds = (max(lo // NS_PER_MS, hi // NS_PER_MS - span_ms), hi // NS_PER_MS + 1)
    bars, _ = aggregate_page(ticker, 1, timespan, bounds, limit + warmup, True, call.seed)
    bars.reverse()
    series_type = call.query.get("series_type", "close")
    points = [getattr(bar, series_type[0]) for bar in bars]
    values = indicator_values(name, points, window, (macd[0], macd[1], macd[2]))
    rows = [{"timestamp": bar.t, **v} for bar, v in zip(bars, values, strict=True)][-limit:]
    if desc:
        rows.reverse()
    url = f"/v2/aggs/ticker/{ticker}/range/1/{timespan}/{bounds[0]}/{bounds[1] - 1}"
    results: dict[str, Any] = {"values": rows, "underlying": {"url": url}}
    if parse_bool("expand_underlying", call.query.get("expand_underlying", "false")):
        results["underlying"]["aggregates"] = [_bar_dict(b) for b in bars[-limit:]]
    return Reply(envelope(call, results=results))


# --- everything else ------------------------------------------------------------------------


def reference_table(call: Call) -> Reply:
    """``/v3/reference/exchanges`` and ``/tickers/types``: small static tables, filtered."""
    rows = exchanges() if call.endpoint.path.endswith("exchanges") else ticker_types()
    for name in ("asset_class", "locale"):
        if name in call.query:
            rows = [r for r in rows if r[name] == call.query[name]]
    return Reply(envelope(call, count=len(rows), results=rows))


def synthesized(call: Call) -> Reply:
    """Any other endpoint: a schema-valid body about the request's instrument."""
    overrides: dict[str, Any] = {}
    when = call.now_ns
    if "date" in call.path:
        day = parse_date("date", call.path["date"])
        when = min(when, day_start_ns(day + timedelta(days=1), asset_class(call.ticker)) - 1)
        overrides["day"] = day.isoformat()
    if "from" in call.path and "to" in call.path:
        _pair_overrides(call, overrides)
    if call.endpoint.path == "/v1/marketstatus/now":
        overrides["market"] = "open"
    ctx = Context(
        ticker=call.ticker,
        now_ns=when,
        request_id=call.request_id,
        overrides={"request_id": call.request_id, "status": "OK", **overrides},
    )
    body = synthesize(call.endpoint.response, ctx, call.rng())
    if isinstance(body, dict):
        _fill_ticker_lists(call, ctx, body)
        _count(body)
    return Reply(body)


def _pair_overrides(call: Call, overrides: dict[str, Any]) -> None:
    base, quote = call.path["from"].upper(), call.path["to"].upper()
    crypto = "crypto" in call.endpoint.path
    overrides.update(
        {"from": base, "to": quote, "symbol": f"{base}{'-' if crypto else '/'}{quote}"}
    )
    overrides["pair"] = overrides["symbol"]
    if "amount" in call.query:
        amount = float(call.query["amount"])
        precision = parse_int("precision", call.query.get("precision", "2"))
        rate = Context(ticker=call.ticker, now_ns=call.now_ns).price(random.Random(0), 0)
        overrides.update(initialAmount=amount, converted=round(amount * rate, precision))


_LIST_KEYS: Final = ("tickers", "results")


def _fill_ticker_lists(call: Call, ctx: Context, body: dict[str, Any]) -> None:
    """Give top-level lists of per-ticker objects one entry per requested ticker."""
    schema = call.endpoint.response.get("properties", {})
    for key in _LIST_KEYS:
        items = schema.get(key, {}).get("items", {})
        if "ticker" not in items.get("properties", {}) or key not in body:
            continue
        tickers = _requested_tickers(call)
        rng = call.rng(key)
        rows = [synthesize(items, ctx.with_ticker(t), rng) for t in tickers]
        direction = call.path.get("direction")
        if direction is not None and all("todaysChangePerc" in r for r in rows):
            rows.sort(key=lambda r: r["todaysChangePerc"], reverse=direction == "gainers")
        body[key] = rows


def _requested_tickers(call: Call) -> list[str]:
    for name in ("tickers", "ticker.any_of"):
        if call.query.get(name):
            return [t.strip() for t in call.query[name].split(",") if t.strip()]
    path = call.endpoint.path
    market = "crypto" if "crypto" in path else "fx" if "forex" in path else "stocks"
    names = list(universe(market))
    if "related-companies" in path:
        return [t for t in ("MSFT", "GOOGL", "AMZN", "META", "NVDA") if t != call.ticker]
    if "{direction}" in path:
        return names[:20]
    return names[:100]


def _count(body: dict[str, Any]) -> None:
    for key in ("results", "tickers"):
        if isinstance(body.get(key), list):
            for name in ("count", "resultsCount", "queryCount", "results_count"):
                if name in body:
                    body[name] = len(body[key])
