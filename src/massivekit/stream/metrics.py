"""Metrics of a stream: a hook protocol, a no-op, a Prometheus adapter, live stats.

A :class:`MetricsHook` is three callbacks (counter, gauge, histogram) keyed by a
metric name and string labels, so any backend fits (Prometheus, StatsD,
OpenTelemetry, a test recorder). massivekit calls it in batches, never per
event: the hot path updates plain integers in :class:`StreamStats`, and the
client pushes their deltas to the hook from its timers and on state changes.

The metric names massivekit emits are the constants below.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "BYTES",
    "DROPS",
    "EVENTS",
    "FRAMES",
    "LAG_MS",
    "QUEUE_DEPTH",
    "RECONNECTS",
    "UNKNOWN_EVENTS",
    "MetricsHook",
    "NoopHook",
    "PrometheusHook",
    "RecordingHook",
    "StreamStats",
]

FRAMES = "massivekit_stream_frames_total"
EVENTS = "massivekit_stream_events_total"
BYTES = "massivekit_stream_bytes_total"
DROPS = "massivekit_stream_drops_total"
RECONNECTS = "massivekit_stream_reconnects_total"
UNKNOWN_EVENTS = "massivekit_stream_unknown_events_total"
QUEUE_DEPTH = "massivekit_stream_queue_depth"
CONNECTED = "massivekit_stream_connected"
LAG_MS = "massivekit_stream_lag_ms"

_HELP = {
    FRAMES: "WebSocket data frames received",
    EVENTS: "Events received",
    BYTES: "Bytes of data frames received",
    DROPS: "Batches lost to a consumer's overflow policy",
    RECONNECTS: "Reconnections after a lost session",
    UNKNOWN_EVENTS: "Events of a kind the models do not know",
    QUEUE_DEPTH: "Batches buffered for a consumer",
    CONNECTED: "1 while the stream is connected and authenticated",
    LAG_MS: "Milliseconds from an event's exchange timestamp to its receipt",
}

#: Histogram buckets for lag in milliseconds: sub-ms on loopback to a minute.
LAG_BUCKETS_MS: Sequence[float] = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 5_000, 60_000)


@runtime_checkable
class MetricsHook(Protocol):
    """Callbacks a stream calls with its metrics; implement any subset as no-ops."""

    def counter(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Add ``value`` to the monotonic counter ``name``."""

    def gauge(self, name: str, value: float, **labels: str) -> None:
        """Set the gauge ``name`` to ``value``."""

    def histogram(self, name: str, value: float, **labels: str) -> None:
        """Record one observation of ``value`` in the histogram ``name``."""


