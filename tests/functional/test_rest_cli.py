"""``massivekit get``: any endpoint method from the command line, against the mock."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from massivekit.rest import cli
from tests.functional.rest_support import (
    KEY,
    WINDOW_GTE,
    WINDOW_LT,
    RestMock,
    serve,
)


@pytest.fixture
async def rest_mock() -> AsyncIterator[RestMock]:
    async with serve() as mock:
        yield mock


WINDOW = [f"timestamp.gte={WINDOW_GTE}", f"timestamp_lt={WINDOW_LT}", "limit=30"]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="massivekit")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.add_parser(sub)
    return parser.parse_args(["get", *argv])


@pytest.fixture(autouse=True)
def key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASSIVE_API_KEY", KEY)


async def get(mock: RestMock, *argv: str) -> int:
    async with asyncio.timeout(20):
        return await cli.run(parse(*argv, "--base-url", mock.url))


async def test_json_of_a_paginated_list(
    rest_mock: RestMock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await get(rest_mock, "list_trades", "AAPL", *WINDOW, "--format", "json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 87
    assert {"price", "size", "sip_timestamp"} <= set(rows[0])
    assert rest_mock.seen[0].query["timestamp.gte"] == str(WINDOW_GTE)
    assert rest_mock.seen[0].query["timestamp.lt"] == str(WINDOW_LT)
    assert rest_mock.seen[0].path == "/v3/trades/AAPL"


async def test_limit_stops_early_and_csv_has_a_header(
    rest_mock: RestMock, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("list_trades", "ticker=AAPL", *WINDOW, "--format", "csv", "--limit", "40")
    assert await get(rest_mock, *argv) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 40
    assert rows[0]["price"]
    assert float(rows[0]["price"]) > 0
    assert len(rest_mock.seen) == 2


async def test_table_of_a_single_object(
    rest_mock: RestMock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await get(rest_mock, "get_last_trade", "AAPL") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[0] == "ticker"
    assert "price" in lines[0].split()
    assert lines[1].startswith("AAPL")


async def test_progress_on_stderr_and_output_to_a_file(
    rest_mock: RestMock, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "trades.json"
    argv = ("list_trades", "AAPL", *WINDOW, "--format", "json", "--progress", "-o", str(out))
    assert await get(rest_mock, *argv) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "page 3 · 87 items" in captured.err
    assert len(json.loads(out.read_text())) == 87


async def test_unknown_extra_arguments_go_to_the_query(
    rest_mock: RestMock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await get(rest_mock, "list_trades", "AAPL", *WINDOW, "custom.flag=yes") == 0
    assert rest_mock.seen[0].query["custom.flag"] == "yes"


async def test_usage_errors_exit_2(rest_mock: RestMock, capsys: pytest.CaptureFixture[str]) -> None:
    assert await get(rest_mock, "no_such_method") == 2
    assert await get(rest_mock, "aclose") == 2
    assert await get(rest_mock, "list_trades") == 2  # ticker is required
    assert await get(rest_mock, "list_trades", "AAPL", "MSFT") == 2
    assert await get(rest_mock, "list_trades", "AAPL", "limit=many") == 2
    err = capsys.readouterr().err
    assert "no endpoint method 'no_such_method'" in err
    assert "list_trades needs ticker" in err
    assert "too many positional values" in err
    assert "'many' is not a number" in err
    assert rest_mock.seen == []


async def test_api_errors_exit_1_without_the_key(
    rest_mock: RestMock, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASSIVE_API_KEY", "cli-wrong-key-123456")
    assert await get(rest_mock, "get_last_trade", "AAPL") == 1
    err = capsys.readouterr().err
    assert "AuthError" in err
    assert "status=401" in err
    assert "cli-wrong-key-123456" not in err


async def test_parquet_needs_pyarrow(
    rest_mock: RestMock, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "t.parquet"
    argv = ("list_trades", "AAPL", *WINDOW, "--format", "parquet", "-o", str(out))
    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert await get(rest_mock, *argv) == 2
        assert "needs pyarrow" in capsys.readouterr().err
        assert rest_mock.seen == []
        return
    assert await get(rest_mock, *argv) == 0
    assert pq.read_table(out).num_rows == 87


def test_values_are_converted_by_annotation() -> None:
    assert cli._convert("5", "int | None") == 5
    assert cli._convert("2.5", "float | None") == 2.5
    assert cli._convert("true", "bool | None") is True
    assert cli._convert("0", "bool") is False
    assert cli._convert("2024-01-02", "str | int | datetime | date | None") == "2024-01-02"
    with pytest.raises(cli.UsageError):
        cli._convert("maybe", "bool | None")


async def test_positional_values_skip_what_names_set_and_reach_optional_path_params(
    rest_mock: RestMock, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("list_aggs", "AAPL", "1", "day", "from=2024-01-02", "2024-01-10", "--format", "json")
    assert await get(rest_mock, *argv) == 0
    assert rest_mock.seen[0].path == "/v2/aggs/ticker/AAPL/range/1/day/2024-01-02/2024-01-10"
    assert len(json.loads(capsys.readouterr().out)) > 0
    assert await get(rest_mock, "get_ticker_details", "AAPL", "--format", "json") == 0
    details = json.loads(capsys.readouterr().out)
    assert details[0]["ticker"] == "AAPL"
