"""Fixtures of the functional tier: real servers on loopback, port 0."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from massivekit.config import Market
from massivekit.mock.keys import KeySpec
from massivekit.mock.server import MockServer
from massivekit.mock.ws import WsFaults

KEY = "functional-key"
OTHER_KEY = "second-key"
STOCKS_ONLY = "stocks-only-key"
NO_QUOTES = "no-quotes-key"


@pytest.fixture
async def mock() -> AsyncIterator[MockServer]:
    specs = [
        KeySpec(KEY),
        KeySpec(OTHER_KEY),
        KeySpec(STOCKS_ONLY, clusters=frozenset({Market.STOCKS})),
        KeySpec(NO_QUOTES, refused_prefixes=frozenset({"Q"})),
    ]
    async with MockServer(specs, seed=3, rate=5_000, ws_faults=WsFaults()) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def sock_path() -> Iterator[str]:
    """A Unix socket path in a fresh folder under /tmp (AF_UNIX paths: 107 bytes at most)."""
    folder = tempfile.mkdtemp(prefix="mk-", dir="/tmp")
    try:
        yield os.path.join(folder, "proxy.sock")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
