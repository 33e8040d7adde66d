"""Retries, 429, timeouts, the client-side rate limiter, and secrets on every error path.

Sleeps are injected: a test records the waits the client asks for instead of
waiting them, so backoff and Retry-After are checked without losing time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from massivekit.auth import ApiKey
from massivekit.config import RestConfig, RetryPolicy, Timeouts
from massivekit.errors import (
    AuthError,
    BadRequest,
    DeserializeError,
    MassiveError,
    RateLimited,
    RequestTimeout,
    ServerError,
    TransportError,
)
from massivekit.rest import AsyncRestClient, CallOptions, RateLimit
from massivekit.rest._models import Trade
from tests.functional.rest_support import (
    KEY,
    WINDOW_GTE,
    WINDOW_LT,
    RestMock,
    closed_port,
    serve,
)


@pytest.fixture
async def rest_mock() -> AsyncIterator[RestMock]:
    async with serve() as mock:
        yield mock


POLICY = RetryPolicy(attempts=4, base_delay=0.5, max_delay=4.0, rate_limit_budget=10.0)
LAST_TRADE = "/v2/last/trade/{stocksTicker}"


class Sleeps:
    """An injected sleep: records each wait, optionally acts on it, never waits."""

    def __init__(self, on_sleep: Callable[[float], None] | None = None) -> None:
        self.waits: list[float] = []
        self.on_sleep = on_sleep

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep(seconds)


def make_client(
    url: str, sleep: Callable[[float], Awaitable[None]], **config: object
) -> AsyncRestClient:
    base = RestConfig(api_key=ApiKey(KEY), base_url=url, retry=POLICY)
    return AsyncRestClient(config=replace(base, **config), sleep=sleep)  # type: ignore[arg-type]


# -- retries -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_5xx_burst_is_retried_with_jittered_backoff(
    rest_mock: RestMock, status: int
) -> None:
    sleeps = Sleeps()
    rest_mock.faults.inject_5xx(3, status=status)
    async with make_client(rest_mock.url, sleeps) as client, asyncio.timeout(10):
        last = await client.get_last_trade("AAPL")
    assert last.ticker == "AAPL"
    assert rest_mock.stats.by_status == {status: 3, 200: 1}
    assert len(sleeps.waits) == 3
    for n, wait in enumerate(sleeps.waits, start=1):
        assert 0.0 <= wait <= min(POLICY.max_delay, POLICY.base_delay * 2 ** (n - 1))


async def test_attempts_are_bounded_then_the_last_error_is_raised(rest_mock: RestMock) -> None:
    sleeps = Sleeps()
    rest_mock.faults.inject_5xx(10, status=503)
    async with make_client(rest_mock.url, sleeps) as client:
        with pytest.raises(ServerError) as caught:
            async with asyncio.timeout(10):
                await client.get_last_trade("AAPL")
    assert caught.value.status == 503
    assert caught.value.request_id
    assert caught.value.body_preview
    assert "Service Unavailable" in caught.value.body_preview
    assert rest_mock.stats.total == POLICY.attempts
    assert len(sleeps.waits) == POLICY.attempts - 1


async def test_retries_can_be_set_per_call_and_per_client(rest_mock: RestMock) -> None:
    sleeps = Sleeps()
    rest_mock.faults.inject_5xx(10, status=502)
    async with make_client(rest_mock.url, sleeps) as client:
        with pytest.raises(ServerError):
            async with asyncio.timeout(10):
                await client.get_last_trade("AAPL", options=CallOptions(retries=0))
    assert rest_mock.stats.total == 1
    async with AsyncRestClient(KEY, base_url=rest_mock.url, retries=1, sleep=sleeps) as client:
        with pytest.raises(ServerError):
            async with asyncio.timeout(10):
                await client.get_last_trade("AAPL")
    assert rest_mock.stats.total == 3


async def test_a_failing_page_is_retried_in_the_middle_of_a_list(rest_mock: RestMock) -> None:
    sleeps = Sleeps()
    async with make_client(rest_mock.url, sleeps) as client, asyncio.timeout(10):
        pages = client.list_trades(
            "AAPL", timestamp_gte=WINDOW_GTE, timestamp_lt=WINDOW_LT, limit=30
        ).pages()
        first = await anext(pages)
        await rest_mock.wait_requests(2)  # the prefetch of page 2 has gone out: fail page 3
        rest_mock.faults.inject_5xx(2)
        rest = [page async for page in pages]
    assert len(first.items) + sum(len(p.items) for p in rest) == 87
    assert rest_mock.stats.by_status[503] == 2
    assert len(sleeps.waits) == 2


async def test_connect_errors_are_retried_then_raised_as_transport_errors() -> None:
    sleeps = Sleeps()
    url = f"http://127.0.0.1:{closed_port()}"
    async with make_client(url, sleeps) as client:
        with pytest.raises(TransportError) as caught:
            async with asyncio.timeout(10):
                await client.get_last_trade("AAPL")
    assert not isinstance(caught.value, RequestTimeout)
    assert caught.value.__cause__ is not None  # chained from the aiohttp error
    assert len(sleeps.waits) == POLICY.attempts - 1


async def test_connect_errors_recover_when_the_server_comes_up() -> None:
    # The first attempt finds the port closed; the backoff "sleep" starts the
    # server on that very port, and the retry gets the answer.
    port = closed_port()
    async with contextlib.AsyncExitStack() as stack:

        async def start_server(_: float) -> None:
            if not started:
                started.append(await stack.enter_async_context(serve(port)))

        started: list[RestMock] = []
        client = make_client(f"http://127.0.0.1:{port}", start_server)
        async with client, asyncio.timeout(10):
            last = await client.get_last_trade("AAPL")
        assert last.ticker == "AAPL"
        assert started[0].stats.total == 1


# -- 429 -----------------------------------------------------------------------------


async def test_429_waits_retry_after_then_succeeds(rest_mock: RestMock) -> None:
    faults = rest_mock.faults
    faults.request_budget, faults.retry_after = 1, 7

    def window_passes(_: float) -> None:
        faults.request_budget = None

    sleeps = Sleeps(window_passes)
    async with make_client(rest_mock.url, sleeps) as client, asyncio.timeout(10):
        await client.get_last_trade("AAPL")
        await client.get_last_trade("AAPL")
    assert sleeps.waits == [7.0]
    assert rest_mock.stats.by_status == {200: 2, 429: 1}


async def test_429_over_the_budget_raises_rate_limited_with_retry_after(
    rest_mock: RestMock,
) -> None:
    faults = rest_mock.faults
    faults.request_budget, faults.retry_after = 1, 4
    sleeps = Sleeps()
    async with make_client(rest_mock.url, sleeps) as client:
        async with asyncio.timeout(10):
            await client.get_last_trade("AAPL")
        with pytest.raises(RateLimited) as caught:
            async with asyncio.timeout(10):
                await client.get_last_trade("AAPL")
    assert sleeps.waits == [4.0, 4.0]  # 4 + 4 within the 10 s budget; 12 would not be
    error = caught.value
    assert error.status == 429
    assert error.retry_after == 4.0
    assert error.request_id
    assert rest_mock.stats.by_status == {200: 1, 429: 3}


async def test_a_single_429_wait_longer_than_the_budget_is_not_waited(
    rest_mock: RestMock,
) -> None:
    faults = rest_mock.faults
    faults.request_budget, faults.retry_after = 0, 60
    sleeps = Sleeps()
    async with make_client(rest_mock.url, sleeps) as client:
        with pytest.raises(RateLimited) as caught:
            async with asyncio.timeout(10):
                await client.get_last_trade("AAPL")
    assert sleeps.waits == []
    assert caught.value.retry_after == 60.0


# -- timeouts ------------------------------------------------------------------------


async def test_a_call_timeout_bounds_the_whole_call(rest_mock: RestMock) -> None:
    rest_mock.faults.latency = 0.5
    async with make_client(rest_mock.url, Sleeps()) as client:
        with pytest.raises(RequestTimeout) as caught:
            async with asyncio.timeout(10):
                await client.get_last_trade("AAPL", options=CallOptions(timeout=0.05))
    assert "0.05" in str(caught.value)
    assert rest_mock.stats.total == 1  # the deadline is spent: no retry


async def test_a_read_timeout_is_retried_within_the_attempts(rest_mock: RestMock) -> None:
    rest_mock.faults.latency = 0.5
    sleeps = Sleeps()
    timeouts = Timeouts(connect=5.0, read=0.05, total=30.0)
    async with make_client(rest_mock.url, sleeps, timeouts=timeouts) as client:
        with pytest.raises(RequestTimeout):
            async with asyncio.timeout(10):
                await client.get_last_trade("AAPL", options=CallOptions(retries=1))
    await rest_mock.wait_requests(2)
    assert len(sleeps.waits) == 1


# -- the client-side rate limiter --------------------------------------------------


class FakeTime:
    """A clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


