"""The Massive stream client, its dispatch and its metrics.

``StreamClient`` is the entry point; ``Overflow`` picks what a full consumer
buffer does; ``StreamStats`` and ``MetricsHook`` are what it reports;
``ConnectionEvent``/``ConnectionState`` are what ``client.events()`` yields.
"""

from massivekit.stream.client import Batch, StreamClient, StreamOptions, resolve_endpoint
from massivekit.stream.dispatch import Consumer, Dispatcher, Overflow
from massivekit.stream.metrics import MetricsHook, NoopHook, RecordingHook, StreamStats
from massivekit.transport.backoff import BackoffPolicy
from massivekit.transport.connection import ConnectionConfig, Heartbeat
from massivekit.transport.events import ConnectionEvent, ConnectionState

__all__ = [
    "BackoffPolicy",
    "Batch",
    "ConnectionConfig",
    "ConnectionEvent",
    "ConnectionState",
    "Consumer",
    "Dispatcher",
    "Heartbeat",
    "MetricsHook",
    "NoopHook",
    "Overflow",
    "RecordingHook",
    "StreamClient",
    "StreamOptions",
    "StreamStats",
    "resolve_endpoint",
]
