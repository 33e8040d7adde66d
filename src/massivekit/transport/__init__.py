"""A generic WebSocket transport for JSON-over-WebSocket protocols.

Layers, each with one job:

* :mod:`~massivekit.transport.socket`: the push-based adapter contract, and
  its aiohttp implementation (``socket_picows``: the picows one);
* :mod:`~massivekit.transport.handler` and :mod:`~massivekit.transport.session`:
  what a protocol says, without I/O; :mod:`~massivekit.transport.handlers`
  ships Massive, a configurable generic JSON protocol, and JSON-RPC 2.0;
* :mod:`~massivekit.transport.backoff`, :mod:`~massivekit.transport.requests`,
  :mod:`~massivekit.transport.subscriptions`: pure policies and stores;
* :mod:`~massivekit.transport.connection` (with :mod:`~massivekit.transport.live`,
  :mod:`~massivekit.transport.events`, :mod:`~massivekit.transport.config`):
  the actor that drives them all, and the states it reports.
"""
