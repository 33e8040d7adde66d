"""The proxy's Prometheus metrics, on a registry of its own.

The hot path only bumps plain integers (the router's and sessions'
counters); this collector reads them when ``/metrics`` is scraped, so
routing pays no metric cost per event. The one histogram,
``massivekit_proxy_latency_seconds``, is observed once per write round:
the time from the first upstream frame of the round to the end of that
round's writes, i.e. the worst upstream→client latency inside the proxy.

Labels are cluster names and event codes only: never keys, tokens or peers.

=========================================================  ===========================
metric                                                     labels
=========================================================  ===========================
``massivekit_proxy_events_in_total``                       cluster, ev
``massivekit_proxy_frames_in_total``                       cluster
``massivekit_proxy_events_out_total``                      cluster, ev
``massivekit_proxy_frames_out_total``                      cluster
``massivekit_proxy_whole_frames_total`` (forwarded as is)  cluster
``massivekit_proxy_bad_frames_total``                      cluster
``massivekit_proxy_clients``                               cluster
``massivekit_proxy_client_topics`` (distinct, all clients) cluster
``massivekit_proxy_upstream_topics``                       cluster
``massivekit_proxy_dropped_events_total``                  cluster
``massivekit_proxy_slow_disconnects_total``                cluster
``massivekit_proxy_upstream_up``                           cluster
``massivekit_proxy_upstream_reconnects_total``             cluster
``massivekit_proxy_upstream_max_connections_total``        cluster
``massivekit_proxy_upstream_refused_total`` (after an ack)  cluster
``massivekit_proxy_upstream_idle_closes_total``            cluster
``massivekit_proxy_latency_seconds`` (histogram)           none
=========================================================  ===========================
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from massivekit.proxy.server import ProxyServer

__all__ = ["LATENCY_BUCKETS", "ProxyMetrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
_P = "massivekit_proxy_"


class ProxyMetrics(Collector):
    """Every metric of one proxy; :meth:`render` is the ``/metrics`` body.

    Args:
        server: the proxy whose counters are read at scrape time.
    """

    def __init__(self, server: ProxyServer) -> None:
        self._server = server
        self.registry = CollectorRegistry(auto_describe=False)
        self.latency = Histogram(
            _P + "latency_seconds",
            "Upstream frame received to client write done, worst of each write round.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(self)

    def observe_round(self, seconds: float) -> None:
        """Record one write round's latency (the flusher's callback)."""
        self.latency.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        """Read the proxy's counters (called by the registry at scrape time)."""
        server = self._server
        counters = {
            name: CounterMetricFamily(_P + name, text, labels=["cluster"])
            for name, text in (
                ("frames_in", "Upstream frames routed (injected test frames included)."),
                ("frames_out", "Frames handed to clients."),
                ("whole_frames", "Frames forwarded to a client exactly as they came."),
                ("bad_frames", "Upstream frames that were not a JSON array."),
                ("dropped_events", "Events dropped from full client buffers."),
                ("slow_disconnects", "Clients closed with slow_consumer."),
                ("upstream_reconnects", "Upstream sessions lost and retried."),
                ("upstream_max_connections", "Upstream max_connections refusals."),
                ("upstream_refused", "Topics the upstream refused after clients were acked."),
                ("upstream_idle_closes", "Upstream connections closed for want of clients."),
            )
        }
        gauges = {
            name: GaugeMetricFamily(_P + name, text, labels=["cluster"])
            for name, text in (
                ("clients", "Authenticated clients."),
                ("client_topics", "Distinct topics held by clients."),
                ("upstream_topics", "Topics subscribed upstream."),
                ("upstream_up", "1 while the upstream session is READY."),
            )
        }
        events_in = CounterMetricFamily(
            _P + "events_in", "Upstream events routed, per event code.", labels=["cluster", "ev"]
        )
        events_out = CounterMetricFamily(
            _P + "events_out",
            "Event deliveries to clients, per event code (one event to one client is one).",
            labels=["cluster", "ev"],
        )
        for market, router in server.routers.items():
            cluster = market.value
            for ev, count in sorted(router.events_in.items()):
                events_in.add_metric([cluster, ev], count)
            for ev, count in sorted(router.events_out_by_ev.items()):
                events_out.add_metric([cluster, ev], count)
            for name, value in (
                ("frames_in", router.frames_in),
                ("frames_out", router.frames_out),
                ("whole_frames", router.whole_frames),
                ("bad_frames", router.bad_frames),
            ):
                counters[name].add_metric([cluster], value)
            gauges["clients"].add_metric([cluster], router.clients)
            gauges["client_topics"].add_metric([cluster], len(router.topics))
            counters["dropped_events"].add_metric([cluster], server.dropped_events(market))
            counters["slow_disconnects"].add_metric([cluster], server.slow_disconnects[market])
        for market in server.upstreams.keys() | server.retired.keys():
            cluster = market.value
            retired: Mapping[str, int] = server.retired.get(market, {})
            upstream = server.upstreams.get(market)
            reconnects, max_connections, refused = (
                retired.get(name, 0) + (getattr(upstream, name) if upstream else 0)
                for name in ("reconnects", "max_connections", "refused")
            )
            counters["upstream_reconnects"].add_metric([cluster], reconnects)
            counters["upstream_max_connections"].add_metric([cluster], max_connections)
            counters["upstream_refused"].add_metric([cluster], refused)
            counters["upstream_idle_closes"].add_metric([cluster], server.idle_closes[market])
            up = upstream is not None and upstream.health()["healthy"]
            gauges["upstream_up"].add_metric([cluster], 1 if up else 0)
            gauges["upstream_topics"].add_metric([cluster], len(upstream.topics) if upstream else 0)
        yield events_in
        yield events_out
        yield from counters.values()
        yield from gauges.values()