class NoopHook:
    """A :class:`MetricsHook` that ignores everything (the default)."""

    def counter(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Ignore a counter increment."""

    def gauge(self, name: str, value: float, **labels: str) -> None:
        """Ignore a gauge value."""

    def histogram(self, name: str, value: float, **labels: str) -> None:
        """Ignore an observation."""


class RecordingHook:
    """A :class:`MetricsHook` that keeps totals in dicts: for tests and debugging.

    Attributes:
        counters: ``(name, sorted labels) -> total``.
        gauges: ``(name, sorted labels) -> last value``.
        histograms: ``(name, sorted labels) -> observations``.
        calls: the number of hook calls received.
    """

    def __init__(self) -> None:
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.histograms: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}
        self.calls = 0

    def counter(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Add ``value`` to the counter."""
        self.calls += 1
        key = (name, tuple(sorted(labels.items())))
        self.counters[key] = self.counters.get(key, 0.0) + value

    def gauge(self, name: str, value: float, **labels: str) -> None:
        """Store the gauge's value."""
        self.calls += 1
        self.gauges[(name, tuple(sorted(labels.items())))] = value

    def histogram(self, name: str, value: float, **labels: str) -> None:
        """Append an observation."""
        self.calls += 1
        self.histograms.setdefault((name, tuple(sorted(labels.items()))), []).append(value)

    def total(self, name: str, **labels: str) -> float:
        """The counter ``name`` summed over every label set matching ``labels``."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.counters.items() if n == name and want <= set(ls))


class PrometheusHook:
    """A :class:`MetricsHook` feeding ``prometheus_client`` metrics.

    Metrics are created on first use, with the label names of that first call
    (Prometheus needs a fixed label set per metric); later calls must use the
    same label names. Requires the optional ``prometheus-client`` package.

    Args:
        registry: the registry to register into; prometheus_client's global
            ``REGISTRY`` if ``None``.
        namespace: an optional prefix, joined to each name with ``_``.
        const_labels: labels added to every sample (e.g. ``{"feed": "delayed"}``).

    Raises:
        ImportError: ``prometheus-client`` is not installed.
    """

    def __init__(
        self,
        registry: Any = None,
        *,
        namespace: str = "",
        const_labels: dict[str, str] | None = None,
    ) -> None:
        import prometheus_client  # optional: imported only when this hook is used

        self._prom = prometheus_client
        self._registry = registry if registry is not None else prometheus_client.REGISTRY
        self._namespace = namespace
        self._const = dict(const_labels or {})
        self._metrics: dict[str, Any] = {}
        # Why a lock: a scrape or another thread may create metrics concurrently.
        self._lock = threading.Lock()

    def counter(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Increment the Prometheus counter ``name`` by ``value``."""
        self._child("counter", name, labels).inc(value)

    def gauge(self, name: str, value: float, **labels: str) -> None:
        """Set the Prometheus gauge ``name``."""
        self._child("gauge", name, labels).set(value)

    def histogram(self, name: str, value: float, **labels: str) -> None:
        """Observe ``value`` in the Prometheus histogram ``name``."""
        self._child("histogram", name, labels).observe(value)

    def _child(self, kind: str, name: str, labels: dict[str, str]) -> Any:
        merged = {**self._const, **labels}
        metric = self._metrics.get(name)
        if metric is None:
            metric = self._create(kind, name, sorted(merged))
        return metric.labels(**merged) if merged else metric

    def _create(self, kind: str, name: str, labelnames: list[str]) -> Any:
        with self._lock:
            metric = self._metrics.get(name)
            if metric is not None:
                return metric
            # prometheus_client appends "_total" to counters itself.
            base = name.removesuffix("_total") if kind == "counter" else name
            full = f"{self._namespace}_{base}" if self._namespace else base
            doc = _HELP.get(name, name)
            kwargs: dict[str, Any] = {"labelnames": labelnames, "registry": self._registry}
            if kind == "counter":
                metric = self._prom.Counter(full, doc, **kwargs)
            elif kind == "gauge":
                metric = self._prom.Gauge(full, doc, **kwargs)
            else:
                buckets = LAG_BUCKETS_MS if name == LAG_MS else self._prom.Histogram.DEFAULT_BUCKETS
                metric = self._prom.Histogram(full, doc, buckets=buckets, **kwargs)
            self._metrics[name] = metric
            return metric


@dataclass(slots=True)
class StreamStats:
    """Live counters of one stream client, cheap enough to update per frame.

    The client fills these fields when they are read (``client.stats``); :meth:`flush`
    pushes what changed since the last flush to a :class:`MetricsHook`.

    Attributes:
        frames: data frames received.
        events: events received.
        bytes: bytes read from the socket (picows: frame headers and statuses included).
        drops: batches lost to overflow policies (mirrors the dispatcher's count).
        reconnects: sessions re-established after a loss.
        unknown_events: events of a kind the models do not know.
        decode_errors: frames that did not decode.
        last_lag_ms: receipt time minus the newest event timestamp of the last
            sampled frame, in ms (``None`` until measured).
        connected_since: ``time.time()`` of the current session's READY, or
            ``None`` while disconnected.
        last_frame_at: ``time.monotonic()`` of the last frame, or ``None``.
    """

    frames: int = 0
    events: int = 0
    bytes: int = 0
    drops: int = 0
    reconnects: int = 0
    unknown_events: int = 0
    decode_errors: int = 0
    last_lag_ms: float | None = None
    connected_since: float | None = None
    last_frame_at: float | None = None
    _flushed: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def on_frame(self, nbytes: int, nevents: int) -> None:
        """Count one data frame of ``nbytes`` bytes carrying ``nevents`` events."""
        self.frames += 1
        self.events += nevents
        self.bytes += nbytes

    def observe_lag(self, event_ts_ms: float, now_ms: float | None = None) -> float:
        """Record the lag of an event stamped ``event_ts_ms`` (Unix ms).

        Args:
            event_ts_ms: the event's exchange timestamp, Unix milliseconds.
            now_ms: the receipt time; ``time.time()`` if ``None``.

        Returns:
            The lag in milliseconds (negative if the clocks disagree).
        """
        now = time.time() * 1000.0 if now_ms is None else now_ms
        self.last_lag_ms = now - event_ts_ms
        return self.last_lag_ms

    def mark_connected(self, now: float | None = None) -> None:
        """The session is READY (``now`` is ``time.time()`` by default)."""
        self.connected_since = time.time() if now is None else now

    def mark_disconnected(self) -> None:
        """The session is gone."""
        self.connected_since = None

    def snapshot(self) -> dict[str, int | float | None]:
        """The public counters as a plain dict (a copy)."""
        data = asdict(self)
        data.pop("_flushed", None)
        return data

    def flush(self, hook: MetricsHook, **labels: str) -> None:
        """Send the counters' increments since the last flush, and the gauges, to ``hook``.

        Args:
            hook: the metrics hook.
            labels: labels for every metric (e.g. ``market="stocks"``).
        """
        for name, value in (
            (FRAMES, self.frames),
            (EVENTS, self.events),
            (BYTES, self.bytes),
            (RECONNECTS, self.reconnects),
            (UNKNOWN_EVENTS, self.unknown_events),
        ):
            delta = value - self._flushed.get(name, 0)
            if delta:
                self._flushed[name] = value
                hook.counter(name, float(delta), **labels)
        hook.gauge(CONNECTED, 0.0 if self.connected_since is None else 1.0, **labels)
        if self.last_lag_ms is not None:
            hook.histogram(LAG_MS, self.last_lag_ms, **labels)
