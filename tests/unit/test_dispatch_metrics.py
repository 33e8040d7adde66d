"""Metrics hooks and stream stats, without an event loop."""

from __future__ import annotations

import pytest

from massivekit.stream.metrics import (
    BYTES,
    CONNECTED,
    DROPS,
    EVENTS,
    FRAMES,
    LAG_MS,
    QUEUE_DEPTH,
    RECONNECTS,
    MetricsHook,
    NoopHook,
    PrometheusHook,
    RecordingHook,
    StreamStats,
)


def test_hooks_satisfy_the_protocol() -> None:
    assert isinstance(NoopHook(), MetricsHook)
    assert isinstance(RecordingHook(), MetricsHook)
    noop = NoopHook()
    noop.counter(FRAMES)
    noop.gauge(QUEUE_DEPTH, 1.0)
    noop.histogram(LAG_MS, 2.0, market="stocks")


def test_recording_hook_keeps_totals_per_label_set() -> None:
    hook = RecordingHook()
    hook.counter(DROPS, 2, consumer="a")
    hook.counter(DROPS, 3, consumer="b")
    hook.counter(DROPS, consumer="a")
    hook.gauge(QUEUE_DEPTH, 7, consumer="a")
    hook.histogram(LAG_MS, 1.5)
    hook.histogram(LAG_MS, 2.5)
    assert hook.total(DROPS) == 6
    assert hook.total(DROPS, consumer="a") == 3
    assert hook.total(DROPS, consumer="zz") == 0
    assert hook.gauges[(QUEUE_DEPTH, (("consumer", "a"),))] == 7
    assert hook.histograms[(LAG_MS, ())] == [1.5, 2.5]
    assert hook.calls == 6


def test_stats_count_frames_and_flush_deltas() -> None:
    stats = StreamStats()
    hook = RecordingHook()
    stats.on_frame(100, 10)
    stats.on_frame(50, 5)
    stats.reconnects += 1
    stats.flush(hook, market="stocks")
    assert hook.total(FRAMES, market="stocks") == 2
    assert hook.total(EVENTS) == 15
    assert hook.total(BYTES) == 150
    assert hook.total(RECONNECTS) == 1
    assert hook.gauges[(CONNECTED, (("market", "stocks"),))] == 0.0
    assert not hook.histograms  # no lag measured yet
    stats.on_frame(10, 1)
    stats.mark_connected(now=1_700_000_000.0)
    stats.observe_lag(1_000.0, now_ms=1_012.5)
    stats.flush(hook, market="stocks")
    assert hook.total(FRAMES) == 3  # only the delta was added
    assert hook.total(RECONNECTS) == 1
    assert hook.gauges[(CONNECTED, (("market", "stocks"),))] == 1.0
    assert hook.histograms[(LAG_MS, (("market", "stocks"),))] == [12.5]


def test_stats_snapshot_and_connection_marks() -> None:
    stats = StreamStats()
    stats.mark_connected()
    assert stats.connected_since is not None
    lag = stats.observe_lag(0.0)
    assert lag > 0
    stats.mark_disconnected()
    snap = stats.snapshot()
    assert snap["connected_since"] is None
    assert snap["last_lag_ms"] == lag
    assert "_flushed" not in snap
    assert set(snap) >= {"frames", "events", "drops", "reconnects", "unknown_events"}


def test_prometheus_hook_exports_samples() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    hook = PrometheusHook(registry, namespace="app", const_labels={"feed": "delayed"})
    assert isinstance(hook, MetricsHook)
    hook.counter(DROPS, 3, consumer="a")
    hook.counter(DROPS, 2, consumer="a")
    hook.gauge(QUEUE_DEPTH, 4, consumer="a")
    hook.histogram(LAG_MS, 3.0, consumer="a")
    hook.histogram("custom_seconds", 0.2, consumer="a")
    labels = {"feed": "delayed", "consumer": "a"}
    get = registry.get_sample_value
    assert get("app_massivekit_stream_drops_total", labels) == 5
    assert get("app_massivekit_stream_queue_depth", labels) == 4
    assert get("app_massivekit_stream_lag_ms_count", labels) == 1
    assert get("app_massivekit_stream_lag_ms_bucket", {**labels, "le": "5.0"}) == 1
    assert get("app_custom_seconds_count", labels) == 1


def test_prometheus_hook_without_labels() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    hook = PrometheusHook(registry)
    hook.counter(FRAMES, 7)
    assert registry.get_sample_value("massivekit_stream_frames_total") == 7
