"""``make demo``: the mock Massive server and a live terminal view of one stream.

The view reads the stream the way any Massive client would: a WebSocket to
the mock, the sans-I/O :class:`~massivekit.protocol.client.ClientProtocol`
for the handshake and acks, and the cluster's typed decoder for the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from massivekit.auth import ApiKey
from massivekit.config import Market
from massivekit.mock.server import MockServer
from massivekit.models import decoder_for
from massivekit.protocol.client import AuthFailed, ClientProtocol, Data, DisconnectNotice

DEMO_KEY = "demo-key"
DEMO_TOPICS: dict[Market, tuple[str, ...]] = {
    Market.STOCKS: ("T.*", "Q.*"),
    Market.OPTIONS: ("T.*", "A.*"),
    Market.FOREX: ("C.*", "CA.*"),
    Market.CRYPTO: ("XT.*", "XQ.*"),
    Market.INDICES: ("V.*", "A.*"),
    Market.FUTURES: ("T.*", "Q.*"),
}
_DECAY = 0.8  # weight of the past in the events/s estimate, per refresh


@dataclass(slots=True)
class Line:
    """What the view knows of one instrument."""

    first: float
    last: float
    events: int = 0
    window: int = 0
    rate: float = 0.0


@dataclass
class Board:
    """Per-instrument last price, change and event rate."""

    lines: dict[str, Line] = field(default_factory=dict)
    events: int = 0
    frames: int = 0
    started: float = field(default_factory=time.monotonic)

    def update(self, symbol: str, price: float) -> None:
        line = self.lines.get(symbol)
        if line is None:
            line = self.lines[symbol] = Line(first=price, last=price)
        line.last = price
        line.events += 1
        line.window += 1
        self.events += 1

    def tick(self, seconds: float) -> None:
        for line in self.lines.values():
            line.rate = _DECAY * line.rate + (1 - _DECAY) * line.window / seconds
            line.window = 0

    def render(self, market: Market, top: int) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        hot = sorted(self.lines.items(), key=lambda kv: kv[1].rate, reverse=True)[:top]
        rows = [
            f"massivekit demo — {market.value} from the mock  "
            f"{self.events:,} events, {self.events / elapsed:,.0f}/s overall  (Ctrl-C to stop)",
            f"{'instrument':<24}{'last':>14}{'change':>10}{'events/s':>11}{'events':>10}",
        ]
        for symbol, line in hot:
            change = (line.last / line.first - 1) * 100 if line.first else 0.0
            rows.append(
                f"{symbol:<24}{line.last:>14,.4f}{change:>+9.2f}%{line.rate:>11,.1f}{line.events:>10,}"
            )
        return "\n".join(rows)


def _price(event: object) -> tuple[str, float] | None:
    """The (instrument, price) an event says, if it says one."""
    symbol = getattr(event, "instrument", None)
    if symbol is None:
        return None
    for name in ("price", "value", "close"):
        value = getattr(event, name, None)
        if isinstance(value, int | float):
            return symbol, float(value)
    bid, ask = getattr(event, "bid_price", None), getattr(event, "ask_price", None)
    if isinstance(bid, int | float) and isinstance(ask, int | float):
        return symbol, (bid + ask) / 2
    return None


async def _consume(url: str, market: Market, board: Board, topics: Sequence[str]) -> None:
    protocol = ClientProtocol(ApiKey(DEMO_KEY), market)
    decode = decoder_for(market).decode
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        protocol.subscribe(topics)
        async for msg in ws:
            if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                break
            for event in protocol.receive(msg.data):
                if isinstance(event, Data):
                    board.frames += 1
                    for item in decode(event.frame):
                        seen = _price(item)
                        if seen is not None:
                            board.update(*seen)
                elif isinstance(event, AuthFailed | DisconnectNotice):
                    raise SystemExit(f"stream ended: {event}")
            for action in protocol.data_to_send():
                await ws.send_str(action.decode())


async def _draw(board: Board, market: Market, top: int, plain: bool, every: float) -> None:
    out = sys.stdout
    while True:
        await asyncio.sleep(every)
        board.tick(every)
        screen = board.render(market, top)
        if plain:
            out.write(screen + "\n\n")
        else:
            out.write("\x1b[H\x1b[2J" + screen + "\n")
        out.flush()


async def run_demo(
    *,
    market: Market = Market.STOCKS,
    rate: float = 20_000.0,
    top: int = 15,
    duration: float | None = None,
    plain: bool = False,
    refresh: float = 0.5,
) -> Board:
    """Run the mock and the live view until cancelled or ``duration`` passes."""
    board = Board()
    topics = DEMO_TOPICS[market.family]
    async with MockServer([DEMO_KEY], rate=rate, seed=1) as mock:
        print(f"mock Massive listening on {mock.url} (key {DEMO_KEY!r})", flush=True)
        async with asyncio.TaskGroup() as group:
            consumer = group.create_task(_consume(mock.ws_url(market), market, board, topics))
            drawer = group.create_task(_draw(board, market, top, plain, refresh))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(duration):
                    await asyncio.shield(consumer)
            consumer.cancel()
            drawer.cancel()
    return board
