"""Paginated reference lists: tickers, option contracts, option chains, news, dividends, ...

Each list is a deterministic sequence of *keys* (tickers or option contracts,
filtered by the request) and a row function; row ``i`` depends only on the
seed, the endpoint and its key, so the same row reads the same on every page
and a walk with any ``limit`` sees no gaps and no duplicates. The cursor holds
the offset and the original filters.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import Any, Final

from massivekit.mock.rest_catalog import (
    company_name,
    conditions,
    market_of,
    option_chain,
    universe,
)
from massivekit.mock.rest_handlers import Call, Reply, context, envelope
from massivekit.mock.rest_instruments import (
    WELL_KNOWN,
    AssetClass,
    OptionContract,
    asset_class,
    iso_ns,
    rounded_price,
    seed_of,
    utc_date,
)
from massivekit.mock.rest_query import BadRequest, parse_bool, parse_order
from massivekit.mock.rest_synth import Context, synthesize

GENERIC_ROWS: Final = 200
"""Rows of a list that has no natural universe (news, dividends, ...)."""

_ETFS: Final = frozenset({"SPY", "QQQ", "IWM"})
_RANGE: Final = {".gte": "ge", ".gt": "gt", ".lte": "le", ".lt": "lt"}

Row = Callable[[int], dict[str, Any]]


def paged_list(call: Call) -> Reply:
    """Serve one page of a list endpoint (``limit``, ``order``, ``cursor``)."""
    count, row = _source(call)
    pag = call.endpoint.paginate
    desc = parse_order(call.query.get("order"), (pag.order_default if pag else None) or "asc")
    limit = call.limit(10)
    offset = int(call.state["off"]) if call.state is not None else 0
    if desc:
        indexes = range(count - 1 - offset, max(count - 1 - offset - limit, -1), -1)
    else:
        indexes = range(offset, min(offset + limit, count))
    rows = [row(i) for i in indexes]
    body = envelope(call, results=rows)
    if "count" in call.endpoint.response.get("properties", {}):
        body["count"] = len(rows)
    resume = {"off": offset + limit} if offset + limit < count else None
    return Reply(body, resume)


def _source(call: Call) -> tuple[int, Row]:
    path = call.endpoint.path
    if path == "/v3/reference/tickers":
        keys = _tickers(call)
        return len(keys), lambda i: _ticker_row(call, keys[i])
    if path == "/v3/reference/options/contracts":
        underlyings = _underlyings(call)
        contracts = _contracts(call, underlyings)
        return len(contracts), lambda i: _contract_row(call, contracts[i])
    if path == "/v3/reference/conditions":
        rows = _conditions(call.query)
        return len(rows), rows.__getitem__
    if path.startswith("/v3/snapshot/options/"):
        contracts = _contracts(call, [call.path["underlyingAsset"]])
        return len(contracts), lambda i: option_snapshot(call, contracts[i])
    return _generic(call)


def _items(call: Call) -> Mapping[str, Any]:
    return call.endpoint.response.get("properties", {}).get("results", {}).get("items", {})  # type: ignore[no-any-return]


def _row_rng(call: Call, key: object) -> random.Random:
    return random.Random(seed_of(call.seed, call.endpoint.path, key))


def _matches(
    value: Any, query: Mapping[str, str], name: str, convert: Callable[[str], Any]
) -> bool:
    """Apply ``name``, ``name.gte``... and ``name.any_of`` filters to one value."""
    try:
        if name in query and value != convert(query[name]):
            return False
        if f"{name}.any_of" in query:
            allowed = {convert(v) for v in query[f"{name}.any_of"].split(",")}
            if value not in allowed:
                return False
        for suffix, op in _RANGE.items():
            if f"{name}{suffix}" in query:
                bound = convert(query[f"{name}{suffix}"])
                if not getattr(value, f"__{op}__")(bound):
                    return False
    except ValueError:
        raise BadRequest(f"invalid {name} filter") from None
    return True


def _conditions(query: Mapping[str, str]) -> list[dict[str, Any]]:
    rows = conditions()
    if "asset_class" in query:
        rows = [r for r in rows if r["asset_class"] == query["asset_class"]]
    if "data_type" in query:
        rows = [r for r in rows if query["data_type"] in r["data_types"]]  # type: ignore[operator]
    if "id" in query:
        rows = [r for r in rows if str(r["id"]) == query["id"]]
    if "sip" in query:
        rows = [r for r in rows if query["sip"] in r["sip_mapping"]]  # type: ignore[operator]
    return rows


# --- tickers --------------------------------------------------------------------------------


def _tickers(call: Call) -> Sequence[str]:
    q = call.query
    if "active" in q and not parse_bool("active", q["active"]):
        return ()  # the mock lists no delisted names
    names = universe(q.get("market", "stocks"))
    search = q.get("search", "").lower()
    keys = [
        t
        for t in names
        if _matches(t, q, "ticker", str)
        and (not search or search in t.lower() or search in company_name(t).lower())
    ]
    if "type" in q:
        keys = [t for t in keys if _ticker_type(t) == q["type"]]
    return keys


def _ticker_type(ticker: str) -> str:
    cls = asset_class(ticker)
    if cls is AssetClass.STOCKS:
        return "ETF" if ticker in _ETFS else "CS"
    return {AssetClass.INDICES: "INDEX"}.get(cls, "")


def _ticker_row(call: Call, ticker: str) -> dict[str, Any]:
    cls = asset_class(ticker)
    overrides = {
        "ticker": ticker,
        "name": company_name(ticker),
        "market": market_of(cls),
        "active": True,
        "last_updated_utc": iso_ns(call.now_ns - call.now_ns % 86_400_000_000_000),
    }
    ctx = replace(context(call, ticker), overrides={**context(call).overrides, **overrides})
    row = synthesize(_items(call), ctx, _row_rng(call, ticker))
    kind = _ticker_type(ticker)
    if kind:
        row["type"] = kind
    else:
        row.pop("type", None)
    return row  # type: ignore[no-any-return]


# --- options --------------------------------------------------------------------------------


def _underlyings(call: Call) -> list[str]:
    q = call.query
    if "underlying_ticker" in q:
        return [q["underlying_ticker"]]
    if "underlying_ticker.any_of" in q:
        return q["underlying_ticker.any_of"].split(",")
    return [t for t in sorted(WELL_KNOWN) if _matches(t, q, "underlying_ticker", str)]


def _contracts(call: Call, underlyings: Sequence[str]) -> list[OptionContract]:
    q = call.query
    anchor = date.fromisoformat(q["as_of"]) if "as_of" in q else utc_date(call.now_ns)
    out = [
        c
        for u in underlyings
        for c in option_chain(u, anchor)
        if ("contract_type" not in q or c.contract_type == q["contract_type"])
        and _matches(c.expiration, q, "expiration_date", date.fromisoformat)
        and _matches(c.strike, q, "strike_price", float)
    ]
    return sorted(out, key=lambda c: c.ticker)


def _contract_row(call: Call, contract: OptionContract) -> dict[str, Any]:
    overrides = {
        "ticker": contract.ticker,
        "underlying_ticker": contract.underlying,
        "contract_type": contract.contract_type,
        "expiration_date": contract.expiration.isoformat(),
        "strike_price": contract.strike,
        "shares_per_contract": 100,
        "exercise_style": "american",
        "primary_exchange": "BATO",
        "cfi": "OCASPS" if contract.contract_type == "call" else "OPASPS",
        "correction": 0,
    }
    ctx = replace(
        context(call, contract.ticker), overrides={**context(call).overrides, **overrides}
    )
    return synthesize(_items(call), ctx, _row_rng(call, contract.ticker))  # type: ignore[no-any-return]


def option_snapshot(call: Call, contract: OptionContract) -> dict[str, Any]:
    """One option contract's snapshot, consistent with its underlying's price."""
    schema = _items(call) or call.endpoint.response["properties"]["results"]
    ctx = context(call, contract.ticker)
    row: dict[str, Any] = synthesize(schema, ctx, _row_rng(call, contract.ticker))
    details = row.setdefault("details", {})
    details.update(
        ticker=contract.ticker,
        contract_type=contract.contract_type,
        expiration_date=contract.expiration.isoformat(),
        strike_price=contract.strike,
        shares_per_contract=100,
        exercise_style="american",
    )
    spot = rounded_price(contract.underlying, call.now_ns)
    mark = rounded_price(contract.ticker, call.now_ns)
    sign = 1 if contract.contract_type == "call" else -1
    asset = row.setdefault("underlying_asset", {})
    asset.update(ticker=contract.underlying, price=spot, timeframe="REAL-TIME")
    asset["change_to_break_even"] = round(contract.strike + sign * mark - spot, 4)
    row["break_even_price"] = round(contract.strike + sign * mark, 4)
    quote = row.get("last_quote", {})
    if quote:
        quote.update(bid=round(mark * 0.98, 2), ask=round(mark * 1.02 + 0.01, 2))
        quote["midpoint"] = round((quote["bid"] + quote["ask"]) / 2, 4)
    if "last_trade" in row:
        row["last_trade"]["price"] = mark
    return row


# --- everything else ------------------------------------------------------------------------


def _generic(call: Call) -> tuple[int, Row]:
    """A list with no natural universe: rows cycle through the requested tickers."""
    q = call.query
    if q.get("ticker.any_of"):
        tickers = q["ticker.any_of"].split(",")
        count = len(tickers)
    elif q.get("ticker"):
        tickers, count = [q["ticker"]], 20
    elif "/v3/snapshot/indices" in call.endpoint.path:
        tickers = list(universe("indices"))
        count = len(tickers)
    else:
        tickers, count = sorted(WELL_KNOWN), GENERIC_ROWS
    items = _items(call)
    sort = _sort_field(call, items)
    if sort == "ticker":
        tickers = sorted(tickers)

    def row(i: int) -> dict[str, Any]:
        ticker = (
            tickers[i % len(tickers)] if sort != "ticker" else tickers[i * len(tickers) // count]
        )
        overrides = dict(context(call).overrides)
        overrides.update(_sort_value(call, items, sort, i, count))
        ctx = Context(ticker, call.now_ns, call.request_id, None, overrides, i)
        return synthesize(items, ctx, _row_rng(call, i))  # type: ignore[no-any-return]

    return count, row


def _sort_field(call: Call, items: Mapping[str, Any]) -> str | None:
    pag = call.endpoint.paginate
    sort = call.query.get("sort") or (pag.sort_default if pag else None)
    return sort if sort in items.get("properties", {}) else None


def _sort_value(
    call: Call, items: Mapping[str, Any], sort: str | None, i: int, n: int
) -> dict[str, Any]:
    """Make the sort field increase with the row index, as a sorted result must."""
    if sort is None or sort == "ticker":
        return {}
    schema = items["properties"][sort]
    day = utc_date(call.now_ns) - timedelta(days=n - 1 - i)
    if schema.get("format") == "date-time":
        return {sort: f"{day.isoformat()}T13:30:00Z"}
    if schema.get("type") == "string" and sort.endswith(("date", "_utc")):
        return {sort: day.strftime("%Y%m%d") if "pattern" in schema else day.isoformat()}
    if schema.get("type") in ("integer", "number"):
        return {sort: i + 1}
    return {}
