"""The Unix socket option of the stream client and its adapters: the pieces without I/O."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from massivekit.errors import ConfigError
from massivekit.stream import StreamClient, StreamOptions
from massivekit.transport.socket import (
    AiohttpConnector,
    aiohttp_connector,
    connect_target,
    default_connector,
)
from massivekit.transport.socket_picows import PicowsConnector, _UnixSocket, picows_connector

KEY = "unit-key-123456"
PATH = "/run/massivekit/proxy.sock"


def test_connectors_take_the_path_and_default_to_tcp() -> None:
    assert isinstance(aiohttp_connector(unix_path=Path(PATH)), AiohttpConnector)
    assert AiohttpConnector(unix_path=Path(PATH)).unix_path == PATH
    assert PicowsConnector(unix_path=PATH).unix_path == PATH
    picows = picows_connector(read_chunk=0, unix_path=PATH)
    assert isinstance(picows, PicowsConnector)
    assert picows.unix_path == PATH
    default = default_connector(unix_path=PATH)
    assert isinstance(default, PicowsConnector)  # picows is installed here
    assert default.unix_path == PATH
    assert AiohttpConnector().unix_path is None
    assert PicowsConnector().unix_path is None


def test_connect_target_names_the_path_and_hides_tokens() -> None:
    assert connect_target("ws://localhost/stocks", None) == "ws://localhost/stocks"
    assert connect_target("ws://localhost/stocks", PATH) == f"ws://localhost/stocks via unix:{PATH}"
    target = connect_target("ws://localhost/stocks?token=s3cret", PATH)
    assert "s3cret" not in target
    assert PATH in target


def test_unix_socket_takes_tcp_options_as_no_ops() -> None:
    with _UnixSocket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        # What picows does to every socket it is given; the kernel refuses it here.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 4) == bytes(4)
        # Socket-level options still reach the kernel.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) > 0
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as plain,
        pytest.raises(OSError),  # EOPNOTSUPP: why _UnixSocket exists
    ):
        plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def test_client_unix_path_defaults_the_url_to_localhost() -> None:
    client = StreamClient(KEY, unix_path=Path(PATH), market="crypto")
    assert client.url == "ws://localhost/crypto"
    assert client.unix_path == PATH
    assert repr(client) == f"StreamClient('crypto@unix:{PATH}', disconnected)"
    assert KEY not in repr(client)
    kept = StreamClient(KEY, url="ws://proxy.local:8765/stocks", unix_path=PATH)
    assert kept.url == "ws://proxy.local:8765/stocks"  # its host is only the Host header
    assert StreamClient(KEY).unix_path is None


def test_client_unix_path_refuses_a_connector_and_an_empty_path() -> None:
    options = StreamOptions(connector=picows_connector())
    with pytest.raises(ConfigError, match=r"connector"):
        StreamClient(KEY, unix_path=PATH, options=options)
    with pytest.raises(ConfigError, match="empty"):
        StreamClient(KEY, unix_path="")