async def test_the_rate_limiter_spaces_requests_to_the_plan(rest_mock: RestMock) -> None:
    time = FakeTime()
    async with AsyncRestClient(
        KEY,
        base_url=rest_mock.url,
        rate_limit=RateLimit(requests=2, per=60.0),
        sleep=time.sleep,
        clock=time.clock,
    ) as client:
        async with asyncio.timeout(10):
            for _ in range(5):
                await client.get_last_trade("AAPL")
    assert time.waits == [60.0, 60.0]
    assert rest_mock.stats.total == 5


async def test_the_rate_limiter_is_shared_by_concurrent_calls(rest_mock: RestMock) -> None:
    time = FakeTime()
    async with AsyncRestClient(
        KEY,
        base_url=rest_mock.url,
        rate_limit=RateLimit(requests=5, per=60.0),
        sleep=time.sleep,
        clock=time.clock,
    ) as client:
        async with asyncio.timeout(10):
            await asyncio.gather(*(client.get_last_trade("AAPL") for _ in range(12)))
    # Five go at once, five when the window has moved on (one wait moves the
    # shared clock for all), the last two a window later again.
    assert time.waits == [60.0, 60.0]
    assert time.now == 120.0
    assert rest_mock.stats.total == 12


async def test_retries_go_through_the_rate_limiter_too(rest_mock: RestMock) -> None:
    time = FakeTime()
    rest_mock.faults.inject_5xx(1)
    async with AsyncRestClient(
        KEY,
        base_url=rest_mock.url,
        rate_limit=RateLimit(requests=1, per=10.0),
        sleep=time.sleep,
        clock=time.clock,
    ) as client:
        async with asyncio.timeout(10):
            await client.get_last_trade("AAPL")
    assert rest_mock.stats.total == 2
    assert len(time.waits) == 2  # the backoff, then the limiter's wait for the second slot
    assert time.now >= 10.0


