"""Aggregate bars (``/v2/aggs``) and technical indicators built on them.

Bars follow the same price path as the mock's trades and quotes
(:func:`~massivekit.mock.rest_instruments.price_at`): a bar opens at the path's
value at its start and closes at its value just before its end; high and low
stretch beyond both by a hashed margin, so ``l <= o, c <= h`` always holds.

Intraday bars (second, minute, hour) are a :class:`~massivekit.mock.rest_series.Series`
indexed per session like ticks, so ranges of years page without materialising
anything; calendar bars (day and up) are few enough to list.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from typing import Final

import msgspec

from massivekit.mock.rest_instruments import (
    NS_PER_MS,
    AssetClass,
    asset_class,
    daily_volume,
    day_start_ns,
    mix64,
    price_at,
    price_decimals,
    seed_of,
    session_ns,
    trades_on,
    trades_per_day,
    unit,
    utc_date,
)
from massivekit.mock.rest_series import DayRows, walk

INTRADAY_MS: Final = {"second": 1_000, "minute": 60_000, "hour": 3_600_000}
CALENDAR: Final = ("day", "week", "month", "quarter", "year")
_MAX_CALENDAR_DAYS: Final = 366 * 60  # a bound on what one request may enumerate


class Bar(msgspec.Struct, omit_defaults=True, gc=False):
    """One aggregate bar, keyed as the service keys them (``t`` in Unix ms)."""

    v: float
    vw: float
    o: float
    c: float
    h: float
    l: float  # noqa: E741 - the wire name
    t: int
    n: int


def make_bar(ticker: str, t_ms: int, start_ns: int, end_ns: int, sessions: float, key: int) -> Bar:
    """The bar of ``ticker`` covering ``[start_ns, end_ns)`` of trading time.

    Args:
        ticker: REST ticker.
        t_ms: the bar's timestamp (its window start).
        start_ns: first traded instant inside the window.
        end_ns: end of the last traded instant inside the window.
        sessions: how many full sessions the window spans (scales volume).
        key: seed for the hashed margins and volume.
    """
    decimals = price_decimals(ticker)
    o = price_at(ticker, start_ns)
    c = price_at(ticker, end_ns - 1)
    h_mix, l_mix = mix64(key ^ t_ms), mix64(key ^ ~t_ms)
    minutes = max((end_ns - start_ns) / 60e9, 1 / 60)
    reach = min(0.0004 * math.sqrt(minutes), 0.04)
    h = max(o, c) * (1 + reach * (0.1 + unit(h_mix)))
    low = min(o, c) * (1 - reach * (0.1 + unit(l_mix)))
    floor = 10.0**-decimals
    o, c, h, low = (max(round(x, decimals), floor) for x in (o, c, h, low))
    volume = max(1, round(daily_volume(ticker) * sessions * (0.4 + 1.2 * unit(h_mix ^ l_mix))))
    trades = max(1, round(trades_per_day(ticker) * sessions * (0.4 + 1.2 * unit(h_mix))))
    vw = round(min(max((o + c + h + low) / 4, low), h), 4)
    return Bar(v=volume, vw=vw, o=o, c=c, h=h, l=low, t=t_ms, n=min(trades, volume))


class IntradayBars:
    """Second, minute and hour bars laid out per session (a walkable series in ms)."""

    unit_ns = NS_PER_MS

    def __init__(self, ticker: str, bucket_ms: int, seed: int) -> None:
        self.ticker = ticker
        self.bucket_ms = bucket_ms
        self.cls = asset_class(ticker)
        self.key = seed_of(seed, ticker, "bars")

    def day_rows(self, day: date) -> DayRows | None:
        """Bars of one session, aligned to multiples of the bucket since the epoch."""
        session = session_ns(day, self.cls)
        if session is None:
            return None
        start_ms, end_ms = session[0] // NS_PER_MS, session[1] // NS_PER_MS
        first = -(-start_ms // self.bucket_ms) * self.bucket_ms
        count = -(-(end_ms - first) // self.bucket_ms)
        return DayRows(day, first, self.bucket_ms, count) if count > 0 else None

    def page(self, lo: int, hi: int, limit: int, desc: bool) -> tuple[list[Bar], int | None]:
        """Up to ``limit`` bars with ``lo <= t < hi`` (ms); see ``TickSeries.page``."""
        segments, more = walk(self, lo, hi, limit, desc)
        bars: list[Bar] = []
        for rows, i0, i1 in segments:
            indexes = range(i1 - 1, i0 - 1, -1) if desc else range(i0, i1)
            bars.extend(self._bar(rows, i) for i in indexes)
        if not more or not bars:
            return bars, None
        return bars, (bars[-1].t if desc else bars[-1].t + 1)

    def _bar(self, rows: DayRows, i: int) -> Bar:
        t_ms = rows.first + i * rows.step
        session = session_ns(rows.day, self.cls)
        assert session is not None  # day_rows gave rows for this day
        start = max(t_ms * NS_PER_MS, session[0])
        end = min((t_ms + rows.step) * NS_PER_MS, session[1])
        share = (end - start) / (session[1] - session[0])
        return make_bar(self.ticker, t_ms, start, end, share, self.key)


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar bar window: its timestamp, first and last trading day, and day count."""

    t_ms: int
    first: date
    last: date
    days: int


