"""``make demo``: the mock Massive upstream, the proxy, and clients through it.

Three programs share the one upstream connection the proxy holds to the mock
(as teams share one Massive key): a dashboard on the wildcards, whose stream
feeds the live view (last price, change, events/s of the hottest
instruments), and two narrower readers. Each is a :class:`StreamClient`
pointed at the proxy, exactly as it would be pointed at Massive.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field

from massivekit.config import Market
from massivekit.mock.server import MockServer
from massivekit.proxy.server import ProxyServer
from massivekit.stream import StreamClient

UPSTREAM_KEY = "demo-upstream-key"
CLIENT_KEY = "demo-client-key"
ADMIN_TOKEN = "demo-admin-token"
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


@dataclass(frozen=True, slots=True)
class DemoClient:
    """One program reading through the proxy."""

    name: str
    topics: tuple[str, ...]


def demo_clients(market: Market) -> tuple[DemoClient, ...]:
    """The programs the demo runs: one on the wildcards, two on a few names."""
    wide = DEMO_TOPICS[market.family]
    kinds = [t.split(".")[0] for t in wide]
    hot = _HOT.get(market.family, ())
    return (
        DemoClient("dashboard", wide),
        DemoClient("pairs-trader", tuple(f"{k}.{s}" for k in kinds for s in hot[:2])),
        DemoClient("risk", tuple(f"{kinds[0]}.{s}" for s in hot[:4])),
    )


_HOT: dict[Market, tuple[str, ...]] = {
    Market.STOCKS: ("AAPL", "MSFT", "SPY", "TSLA"),
    Market.FOREX: ("EUR/USD", "USD/JPY", "GBP/USD", "USD/CHF"),
    Market.CRYPTO: ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD"),
    Market.INDICES: ("I:SPX", "I:NDX", "I:VIX", "I:DJI"),
    Market.FUTURES: ("ESZ5", "NQZ5", "CLF6", "GCZ5"),
}


async def _consume(
    url: str, client: DemoClient, board: Board | None, counts: dict[str, int]
) -> None:
    """Read one client's stream through the proxy; only the first feeds the board."""
    async with StreamClient(api_key=CLIENT_KEY, url=url) as stream:
        await stream.subscribe(*client.topics)
        async for batch in stream:
            counts[client.name] += len(batch)
            if board is not None:
                for item in batch:
                    seen = _price(item)
                    if seen is not None:
                        board.update(*seen)


async def _draw(
    board: Board,
    market: Market,
    top: int,
    plain: bool,
    every: float,
    clients: tuple[DemoClient, ...],
    counts: dict[str, int],
) -> None:
    out = sys.stdout
    while True:
        await asyncio.sleep(every)  # the refresh period of the view, not a wait for an event
        board.tick(every)
        lines = [
            f"  {c.name:<14}{counts[c.name]:>12,} events  {','.join(c.topics)[:48]}"
            for c in clients
        ]
        screen = board.render(market, top) + "\nclients through the proxy:\n" + "\n".join(lines)
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
    """Run the mock upstream, the proxy and three clients until cancelled or ``duration``."""
    board = Board()
    clients = demo_clients(market)
    counts = {c.name: 0 for c in clients}
    async with (
        MockServer([UPSTREAM_KEY], rate=rate, seed=1) as mock,
        ProxyServer(
            upstream_url=mock.url,
            upstream_key=UPSTREAM_KEY,
            client_keys=[CLIENT_KEY],
            admin_token=ADMIN_TOKEN,
        ) as proxy,
    ):
        print(_urls(mock, proxy, market), flush=True)
        async with asyncio.TaskGroup() as group:
            readers = [
                group.create_task(
                    _consume(proxy.ws_url(market), c, board if i == 0 else None, counts)
                )
                for i, c in enumerate(clients)
            ]
            drawer = group.create_task(_draw(board, market, top, plain, refresh, clients, counts))
            # Until `duration` passes or a reader fails (the group then raises it).
            await asyncio.wait(readers, timeout=duration, return_when=asyncio.FIRST_EXCEPTION)
            for task in (*readers, drawer):
                task.cancel()
    return board


def _urls(mock: MockServer, proxy: ProxyServer, market: Market) -> str:
    return "\n".join(
        [
            f"mock Massive (upstream)  {mock.url}   key {UPSTREAM_KEY!r}",
            f"proxy                    {proxy.ws_url(market)}   client key {CLIENT_KEY!r}",
            f"  health                 {proxy.url}/health",
            f"  metrics                {proxy.url}/metrics",
            f"  admin                  curl -H 'Authorization: Bearer {ADMIN_TOKEN}' "
            f"{proxy.url}/admin/status",
            f"try the official client: WebSocketClient(api_key={CLIENT_KEY!r}, "
            f"feed='127.0.0.1:{proxy.port}', secure=False, market={market.value!r})",
            "",
        ]
    )
