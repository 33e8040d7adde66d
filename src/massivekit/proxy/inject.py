"""Test mode: scenario frames mixed into the routed stream of each cluster.

When test mode is on, a task per cluster asks a
:class:`~massivekit.proxy.scenarios.ScenarioFeed` for marked test frames
(symbols starting ``ZZ``, every event carrying ``"test":true``) at a steady
rate and routes them exactly like upstream frames: clients holding
``T.ZZTEST1`` or ``T.*`` get them, in order with the real data. Switched by
``--test-mode``/``--scenario`` and by the admin commands.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from massivekit.auth import get_logger
from massivekit.config import Market
from massivekit.proxy.router import Router
from massivekit.proxy.scenarios import SCENARIOS, ScenarioFeed

__all__ = ["TestFeed"]

_log = get_logger("massivekit.proxy.inject")


class TestFeed:
    """The test-mode injectors of a proxy, one task per cluster while on.

    Args:
        on_frame: called before routing each injected frame (latency bookkeeping).
        rate: test events per second per cluster.
        interval: seconds between injections.
        seed: the scenario's seed.
    """

    __test__ = False  # not a pytest class, whatever its name says

    def __init__(
        self,
        on_frame: Callable[[], None] | None = None,
        *,
        rate: float = 200.0,
        interval: float = 0.05,
        seed: int = 0,
    ) -> None:
        self.rate = rate
        self.interval = interval
        self.seed = seed
        self.scenario = "normal"
        self.enabled = False
        self.frames_injected = 0
        self._on_frame = on_frame
        self._tasks: dict[Market, asyncio.Task[None]] = {}
        self._routers: dict[Market, Router] = {}

    def __repr__(self) -> str:
        return f"TestFeed(enabled={self.enabled}, scenario={self.scenario!r})"

    @staticmethod
    def check(scenario: str) -> str:
        """``scenario`` if it is known.

        Raises:
            ValueError: an unknown scenario name.
        """
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        return scenario

    def attach(self, market: Market, router: Router) -> None:
        """A cluster has clients now: inject into it while test mode is on."""
        self._routers[market] = router
        if self.enabled:
            self._start(market)

    async def enable(self, scenario: str | None = None, routers: Iterable[Market] = ()) -> None:
        """Turn test mode on (restarting the feeds on a new scenario).

        Raises:
            ValueError: an unknown scenario name.
        """
        if scenario is not None:
            self.check(scenario)
            if scenario != self.scenario:
                await self._stop_all()
                self.scenario = scenario
        self.enabled = True
        for market in self._routers:
            self._start(market)

    async def disable(self) -> None:
        """Turn test mode off."""
        self.enabled = False
        await self._stop_all()

    async def aclose(self) -> None:
        """Stop every injector."""
        await self.disable()

    def _start(self, market: Market) -> None:
        if market not in self._tasks:
            self._tasks[market] = asyncio.get_running_loop().create_task(
                self._run(market, self._routers[market]), name=f"proxy-test-{market.value}"
            )

    async def _stop_all(self) -> None:
        tasks, self._tasks = self._tasks, {}
        for task in tasks.values():
            task.cancel()
        if tasks:
            await asyncio.wait(tasks.values())

    async def _run(self, market: Market, router: Router) -> None:
        feed = ScenarioFeed(self.scenario, market, seed=self.seed)
        carry = 0.0
        while True:
            await asyncio.sleep(self.interval)  # the pace of the test feed, not a wait
            carry += self.rate * self.interval
            count = int(carry)
            if count <= 0:
                continue
            carry -= count
            for frame in feed.frames(count, int(time.time() * 1000)):
                if self._on_frame is not None:
                    self._on_frame()
                router.route(frame)
                self.frames_injected += 1