def _period_start(day: date, timespan: str) -> date:
    if timespan == "week":
        return day - timedelta(days=(day.weekday() + 1) % 7)  # weeks start on Sunday
    if timespan == "month":
        return day.replace(day=1)
    if timespan == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if timespan == "year":
        return day.replace(month=1, day=1)
    return day


def _periods(
    cls: AssetClass, timespan: str, multiplier: int, lo: date, hi: date
) -> Iterator[Period]:
    """Calendar periods with at least one session, grouped ``multiplier`` at a time."""
    group: list[tuple[date, date]] = []  # (period start, trading day)
    day, stop = lo, min(hi, lo + timedelta(days=_MAX_CALENDAR_DAYS))
    while day <= stop:
        if trades_on(day, cls):
            start = _period_start(day, timespan)
            starts = list(dict.fromkeys(s for s, _ in group))
            if group and start not in starts and len(starts) == multiplier:
                yield _group_period(group, cls)
                group = []
            group.append((start, day))
        day += timedelta(days=1)
    if group:
        yield _group_period(group, cls)


def _group_period(group: list[tuple[date, date]], cls: AssetClass) -> Period:
    t_ms = day_start_ns(group[0][0], cls) // NS_PER_MS
    return Period(t_ms=t_ms, first=group[0][1], last=group[-1][1], days=len(group))


def calendar_periods(
    ticker: str, timespan: str, multiplier: int, lo_ms: int, hi_ms: int
) -> list[Period]:
    """Day-or-longer windows starting in ``[lo_ms, hi_ms)``, ascending (cheap: no prices)."""
    cls = asset_class(ticker)
    first = utc_date(lo_ms * NS_PER_MS) - timedelta(days=1)
    last = utc_date((hi_ms - 1) * NS_PER_MS) + timedelta(days=1)
    periods = _periods(cls, timespan, multiplier, first, last)
    return [p for p in periods if lo_ms <= p.t_ms < hi_ms]


def period_bar(ticker: str, period: Period, seed: int) -> Bar:
    """The bar of one calendar window: from the first session's open to the last's close."""
    cls = asset_class(ticker)
    open_session, close_session = session_ns(period.first, cls), session_ns(period.last, cls)
    # both days are trading days: the period was built from them
    assert open_session is not None
    assert close_session is not None
    key = seed_of(seed, ticker, "bars")
    return make_bar(ticker, period.t_ms, open_session[0], close_session[1], period.days, key)


def aggregate_page(
    ticker: str,
    multiplier: int,
    timespan: str,
    bounds: tuple[int, int],
    limit: int,
    desc: bool,
    seed: int,
) -> tuple[list[Bar], int | None]:
    """One page of ``/v2/aggs/.../range`` bars in ``[lo, hi)`` ms.

    Returns:
        ``(bars, resume)`` as :meth:`IntradayBars.page` does.
    """
    lo, hi = bounds
    if timespan in INTRADAY_MS:
        return IntradayBars(ticker, multiplier * INTRADAY_MS[timespan], seed).page(
            lo, hi, limit, desc
        )
    periods = calendar_periods(ticker, timespan, multiplier, lo, hi)
    if desc:
        periods.reverse()
    page = [period_bar(ticker, p, seed) for p in periods[:limit]]
    if len(periods) <= limit:
        return page, None
    return page, (page[-1].t if desc else page[-1].t + 1)


def day_bar(ticker: str, day: date, seed: int) -> Bar | None:
    """The daily bar of ``day`` (``None`` on a day off)."""
    start = day_start_ns(day, asset_class(ticker)) // NS_PER_MS
    periods = calendar_periods(ticker, "day", 1, start, start + 1)
    return period_bar(ticker, periods[0], seed) if periods else None


# --- indicators -----------------------------------------------------------------------------


def _ema(values: list[float], window: int) -> list[float]:
    alpha = 2 / (window + 1)
    out, current = [], values[0]
    for value in values:
        current = alpha * value + (1 - alpha) * current
        out.append(current)
    return out


def _rsi(values: list[float], window: int) -> list[float]:
    out, gain, loss = [50.0], 0.0, 0.0
    for prev, value in pairwise(values):
        change = value - prev
        gain = (gain * (window - 1) + max(change, 0)) / window
        loss = (loss * (window - 1) + max(-change, 0)) / window
        out.append(100.0 if loss == 0 else 100 - 100 / (1 + gain / loss))
    return out


def indicator_values(
    name: str, series: list[float], window: int, macd: tuple[int, int, int] = (12, 26, 9)
) -> list[dict[str, float]]:
    """Indicator values over ``series`` (oldest first), one per point, oldest first.

    ``name`` is ``sma``, ``ema``, ``rsi`` or ``macd`` (which adds ``signal``
    and ``histogram``, from its short, long and signal windows).
    """
    if not series:
        return []
    if name == "sma":
        values = [
            sum(series[max(0, i - window + 1) : i + 1]) / (i + 1 - max(0, i - window + 1))
            for i in range(len(series))
        ]
        return [{"value": round(v, 6)} for v in values]
    if name == "ema":
        return [{"value": round(v, 6)} for v in _ema(series, window)]
    if name == "rsi":
        return [{"value": round(v, 6)} for v in _rsi(series, window)]
    short, long, signal_window = macd
    line = [a - b for a, b in zip(_ema(series, short), _ema(series, long), strict=True)]
    signal = _ema(line, signal_window)
    return [
        {"value": round(v, 6), "signal": round(s, 6), "histogram": round(v - s, 6)}
        for v, s in zip(line, signal, strict=True)
    ]
