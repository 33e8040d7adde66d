"""Proxy configuration (flags > environment > TOML file), keys and frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from massivekit.auth import ApiKey
from massivekit.config import Market
from massivekit.errors import ConfigError
from massivekit.protocol.server import AuthDenial, AuthGrant
from massivekit.proxy.auth import ProxyAuthenticator, check_bearer
from massivekit.proxy.config import (
    DEFAULT_UPSTREAM,
    SlowClientPolicy,
    load_config,
    stream_url,
)
from massivekit.proxy.downstream import ws_text_header

TOML = """
[proxy]
port = 9100
upstream = "http://127.0.0.1:9000"
grace = 5
slow_client = "disconnect"
flush_interval = 0.002
flush_duty = 0.25
admin_token = "file-admin-token"

[[proxy.clients]]
name = "research"
key = "research-key-0001"
clusters = ["stocks", "futures/cme"]
"""


def test_defaults() -> None:
    config = load_config({}, env={})
    assert config.upstream == DEFAULT_UPSTREAM
    assert config.grace == 30.0
    assert config.flush_interval == 0.001
    assert config.flush_duty == 0.5
    assert config.upstream_key is None
    assert config.client_keys == ()


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "proxy.toml"
    path.write_text(TOML)
    env = {"MASSIVE_API_KEY": "upstream-key-123", "MASSIVEKIT_PROXY_CLIENT_KEYS": "env-key-00001"}
    config = load_config({"grace": 1.5, "client_keys": ["flag-key-0001"]}, env=env, file=path)
    assert config.port == 9100
    assert config.grace == 1.5
    assert config.slow_client is SlowClientPolicy.DISCONNECT
    assert config.flush_interval == 0.002
    assert config.flush_duty == 0.25
    assert config.upstream_key == ApiKey("upstream-key-123")
    names = [k.name for k in config.client_keys]
    assert names == ["research", "env0", "flag0"]
    assert config.client_keys[0].clusters == frozenset({Market.STOCKS, Market.FUTURES})
    assert "key" not in repr(config).replace("keys", "")


def test_unix_socket_path(tmp_path: Path) -> None:
    path = tmp_path / "proxy.toml"
    path.write_text('[proxy]\nunix = "/run/file.sock"\n')
    assert load_config({}, env={}).unix is None  # TCP only by default
    assert load_config({}, env={}, file=path).unix == "/run/file.sock"
    env = {"MASSIVEKIT_PROXY_UNIX": "/run/env.sock"}
    assert load_config({}, env=env, file=path).unix == "/run/env.sock"
    config = load_config({"unix": "/run/flag.sock"}, env=env, file=path)
    assert config.unix == "/run/flag.sock"
    assert "unix='/run/flag.sock'" in repr(config)
    assert load_config({"unix": ""}, env=env, file=path).unix is None  # the flag turns it off
    assert load_config({}, env={"MASSIVEKIT_PROXY_UNIX": " "}).unix is None


def test_env_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(TOML)
    assert load_config({}, env={"MASSIVEKIT_PROXY_CONFIG": str(path)}).port == 9100


@pytest.mark.parametrize(
    "text",
    [
        "[proxy\n",
        '[proxy]\nslow_client = "maybe"\n',
        '[[proxy.clients]]\nname = "x"\n',
        "[proxy]\nflush_duty = -1\n",
        "[proxy]\nflush_interval = -0.5\n",
    ],
)
def test_bad_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config({}, env={}, file=path)


def test_stream_urls() -> None:
    assert stream_url("http://127.0.0.1:9000", Market.STOCKS) == "ws://127.0.0.1:9000/stocks"
    assert stream_url("https://h/", Market.FUTURES_CME) == "wss://h/futures/cme"
    assert stream_url(DEFAULT_UPSTREAM, Market.CRYPTO) == "wss://socket.massive.com/crypto"
    with pytest.raises(ConfigError):
        stream_url("ftp://h", Market.STOCKS)


def test_authenticator() -> None:
    config = load_config({"client_keys": ["all-clusters-1"]}, env={})
    auth = ProxyAuthenticator(config.client_keys)
    assert isinstance(auth("all-clusters-1", Market.OPTIONS), AuthGrant)
    assert isinstance(auth("nope", Market.OPTIONS), AuthDenial)
    assert "all-clusters-1" not in repr(auth)


def test_bearer() -> None:
    token = ApiKey("admin-token-1")
    assert check_bearer("Bearer admin-token-1", token)
    assert not check_bearer("Bearer admin-token-2", token)
    assert not check_bearer("admin-token-1", token)
    assert not check_bearer("Bearer admin-token-1", None)


@pytest.mark.parametrize(("size", "length"), [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_ws_headers(size: int, length: int) -> None:
    header = ws_text_header(size)
    assert len(header) == length
    assert header[0] == 0x81
    assert header[1] & 0x80 == 0  # server frames are never masked
