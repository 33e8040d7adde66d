from __future__ import annotations

import dataclasses

import pytest

from massivekit.auth import ApiKey
from massivekit.config import API_KEY_ENV, Feed, Market, RestConfig, StreamConfig
from massivekit.errors import ConfigError


def test_from_env_reads_the_key_on_demand() -> None:
    config = RestConfig.from_env({API_KEY_ENV: "  k1  "})
    assert config.api_key == ApiKey("k1")
    stream = StreamConfig.from_env({API_KEY_ENV: "k2"}, market=Market.FOREX)
    assert stream.market is Market.FOREX


@pytest.mark.parametrize("env", [{}, {API_KEY_ENV: ""}, {API_KEY_ENV: "   "}])
def test_from_env_without_key_is_a_config_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=API_KEY_ENV):
        RestConfig.from_env(env)


def test_from_env_defaults_to_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, "from-process")
    assert StreamConfig.from_env().api_key == ApiKey("from-process")


def test_configs_are_frozen_values() -> None:
    config = RestConfig(api_key=ApiKey("k"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.base_url = "x"  # type: ignore[misc]
    changed = dataclasses.replace(config, base_url="http://127.0.0.1:1")
    assert changed.base_url == "http://127.0.0.1:1"
    assert config.base_url == "https://api.massive.com"


def test_stream_endpoint() -> None:
    key = ApiKey("k")
    assert StreamConfig(key).endpoint == "wss://socket.massive.com/stocks"
    assert (
        StreamConfig(key, Market.FUTURES_CME, Feed.DELAYED).endpoint
        == "wss://delayed.massive.com/futures/cme"
    )
    assert StreamConfig(key, url="ws://127.0.0.1:9/stocks").endpoint == "ws://127.0.0.1:9/stocks"


def test_market_family() -> None:
    assert Market.FUTURES_NYMEX.family is Market.FUTURES
    assert Market.STOCKS.family is Market.STOCKS
