"""The REST generator (tools/codegen_rest.py) and the modules it committed."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

from massivekit.mock._rest_extra_endpoints import EXTRA_ENDPOINTS
from massivekit.rest import _models
from massivekit.rest._endpoints import ENDPOINTS, AsyncEndpoints, _p, _query, _snapshot_locale
from massivekit.rest._endpoints_sync import SyncEndpoints

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"
GENERATED = {
    "models": REPO / "src/massivekit/rest/_models.py",
    "endpoints": REPO / "src/massivekit/rest/_endpoints.py",
    "endpoints_sync": REPO / "src/massivekit/rest/_endpoints_sync.py",
    "mock": REPO / "src/massivekit/mock/_rest_extra_endpoints.py",
}


@pytest.fixture(scope="module")
def codegen() -> Iterator[ModuleType]:
    added = str(TOOLS) not in sys.path
    if added:
        sys.path.insert(0, str(TOOLS))
    try:
        import codegen_rest

        yield codegen_rest
    finally:
        if added:
            sys.path.remove(str(TOOLS))


# --- the generator's rules ------------------------------------------------------------------


def test_wire_names_follow_the_official_rule(codegen: ModuleType) -> None:
    assert codegen.derived_wire("timestamp_gte") == "timestamp.gte"
    assert codegen.derived_wire("timestamp_lt") == "timestamp.lt"
    assert codegen.derived_wire("ticker_any_of") == "ticker.any_of"
    assert codegen.derived_wire("tickers_all_of") == "tickers.all_of"  # the official sends it raw
    assert codegen.derived_wire("published_utc") == "published_utc"
    assert codegen.python_name("ticker.any_of") == "ticker_any_of"
    assert codegen.python_name("timestampLimit") == "timestamp_limit"
    assert codegen.python_name("from") == "from_"
    assert codegen.python_name("entities.company_data.name.search") == (
        "entities_company_data_name_search"
    )


def test_spec_paths_match_the_most_literal_template(codegen: ModuleType) -> None:
    score = codegen._match_score
    assert score("/v3/reference/tickers/{ticker}", "/v3/reference/tickers/types") == 3
    assert score("/v3/reference/tickers/types", "/v3/reference/tickers/types") == 4
    assert score("/v3/reference/tickers/types", "/v3/reference/tickers/{ticker}") is None
    assert score("/v3/trades/{ticker}", "/v3/trades/{optionsTicker}/x") is None

    class Method:
        def __init__(self, url: str) -> None:
            self.url = url

    methods = {
        "get_ticker_details": Method("/v3/reference/tickers/{ticker}"),
        "get_ticker_types": Method("/v3/reference/tickers/types"),
    }
    served = codegen.match_spec_paths(
        methods, ["/v3/reference/tickers/types", "/v3/reference/tickers/{ticker}"]
    )
    assert served == {
        "get_ticker_details": ["/v3/reference/tickers/{ticker}"],
        "get_ticker_types": ["/v3/reference/tickers/types"],
    }


def test_names_and_types_of_the_model_builder(codegen: ModuleType) -> None:
    from _rest_models import ANY, ModelBuilder, Ty, camel, merge_types, snake

    assert snake("todaysChangePerc") == "todays_change_perc"
    assert snake("isUTC") == "is_utc"
    assert camel("lastQuote") == "LastQuote"
    assert merge_types(Ty("int"), Ty("float"), "x") == Ty("float")
    assert merge_types(Ty("int", unit="ns"), Ty("float"), "x") == Ty("int", unit="ns")
    assert merge_types(Ty("struct", name="A"), Ty("struct", name="B"), "x") == ANY

    builder = ModelBuilder({}, {"Bar": {"o": "open"}})
    schema = {
        "type": "object",
        "properties": {
            "o": {"type": "number"},
            "t": {"type": "integer", "x-unit": "ms"},
            "from": {"type": "string"},
            "nested": {"type": "object", "properties": {"x": {"type": "integer"}}},
        },
    }
    assert builder.from_spec("Bar", schema, None, "doc") == Ty("struct", name="Bar")
    fields = {
        f.wire: (f.attr, f.ty.render(), f.ty.unit) for f in builder.structs["Bar"].fields.values()
    }
    assert fields == {
        "o": ("open", "float", None),
        "t": ("t", "int", "ms"),
        "from": ("from_", "str", None),
        "nested": ("nested", "BarNested", None),
    }


def test_the_probe_learns_wire_keys_from_official_models(codegen: ModuleType) -> None:
    from _official import official_models

    models = official_models()
    agg = {f.attr: f.wire for f in models["Agg"].fields}
    assert agg["open"] == "o"
    assert agg["timestamp"] == "t"
    snapshot = {f.attr: (f.wire, f.model) for f in models["TickerSnapshot"].fields}
    assert snapshot["last_quote"] == ("lastQuote", "LastQuote")
    assert snapshot["fair_market_value"] == ("fmv", None)
    conversion = {f.attr: f.wire for f in models["RealTimeCurrencyConversion"].fields}
    assert conversion["from_"] == "from"  # corrected: no JSON key is spelled "from_"


def _write_spec(root: Path, text: str) -> None:
    (root / "rest.json").write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    (root / "SHA256SUMS").write_text(f"{digest}  rest.json\n")


def test_refuses_a_spec_that_fails_its_checksum(codegen: ModuleType, tmp_path: Path) -> None:
    _write_spec(tmp_path, json.dumps({"paths": {}}))
    (tmp_path / "rest.json").write_text(json.dumps({"paths": {"/v9/x": {}}}))
    out = tmp_path / "out"
    assert codegen.main(["--spec-dir", str(tmp_path), "--out-dir", str(out)]) == 1
    assert not out.exists()
    with pytest.raises(codegen.SpecError, match="does not match"):
        codegen.generate(tmp_path)


def test_refuses_a_spec_path_that_no_method_serves(codegen: ModuleType, tmp_path: Path) -> None:
    spec = {"paths": {"/v9/brand/new": {"get": {"responses": {}}}}}
    _write_spec(tmp_path, json.dumps(spec))
    with pytest.raises(codegen.SpecError, match="/v9/brand/new: no method serves it"):
        codegen.generate(tmp_path)


@pytest.mark.spec
def test_regenerating_reproduces_the_committed_modules(
    codegen: ModuleType, spec_dir: Path, rest_spec: dict[str, Any], tmp_path: Path
) -> None:
    assert codegen.main(["--spec-dir", str(spec_dir), "--out-dir", str(tmp_path)]) == 0
    for name, committed in GENERATED.items():
        fresh = tmp_path / codegen.OUTPUTS[name]
        assert fresh.read_text() == committed.read_text(), f"{committed.name} is stale"
    digest = hashlib.sha256((spec_dir / "rest.json").read_bytes()).hexdigest()
    assert digest in GENERATED["endpoints"].read_text().splitlines()[0]


@pytest.mark.spec
def test_every_spec_path_has_a_method(rest_spec: dict[str, Any]) -> None:
    served = {path for info in ENDPOINTS for path in info.spec_paths}
    assert set(rest_spec["paths"]) == served
    twins = [p for p, item in rest_spec["paths"].items() if item.get("x-massive-ignore")]
    assert twins
    for twin in twins:  # served by the method of their shape, never one of their own
        methods = [info for info in ENDPOINTS if twin in info.spec_paths]
        assert methods, twin
        for info in methods:
            assert any(not rest_spec["paths"][p].get("x-massive-ignore") for p in info.spec_paths)


# --- the committed modules ------------------------------------------------------------------


def test_header_names_the_spec_and_the_official_client() -> None:
    for path in GENERATED.values():
        first = path.read_text().splitlines()[0]
        assert first.startswith("# generated by tools/codegen_rest.py from rest.json sha256 ")
        assert "and massive 2.9.1; do not edit" in first


def test_the_table_describes_every_method_of_both_mixins() -> None:
    names = [info.name for info in ENDPOINTS]
    assert names == sorted(names)
    assert len(names) == len(set(names)) >= 102
    for info in ENDPOINTS:
        for mixin in (AsyncEndpoints, SyncEndpoints):
            signature = inspect.signature(getattr(mixin, info.name))
            wire_params = [p.name for p in info.params]
            assert set(wire_params) <= set(signature.parameters), info.name
            assert ("pagination" in signature.parameters) == info.paginated
        variables = re.findall(r"\{(\w+)\}", info.path)
        path_params = [p.name for p in info.params if p.location == "path"]
        assert set(path_params) <= set(variables) <= {*path_params, "locale"}, info.name
        assert hasattr(_models, info.model), info.model


def test_families_beyond_the_spec_are_served_by_the_mock() -> None:
    extra = [info for info in ENDPOINTS if not info.spec_paths]
    assert {info.path for info in extra} == {e.path for e in EXTRA_ENDPOINTS}
    assert all(info.official and info.paginated for info in extra)
    prefixes = {info.path.split("/")[1] for info in extra}
    assert {"futures", "benzinga", "etf-global", "fed", "tmx", "stocks"} <= prefixes


def test_sync_methods_are_not_coroutines_and_async_gets_are() -> None:
    for info in ENDPOINTS:
        async_method = getattr(AsyncEndpoints, info.name)
        assert inspect.iscoroutinefunction(async_method) == (not info.paginated), info.name
        assert not inspect.iscoroutinefunction(getattr(SyncEndpoints, info.name))


def test_models_rename_terse_keys_and_keep_timestamps_exact() -> None:
    bar = msgspec.json.decode(
        b'{"o": 1.5, "h": 2, "l": 1, "c": 1.75, "v": 100, "vw": 1.6, '
        b'"t": 1704205800123, "n": 7, "brand_new_field": [1]}',
        type=_models.Agg,
    )
    assert (bar.open, bar.high, bar.close, bar.transactions) == (1.5, 2.0, 1.75, 7)
    assert bar.otc is None
    assert bar.timestamp == 1704205800123
    assert bar.timestamp_units == {"timestamp": "ms"}
    assert bar.to_datetime("timestamp") == datetime(2024, 1, 2, 14, 30, 0, 123000, tzinfo=UTC)
    trade = msgspec.json.decode(b'{"sip_timestamp": 1704205800123456789}', type=_models.Trade)
    assert trade.sip_timestamp == 1704205800123456789
    assert trade.to_datetime("sip_timestamp") == datetime(2024, 1, 2, 14, 30, 0, 123456, tzinfo=UTC)
    assert trade.to_datetime("participant_timestamp") is None
    with pytest.raises(KeyError):
        trade.to_datetime("price")


def test_models_are_frozen_and_encode_back_to_wire_names() -> None:
    quote = _models.LastQuote(ask_price=1.25, bid_price=1.0, sip_timestamp=5)
    with pytest.raises(AttributeError):
        quote.ask_price = 2.0  # type: ignore[misc]
    assert msgspec.json.decode(msgspec.json.encode(quote)) == {"P": 1.25, "p": 1.0, "t": 5}


def test_model_attribute_names_match_the_official_models() -> None:
    snapshot = _models.TickerSnapshot.__struct_fields__
    assert {"day", "last_quote", "last_trade", "min", "prev_day", "todays_change"} <= set(snapshot)
    assert _models.Agg.__struct_encode_fields__[:4] == ("o", "h", "l", "c")
    assert _models.DailyOpenCloseAgg.__struct_fields__.count("from_") == 1


class _Color(Enum):
    RED = "red"


def test_path_and_query_helpers() -> None:
    assert _p("O:SPY250117C00560000") == "O%3ASPY250117C00560000"
    assert _p("a/b") == "a%2Fb"
    assert _p(date(2024, 1, 2)) == "2024-01-02"
    assert _p(datetime(2024, 1, 2, tzinfo=UTC)) == "1704153600000"
    assert _p(datetime(2024, 1, 2)) == "1704153600000"  # naive: UTC
    assert _p(_Color.RED) == "red"
    assert _p(5) == "5"
    assert _query({"x": 1, "limit": 9}, {"limit": 10, "sort": None, "c": _Color.RED}) == {
        "x": 1,
        "limit": 10,
        "c": "red",
    }
    assert _query(None, {}) == {}
    assert _snapshot_locale("stocks") == "us"
    assert _snapshot_locale("crypto") == "global"