# -- secrets ----------------------------------------------------------------------------


def texts_of(error: BaseException) -> list[str]:
    """Everything an error may show: str, repr, preview, args, down its cause chain."""
    out: list[str] = []
    current: BaseException | None = error
    while current is not None:
        out += [str(current), repr(current), str(current.args)]
        out.append(str(getattr(current, "body_preview", "")))
        current = current.__cause__ or current.__context__
    return out


async def test_the_key_never_shows_in_errors_logs_or_reprs(
    rest_mock: RestMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="massivekit")
    unknown = ApiKey("unknown-key-9f8e7d6c5b4a")
    secrets = [KEY, unknown.reveal()]
    errors: list[MassiveError] = []

    async def expect(
        kind: type[MassiveError], call: Callable[[AsyncRestClient], Awaitable[object]]
    ) -> None:
        async with make_client(rest_mock.url, Sleeps()) as client:
            with pytest.raises(kind) as caught:
                async with asyncio.timeout(10):
                    await call(client)
            errors.append(caught.value)
            for text in (repr(client), str(client)):
                assert all(s not in text for s in secrets)

    faults = rest_mock.faults
    await expect(BadRequest, lambda c: c._get("/test/leaky-error", None, result=dict))
    faults.inject_5xx(10)
    await expect(ServerError, lambda c: c.get_last_trade("AAPL"))
    faults.fail_next = 0
    faults.request_budget, faults.retry_after = 0, 60
    await expect(RateLimited, lambda c: c.get_last_trade("AAPL"))
    faults.request_budget = None
    faults.malformed_json_next(1)
    await expect(DeserializeError, lambda c: c.get_last_trade("AAPL"))
    faults.latency = 0.2
    await expect(
        RequestTimeout, lambda c: c.get_last_trade("AAPL", options=CallOptions(timeout=0.01))
    )
    faults.latency = 0.0
    closed = f"http://127.0.0.1:{closed_port()}"
    async with AsyncRestClient(KEY, base_url=closed, sleep=Sleeps()) as client:
        with pytest.raises(TransportError) as caught:
            async with asyncio.timeout(10):
                await client.get_last_trade("AAPL")
        errors.append(caught.value)
    async with AsyncRestClient(unknown, base_url=rest_mock.url) as client:
        with pytest.raises(AuthError) as auth:
            async with asyncio.timeout(10):
                await client.get_last_trade("AAPL")
        errors.append(auth.value)
    async with make_client(rest_mock.url, Sleeps()) as client, asyncio.timeout(10):
        pages = [p async for p in client._list("/test/pages", None, item=Trade).pages()]
        raw = await client._get("/test/pages", None, result=dict, raw=True)
    assert len(errors) == 7
    shown = [t for e in errors for t in texts_of(e)]
    shown += [repr(p) for p in pages] + [repr(raw)]
    shown += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert "bad apiKey=<redacted>" in " ".join(shown)
    for text in shown:
        for secret in secrets:
            assert secret not in text
