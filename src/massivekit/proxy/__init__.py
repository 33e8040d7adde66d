"""The multiplexing proxy: one upstream connection per cluster, many Massive clients.

See :class:`massivekit.proxy.server.ProxyServer` and ``massivekit proxy``.
"""

from massivekit.proxy.config import ClientKey, ProxyConfig, SlowClientPolicy, load_config
from massivekit.proxy.server import ProxyServer

__all__ = ["ClientKey", "ProxyConfig", "ProxyServer", "SlowClientPolicy", "load_config"]
