"""Lists of models to columns (and to Arrow, pandas, polars where installed)."""

from __future__ import annotations

import msgspec
import pytest

from massivekit.errors import ConfigError
from massivekit.rest import MissingDependency
from massivekit.rest._frames import as_plain, columns
from massivekit.rest._models import Agg, Trade


class Day(msgspec.Struct):
    open: float
    close: float | None = None


class Snapshot(msgspec.Struct):
    ticker: str
    day: Day | None = None
    history: list[Day] | None = None


TRADES = [Trade(price=1.0, size=10.0, conditions=[1, 2]), Trade(price=2.0, id="b")]


def test_columns_are_built_per_field_in_field_order() -> None:
    table = columns(TRADES)
    assert list(table) == list(Trade.__struct_fields__)
    assert table["price"] == [1.0, 2.0]
    assert table["id"] == [None, "b"]
    assert table["conditions"] == [[1, 2], None]
    assert columns([]) == {}


def test_columns_use_attribute_names_not_wire_names() -> None:
    assert columns([Agg(open=1.0, timestamp=5)])["open"] == [1.0]


def test_nested_structs_become_dicts() -> None:
    rows = [
        Snapshot("A", Day(1.0, 2.0), [Day(0.5)]),
        Snapshot("B"),
    ]
    table = columns(rows)
    assert table["day"] == [{"open": 1.0, "close": 2.0}, None]
    assert table["history"] == [[{"open": 0.5, "close": None}], None]
    assert as_plain(rows[1]) == {"ticker": "B", "day": None, "history": None}


def test_mixed_types_and_dicts_take_the_union_of_fields() -> None:
    table = columns([Day(1.0), {"open": 2.0, "extra": "x"}])
    assert table == {"open": [1.0, 2.0], "close": [None, None], "extra": [None, "x"]}


def test_missing_libraries_raise_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from massivekit.rest import _frames

    for module, helper in (
        ("pyarrow", _frames.to_arrow),
        ("pandas", _frames.to_pandas),
        ("polars", _frames.to_polars),
    ):
        monkeypatch.setitem(sys.modules, module, None)  # import now fails
        with pytest.raises(MissingDependency, match=f"needs {module}") as caught:
            helper(TRADES)
        assert isinstance(caught.value, ConfigError)
        assert isinstance(caught.value, ImportError)


def test_to_arrow() -> None:
    pa = pytest.importorskip("pyarrow")
    from massivekit.rest import to_arrow

    table = to_arrow(TRADES)
    assert isinstance(table, pa.Table)
    assert table.num_rows == 2
    assert table.column("price").to_pylist() == [1.0, 2.0]


def test_to_pandas() -> None:
    pytest.importorskip("pandas")
    from massivekit.rest import to_pandas

    frame = to_pandas(TRADES)
    assert list(frame["price"]) == [1.0, 2.0]


def test_to_polars() -> None:
    pytest.importorskip("polars")
    from massivekit.rest import to_polars

    frame = to_polars(TRADES)
    assert frame["price"].to_list() == [1.0, 2.0]
